#!/usr/bin/env python3
"""Write the labelled rx eval cases into evals/rx/cases/.

Each case is a base prescription (valid in its jurisdiction) with one mutation, labelled by
hand with the verdict and codes the rules in knowledge/rx/ call for. FHIR variants are built by
`to_fhir` here, independently of Baton's FHIR reader, so the eval also checks that both input
formats give the same result. Run: python3 evals/rx/make.py (standard library only).
"""
import copy
import json
import pathlib
import shutil

HERE = pathlib.Path(__file__).parent
OUT = HERE / "cases"
EXT = "https://baton.dev/fhir/StructureDefinition/"

STATE_CITY = {
    "ACT": ("1 Northbourne Ave, Canberra", "2600"),
    "NSW": ("1 George St, Sydney", "2000"),
    "NT": ("1 Smith St, Darwin", "0800"),
    "QLD": ("1 Queen St, Brisbane", "4000"),
    "SA": ("1 King William St, Adelaide", "5000"),
    "TAS": ("1 Elizabeth St, Hobart", "7000"),
    "VIC": ("1 Collins St, Melbourne", "3000"),
    "WA": ("1 Hay St, Perth", "6000"),
}
AUTHORITY = {"ACT": "CHO", "TAS": "s59E"}


def luhn_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def hi(prefix, serial):
    body = prefix + str(serial).rjust(15 - len(prefix), "0")
    return body + luhn_digit(body)


def medicare(first8, issue="1"):
    weights = [1, 3, 7, 9, 1, 3, 7, 9]
    check = sum(int(d) * w for d, w in zip(first8, weights)) % 10
    return first8 + str(check) + issue


def base(j="NSW"):
    line, postcode = STATE_CITY[j]
    rx = {
        "as_of": "2026-10-05",
        "jurisdiction": j,
        "authored_on": "2026-10-01",
        "patient": {
            "name": "Alex Citizen",
            "dob": "1980-01-01",
            "address": {"line": line, "state": j, "postcode": postcode},
            "ihi": hi("800360", 816669050),
            "medicare": medicare("21234567"),
            "drug_dependent": False,
            "palliative": False,
        },
        "prescriber": {
            "name": "Dr Jo Smith",
            "kind": "medical_practitioner",
            "ahpra": "MED0001234567",
            "hpii": hi("800361", 990001571),
            "address": {"line": line.replace("1 ", "2 ", 1), "state": j, "postcode": postcode},
            "phone": "02 9000 0000",
            "signed": True,
            "registration_conditions": False,
        },
        "product": {
            "name": "Tilray Balance 100:5 oil",
            "artg": False,
            "compounded": False,
            "form": "oil",
            "route": "sublingual",
            "ingredients": [
                {"name": "CBD", "amount": 100, "per": "mL", "unit": "mg"},
                {"name": "THC", "amount": 5, "per": "mL", "unit": "mg"},
            ],
            "declared_category": 2,
            "declared_schedule": "S8",
        },
        "quantity": {"value": 25, "unit": "mL"},
        "repeats": 2,
        "repeat_interval_days": 28,
        "directions": "0.5 mL under the tongue twice daily",
        "self_prescribed": False,
        "treatment_started": "2026-10-01",
        "rtpm_checked": True,
        "approvals": [approval()],
        "state_authorities": [],
    }
    if j in AUTHORITY:
        rx["state_authorities"].append(authority(j, AUTHORITY[j]))
    return rx


def approval(**over):
    a = {
        "pathway": "SAS-B",
        "number": "SASB-2026-0042",
        "category": 2,
        "dosage_form": "oil",
        "prescriber_ahpra": "MED0001234567",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
    }
    a.update(over)
    return a


def authority(j, kind, **over):
    a = {
        "jurisdiction": j,
        "type": kind,
        "number": f"{j}-{kind}-7781",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
    }
    a.update(over)
    return a


def product(rx, ingredients, category, schedule="S8", **over):
    rx["product"]["ingredients"] = ingredients
    rx["product"]["declared_category"] = category
    rx["product"]["declared_schedule"] = schedule
    rx["product"].update(over)
    for a in rx["approvals"]:
        a["category"] = category
        if "form" in over:
            a["dosage_form"] = over["form"]
    return rx


def mg(name, amount, per="mL", unit="mg"):
    return {"name": name, "amount": amount, "per": per, "unit": unit}


# ---------------------------------------------------------------- FHIR, written independently


def ext(name, **value):
    (key, val), = value.items()
    return {"url": EXT + name, key: val}


def quantity(q):
    out = {}
    if q.get("value") is not None:
        out["value"] = q["value"]
    if q.get("unit") is not None:
        unit = q["unit"]
        code = unit if unit in ("mL", "g") else "{" + unit + "}"
        out.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": code})
    return out


def complex_ext(name, record):
    parts = []
    for key, val in record.items():
        if key in ("valid_from", "valid_to"):
            parts.append({"url": key, "valueDate": val})
        elif key == "category":
            parts.append({"url": key, "valueInteger": val})
        elif key in ("pathway", "dosage_form", "type", "jurisdiction"):
            parts.append({"url": key, "valueCode": val})
        elif key == "max_quantity":
            parts.append({"url": key, "valueQuantity": quantity(val)})
        else:
            parts.append({"url": key, "valueString": val})
    return {"url": EXT + name, "extension": parts}


def address(a):
    out = {}
    if a.get("line") is not None:
        out["line"] = [a["line"]]
    if a.get("state") is not None:
        out["state"] = a["state"]
    if a.get("postcode") is not None:
        out["postalCode"] = a["postcode"]
    return out


def to_fhir(rx, role=False, timestamp=False, concept=False, validity_end=None):
    p, pr, prod = rx.get("patient", {}), rx.get("prescriber", {}), rx.get("product", {})
    patient = {"resourceType": "Patient", "id": "p1", "identifier": [], "extension": []}
    if p.get("name"):
        given, _, family = p["name"].rpartition(" ")
        patient["name"] = [{"family": family, "given": given.split()}]
    if p.get("dob"):
        patient["birthDate"] = p["dob"]
    if p.get("address"):
        patient["address"] = [address(p["address"])]
    if p.get("ihi"):
        patient["identifier"].append({"system": "http://ns.electronichealth.net.au/id/hi/ihi/1.0", "value": p["ihi"]})
    if p.get("medicare"):
        patient["identifier"].append({"system": "http://ns.electronichealth.net.au/id/medicare-number", "value": p["medicare"]})
    patient["extension"].append(ext("drug-dependent", valueBoolean=p.get("drug_dependent", False)))
    patient["extension"].append(ext("palliative", valueBoolean=p.get("palliative", False)))

    practitioner = {"resourceType": "Practitioner", "id": "pr1", "identifier": [], "extension": []}
    if pr.get("name"):
        practitioner["name"] = [{"text": pr["name"]}]
    if pr.get("ahpra"):
        practitioner["identifier"].append({"system": "http://hl7.org.au/id/ahpra-registration-number", "value": pr["ahpra"]})
    if pr.get("hpii"):
        practitioner["identifier"].append({"system": "http://ns.electronichealth.net.au/id/hi/hpii/1.0", "value": pr["hpii"]})
    if pr.get("kind"):
        practitioner["extension"].append(ext("prescriber-kind", valueCode=pr["kind"]))
    practitioner["extension"].append(ext("registration-conditions", valueBoolean=pr.get("registration_conditions", False)))
    extra = []
    if role:
        location = {"resourceType": "Location", "id": "loc1", "name": "Practice"}
        if pr.get("address"):
            location["address"] = address(pr["address"])
        prole = {"resourceType": "PractitionerRole", "id": "role1",
                 "practitioner": {"reference": "Practitioner/pr1"},
                 "location": [{"reference": "Location/loc1"}]}
        if pr.get("phone"):
            prole["telecom"] = [{"system": "phone", "value": pr["phone"]}]
        extra = [prole, location]
    else:
        if pr.get("address"):
            practitioner["address"] = [address(pr["address"])]
        if pr.get("phone"):
            practitioner["telecom"] = [{"system": "phone", "value": pr["phone"]}]

    medication = {"resourceType": "Medication", "id": "m1", "extension": []}
    if prod.get("name"):
        medication["code"] = {"text": prod["name"]}
    if prod.get("form"):
        medication["form"] = {"coding": [{"system": "https://baton.dev/fhir/CodeSystem/dosage-form", "code": prod["form"]}]}
    ingredients = []
    for ing in prod.get("ingredients", []):
        row = {"itemCodeableConcept": {"text": ing["name"]}}
        strength = {}
        num = {}
        if ing.get("amount") is not None:
            num["value"] = ing["amount"]
        if ing.get("unit") is not None:
            num.update({"unit": ing["unit"], "system": "http://unitsofmeasure.org", "code": ing["unit"]})
        if num:
            strength["numerator"] = num
        if ing.get("per") is not None:
            per = ing["per"]
            code = per if per in ("mL", "g") else "{" + per + "}"
            strength["denominator"] = {"value": 1, "unit": per, "system": "http://unitsofmeasure.org", "code": code}
        if strength:
            row["strength"] = strength
        ingredients.append(row)
    if ingredients:
        medication["ingredient"] = ingredients
    for key, name in (("artg", "artg"), ("compounded", "compounded")):
        medication["extension"].append(ext(name, valueBoolean=prod.get(key, False)))
    if prod.get("declared_category") is not None:
        medication["extension"].append(ext("declared-category", valueInteger=prod["declared_category"]))
    if prod.get("declared_schedule") is not None:
        medication["extension"].append(ext("declared-schedule", valueCode=prod["declared_schedule"]))

    mr = {"resourceType": "MedicationRequest", "id": "mr1", "status": "active", "intent": "order",
          "subject": {"reference": "Patient/p1"},
          "requester": {"reference": "PractitionerRole/role1" if role else "Practitioner/pr1"},
          "extension": []}
    if concept:
        mr["medicationCodeableConcept"] = {"text": prod.get("name", "")}
    else:
        mr["medicationReference"] = {"reference": "Medication/m1"}
    if rx.get("authored_on"):
        mr["authoredOn"] = rx["authored_on"] + "T09:30:00+10:00"
    if rx.get("as_of") and not timestamp:
        mr["extension"].append(ext("as-of", valueDate=rx["as_of"]))
    if rx.get("jurisdiction") is not None:
        mr["extension"].append(ext("jurisdiction", valueCode=rx["jurisdiction"]))
    mr["extension"].append(ext("self-prescribed", valueBoolean=rx.get("self_prescribed", False)))
    if rx.get("treatment_started"):
        mr["extension"].append(ext("treatment-started", valueDate=rx["treatment_started"]))
    if rx.get("rtpm_checked") is not None:
        mr["extension"].append(ext("rtpm-checked", valueBoolean=rx["rtpm_checked"]))
    if pr.get("signed") is not None:
        mr["extension"].append(ext("signed", valueBoolean=pr["signed"]))
    for a in rx.get("approvals", []):
        mr["extension"].append(complex_ext("tga-approval", a))
    for a in rx.get("state_authorities", []):
        mr["extension"].append(complex_ext("state-authority", a))
    dosage = {}
    if rx.get("directions") is not None:
        dosage["text"] = rx["directions"]
    if prod.get("route"):
        dosage["route"] = {"coding": [{"system": "https://baton.dev/fhir/CodeSystem/route", "code": prod["route"]}]}
    if dosage:
        mr["dosageInstruction"] = [dosage]
    dispense = {"numberOfRepeatsAllowed": rx.get("repeats", 0)}
    if rx.get("quantity") is not None:
        dispense["quantity"] = quantity(rx["quantity"])
    if rx.get("repeat_interval_days") is not None:
        dispense["dispenseInterval"] = {"value": rx["repeat_interval_days"], "unit": "days",
                                        "system": "http://unitsofmeasure.org", "code": "d"}
    if validity_end:
        dispense["validityPeriod"] = {"start": rx["authored_on"], "end": validity_end}
    mr["dispenseRequest"] = dispense

    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    if timestamp:
        bundle["timestamp"] = rx["as_of"] + "T08:00:00+10:00"
    for resource in [mr, patient, practitioner, *extra, medication]:
        bundle["entry"].append({"fullUrl": f"urn:uuid:{resource['resourceType'].lower()}-{resource['id']}",
                                "resource": resource})
    return bundle


# ---------------------------------------------------------------- the cases

CASES = []


def case(name, description, rx, codes, valid=None, fhir=False, simple=True, note=None, **fhir_options):
    """Add `rx` (simple) and, with `fhir`, its FHIR form, expecting `codes`; `note` names the
    rule source the expectation rests on."""
    errors = [c for c in codes if c.startswith("E-")]
    if valid is None:
        valid = not errors
    expected = {"valid": valid, "codes": sorted(set(codes))}
    extra = {"note": note} if note else {}
    if simple:
        CASES.append({"id": name, "format": "simple", "description": description, **extra,
                      "expected": expected, "input": copy.deepcopy(rx)})
    if fhir:
        CASES.append({"id": name + "-fhir", "format": "fhir", "description": description, **extra,
                      "expected": expected, "input": to_fhir(copy.deepcopy(rx), **fhir_options)})


def raw(name, description, text, path_hint):
    CASES.append({"id": name, "format": "text", "description": description,
                  "expected": {"valid": False, "codes": ["E-INPUT"], "path": path_hint},
                  "input_text": text})


def bad(name, description, value, path_hint, fmt="simple"):
    CASES.append({"id": name, "format": fmt, "description": description,
                  "expected": {"valid": False, "codes": ["E-INPUT"], "path": path_hint},
                  "input": value})


def m(rx, fn):
    rx = copy.deepcopy(rx)
    fn(rx)
    return rx


def build():
    # ---- valid: every jurisdiction, both formats
    for j in STATE_CITY:
        case(f"{j.lower()}-valid-s8", f"A complete category-2 S8 oil on SAS-B in {j}", base(j), [], fhir=True)

    # Category boundaries (both formats): exactly at and just under 98 / 60 / 40 %, THC 98 / >98.
    nsw = base("NSW")
    case("boundary-cbd-98-exact", "CBD exactly 98 % of cannabinoids is category 1 (S4)",
         product(copy.deepcopy(nsw), [mg("CBD", 98), mg("THC", 2)], 1, "S4"), [], fhir=True)
    case("boundary-cbd-97.9", "CBD 97.9 % is category 2",
         product(copy.deepcopy(nsw), [mg("CBD", 97.9), mg("THC", 2.1)], 2), [], fhir=True)
    case("boundary-cbd-60-exact", "CBD exactly 60 % is category 2",
         product(copy.deepcopy(nsw), [mg("CBD", 60), mg("THC", 40)], 2), [], fhir=True)
    case("boundary-cbd-59.9", "CBD 59.9 % is category 3",
         product(copy.deepcopy(nsw), [mg("CBD", 59.9), mg("THC", 40.1)], 3), [], fhir=True)
    case("boundary-cbd-40-exact", "CBD exactly 40 % is category 3",
         product(copy.deepcopy(nsw), [mg("CBD", 40), mg("THC", 60)], 3), [], fhir=True)
    case("boundary-cbd-39.9", "CBD 39.9 % is category 4",
         product(copy.deepcopy(nsw), [mg("CBD", 39.9), mg("THC", 60.1)], 4), [], fhir=True)
    case("boundary-thc-98-exact", "THC exactly 98 % is still category 4",
         product(copy.deepcopy(nsw), [mg("CBD", 2), mg("THC", 98)], 4), [], fhir=True)
    case("boundary-thc-98.1", "THC 98.1 % is category 5",
         product(copy.deepcopy(nsw), [mg("CBD", 1.9), mg("THC", 98.1)], 5), [], fhir=True)
    case("boundary-cbd-98-mislabelled", "CBD 97.9 % declared category 1 and approved as 1: it is 2",
         m(product(copy.deepcopy(nsw), [mg("CBD", 97.9), mg("THC", 2.1)], 1, "S4"), lambda r: None),
         ["E-CATEGORY-MISMATCH", "E-SCHEDULE"], fhir=True)
    case("boundary-cbd-60-mislabelled", "CBD 59.9 % declared and approved as category 2: it is 3",
         product(copy.deepcopy(nsw), [mg("CBD", 59.9), mg("THC", 40.1)], 2), ["E-CATEGORY-MISMATCH"], fhir=True)
    case("boundary-cbd-40-mislabelled", "CBD 39.9 % declared and approved as category 3: it is 4",
         product(copy.deepcopy(nsw), [mg("CBD", 39.9), mg("THC", 60.1)], 3), ["E-CATEGORY-MISMATCH"])

    # Units: % w/w dried herb, acids, capsules, topical, mg per g.
    herb = product(copy.deepcopy(nsw), [mg("THC", 22, per="g", unit="%"), mg("CBD", 1, per="g", unit="%")], 4,
                   form="dried_herb", route="vaporisation", name="Adven Ignite 22% THC flower")
    herb["quantity"] = {"value": 10, "unit": "g"}
    herb["directions"] = "Vaporise 0.1 g at 190 °C up to three times daily"
    case("herb-percent-ww", "Dried herb 22 % THC / 1 % CBD w/w is category 4, on an approval for dried herb",
         herb, [], fhir=True)
    acid = m(herb, lambda r: r["product"].update(ingredients=[mg("THCA", 20, per="g", unit="%"), mg("THC", 1, per="g", unit="%")], declared_category=5))
    for a in acid["approvals"]:
        a["category"] = 5
    case("herb-thca", "THCA counts as THC (× 0.877): 20 % THCA + 1 % THC is category 5", acid, [])
    caps = product(copy.deepcopy(nsw), [mg("CBD", 10, per="capsule"), mg("THC", 10, per="capsule")], 3,
                   form="capsule", route="oral", name="Cannatrek Balance 10:10 capsules")
    caps["quantity"] = {"value": 60, "unit": "capsule"}
    caps["directions"] = "One capsule by mouth at night"
    case("capsule-units", "Capsules 10 mg CBD + 10 mg THC each are category 3, quantity in capsules", caps, [], fhir=True)
    topical = product(copy.deepcopy(nsw), [mg("CBD", 50, per="g")], 1, "S4", form="topical", route="topical",
                      name="Althea CBD 5% balm")
    topical["quantity"] = {"value": 50, "unit": "g"}
    topical["directions"] = "Apply thinly to the knee twice daily"
    case("topical-cbd", "A CBD-only topical balm is category 1, S4", topical, [])
    mcg = product(copy.deepcopy(nsw), [mg("CBD", 25000, unit="mcg"), mg("THC", 25000, unit="mcg")], 3)
    case("strength-in-mcg", "Strengths in mcg are normalised: 25,000 mcg each is 25 mg, category 3", mcg, [])
    grams = product(copy.deepcopy(nsw), [mg("CBD", 0.1, unit="g"), mg("THC", 0.005, unit="g")], 2)
    case("strength-in-g", "Strengths in g per mL are normalised to mg", grams, [])
    carrier = m(nsw, lambda r: r["product"]["ingredients"].append({"name": "MCT oil", "amount": 900, "per": "mL", "unit": "mg"}))
    case("carrier-ignored", "A carrier oil is not a cannabinoid and does not change the category", carrier, [])
    minor = m(nsw, lambda r: r["product"]["ingredients"].append(mg("CBG", 10)))
    case("minor-cannabinoid", "CBG counts in the total: 100 CBD / 5 THC / 10 CBG is 87 % CBD, still category 2", minor, [])
    minor_shift = product(copy.deepcopy(nsw), [mg("CBD", 60), mg("THC", 30), mg("CBN", 15)], 3)
    case("minor-cannabinoid-shifts", "CBN in the total: 60 CBD / 30 THC / 15 CBN is 57 % CBD, category 3", minor_shift, [])

    # Schedules 3 and 4, ARTG products.
    s3 = product(copy.deepcopy(nsw), [mg("CBD", 50)], 1, "S3", artg=True, name="Pharmacist CBD 50 oral solution")
    s3["approvals"] = []
    case("artg-s3-cbd", "An ARTG-registered oral CBD product is S3 and needs no approval", s3, [], fhir=True)
    s3_wrong = m(s3, lambda r: r["product"].update(declared_schedule="S4"))
    case("artg-s3-declared-s4", "Declared S4, but the ARTG CBD product is S3", s3_wrong, ["E-SCHEDULE"])
    s3_unregistered = m(s3, lambda r: r["product"].update(artg=False))
    s3_unregistered["approvals"] = [approval(category=1)]
    case("s3-claimed-unregistered", "An unregistered CBD product is S4, not S3", s3_unregistered, ["E-SCHEDULE"], fhir=True)

    # Schedule 3 only within its conditions (SUSMP Schedule 3, CANNABIDIOL (b)–(d), (g)).
    susmp_d = "SUSMP Schedule 3 CANNABIDIOL (d): maximum recommended daily dose 150 mg or less"
    susmp_g = "SUSMP Schedule 3 CANNABIDIOL (g): for persons aged 18 years and over"
    susmp_c = "SUSMP Schedule 3 CANNABIDIOL (c): THC at most 1 % of total cannabinoids"
    susmp_route = "SUSMP Schedule 3 CANNABIDIOL: oral, oromucosal and sublingual preparations"
    strong = product(copy.deepcopy(nsw), [mg("CBD", 100)], 1, "S4", artg=True, route="oral",
                     name="Registered CBD 100 oral solution")
    strong["approvals"] = []
    strong["directions"] = "2 mL by mouth twice daily"
    case("s3-cbd-over-150mg", "ARTG CBD at 400 mg a day is outside Schedule 3: the S4 declared is right",
         strong, [], fhir=True, note=susmp_d)
    case("s3-cbd-over-150mg-declared-s3", "ARTG CBD at 400 mg a day declared S3: it is S4 as prescribed",
         m(strong, lambda r: r["product"].update(declared_schedule="S3")), ["E-SCHEDULE"], note=susmp_d)
    exact = product(copy.deepcopy(nsw), [mg("CBD", 50)], 1, "S3", artg=True, route="oral",
                    name="Registered CBD 50 oral solution")
    exact["approvals"] = []
    exact["directions"] = "1 mL three times daily"
    case("s3-cbd-150mg-exact", "ARTG CBD at exactly 150 mg a day is Schedule 3", exact, [], fhir=True, note=susmp_d)
    caps151 = product(copy.deepcopy(nsw), [mg("CBD", 50.5, per="capsule")], 1, "S4", artg=True,
                      form="capsule", route="oral", name="Registered CBD 50.5 capsules")
    caps151["approvals"] = []
    caps151["quantity"] = {"value": 90, "unit": "capsules"}
    caps151["directions"] = "One capsule three times a day"
    case("s3-cbd-151mg-capsules", "ARTG CBD capsules at 151.5 mg a day are S4", caps151, [], note=susmp_d)
    case("s3-cbd-up-to-directions", "0.5–1 mL up to three times daily at 100 mg/mL is up to 300 mg: S4",
         m(strong, lambda r: r.update(directions="0.5–1 mL up to 3 times daily")), [], note=susmp_d)
    minor = m(exact, lambda r: (r.update(directions="0.5 mL twice daily"),
                                r["product"].update(declared_schedule="S4"),
                                r["patient"].update(dob="2009-03-01")))
    case("s3-cbd-patient-17", "ARTG CBD for a 17-year-old is S4", minor, [], fhir=True, note=susmp_g)
    case("s3-cbd-patient-17-declared-s3", "ARTG CBD for a 17-year-old declared S3",
         m(minor, lambda r: r["product"].update(declared_schedule="S3")), ["E-SCHEDULE"], note=susmp_g)
    case("s3-cbd-turns-18-today", "ARTG CBD for a patient 18 today is Schedule 3",
         m(minor, lambda r: (r["patient"].update(dob="2008-10-05"), r["product"].update(declared_schedule="S3"))),
         [], note=susmp_g)
    case("s3-cbd-thc-1.5pct", "ARTG CBD with THC 1.5 % of cannabinoids is S4 (S3 allows 1 %)",
         product(m(exact, lambda r: r.update(directions="0.5 mL twice daily")), [mg("CBD", 98.5), mg("THC", 1.5)], 1, "S4",
                 artg=True), [], note=susmp_c)
    spray = product(copy.deepcopy(nsw), [mg("CBD", 5, per="spray")], 1, "S3", artg=True, form="spray",
                    route="oromucosal", name="Registered CBD oromucosal spray")
    spray["approvals"] = []
    spray["quantity"] = {"value": 120, "unit": "spray"}
    spray["directions"] = "Two sprays into the mouth three times daily"
    case("s3-cbd-oromucosal-spray", "An ARTG CBD oromucosal spray at 30 mg a day is Schedule 3", spray, [], note=susmp_route)
    case("s3-cbd-as-directed", "ARTG CBD 'as directed': the dose cannot be judged, the declared S3 stands",
         m(exact, lambda r: r.update(directions="Take as directed by your doctor")), [], note=susmp_d)
    spray = product(copy.deepcopy(nsw), [mg("THC", 27), mg("CBD", 25)], 3, form="spray", route="oromucosal",
                    artg=True, name="Sativex oromucosal spray")
    spray["approvals"] = []
    spray["quantity"] = {"value": 10, "unit": "mL"}
    spray["directions"] = "One spray into the mouth up to 12 times daily as titrated"
    case("artg-nabiximols", "An ARTG nabiximols spray is S8 but needs no TGA approval", spray, [], fhir=True)
    cat1 = product(copy.deepcopy(base("ACT")), [mg("CBD", 100)], 1, "S4", name="Bedrolite CBD 100 oil")
    cat1["state_authorities"] = []
    case("act-cat1-no-cho", "Category 1 (S4) in the ACT needs no CHO approval", cat1, [], fhir=True)
    cat1_tas = product(copy.deepcopy(base("TAS")), [mg("CBD", 100)], 1, "S4", name="Bedrolite CBD 100 oil")
    cat1_tas["state_authorities"] = []
    cat1_tas["prescriber"]["address"] = {"line": "3 Collins St, Melbourne", "state": "VIC", "postcode": "3000"}
    case("tas-cat1-interstate", "Category 1 in Tasmania from a Victorian prescriber: S8 rules do not apply", cat1_tas, [])
    s4_12m = m(cat1, lambda r: r.update(authored_on="2025-10-05", as_of="2026-10-05", treatment_started="2025-10-05", repeats=5, repeat_interval_days=60))
    s4_12m["approvals"][0].update(valid_from="2025-01-01", valid_to="2026-12-31")
    case("s4-12-months-exact", "An S4 prescription on the last day of its 12 months is valid", s4_12m, [])
    case("s4-12-months-plus-1", "An S4 prescription a day past its 12 months has expired",
         m(s4_12m, lambda r: r.update(as_of="2026-10-06")), ["E-RX-EXPIRED"], fhir=True)
    case("cat1-no-approval", "Unregistered category 1 with no approval: pathway only, no S8 rules",
         m(cat1, lambda r: r.update(approvals=[])), ["E-PATHWAY"])

    # State authorities, satisfied.
    sa_old = m(base("SA"), lambda r: r.update(treatment_started="2026-01-10"))
    sa_old["patient"]["dob"] = "1950-05-01"
    case("sa-70-plus-long-treatment", "SA, treatment since January, patient 76: no s18A needed", sa_old, [], fhir=True)
    sa_pall = m(base("SA"), lambda r: r.update(treatment_started="2026-01-10"))
    sa_pall["patient"]["palliative"] = True
    case("sa-palliative-long-treatment", "SA, long treatment, palliative patient: no s18A needed", sa_pall, [])
    sa_auth = m(base("SA"), lambda r: r.update(treatment_started="2026-01-10"))
    sa_auth["state_authorities"] = [authority("SA", "s18A")]
    case("sa-s18a-held", "SA, long treatment with a s18A authority", sa_auth, [], fhir=True)
    sa_exact = m(base("SA"), lambda r: r.update(treatment_started="2026-08-05"))
    case("sa-exactly-2-months", "SA, treatment exactly 2 months old on the check date: no s18A yet", sa_exact, [])
    wa_child = m(base("WA"), lambda r: r["patient"].update(dob="2012-03-01"))
    wa_child["state_authorities"] = [authority("WA", "CEO")]
    case("wa-child-with-ceo", "WA, patient 14 with CEO authorisation", wa_child, [], fhir=True)
    wa_18 = m(base("WA"), lambda r: r["patient"].update(dob="2008-10-05"))
    case("wa-turns-18-today", "WA, patient turns 18 on the check date: no CEO authorisation needed", wa_18, [])
    for j, kind in (("NSW", "NSW_APPROVAL"), ("VIC", "S8_PERMIT"), ("QLD", "S8_PERMIT"), ("WA", "CEO")):
        rx = m(base(j), lambda r: r["patient"].update(drug_dependent=True))
        rx["state_authorities"].append(authority(j, kind))
        case(f"{j.lower()}-dependent-with-authority", f"{j}, drug-dependent patient with a {kind}", rx, [])
    nsw_comp = m(nsw, lambda r: r["product"].update(compounded=True, name="Compounded THC:CBD 5:100 oil (Pharmacy X)"))
    nsw_comp["state_authorities"] = [authority("NSW", "NSW_APPROVAL")]
    case("nsw-compounded-with-approval", "NSW, compounded S8 with a numbered NSW approval", nsw_comp, [], fhir=True)

    # Pathways and prescribers, satisfied.
    case("np-sas-b", "A nurse practitioner on SAS-B",
         m(nsw, lambda r: r["prescriber"].update(kind="nurse_practitioner")), [], fhir=True)
    case("ap-pathway", "A medical practitioner on an Authorised Prescriber approval",
         m(nsw, lambda r: r["approvals"][0].update(pathway="AP", number="AP-2026-17")), [])
    case("sas-a-pathway", "SAS-A notification", m(nsw, lambda r: r["approvals"][0].update(pathway="SAS-A")), [])
    case("ct-pathway", "A clinical-trial approval", m(nsw, lambda r: r["approvals"][0].update(pathway="CT")), [])
    two = m(nsw, lambda r: r["approvals"].insert(0, approval(valid_from="2025-01-01", valid_to="2025-12-31")))
    case("second-approval-current", "An expired approval and a current one: the current one serves", two, [], fhir=True)
    limited = m(nsw, lambda r: r["approvals"][0].update(max_quantity={"value": 75, "unit": "mL"}))
    case("within-approval-limit", "25 mL × 3 supplies = 75 mL, exactly the approval's limit", limited, [])
    cart = product(copy.deepcopy(nsw), [mg("THC", 800, per="g"), mg("CBD", 20, per="g")], 4,
                   form="inhalation_cartridge", route="inhalation", name="Cannatrek Vape 80 cartridge")
    cart["quantity"] = {"value": 2, "unit": "cartridge"}
    cart["directions"] = "Inhale 1–2 puffs as needed, up to 10 daily"
    case("inhalation-cartridge-approved", "A vaporiser cartridge on an approval for cartridges", cart, [], fhir=True)
    fed23 = "FED-23 v2: a filled vaporiser cartridge is supplied by count or by its filled volume (mL)"
    case("inhalation-cartridge-ml", "A vaporiser cartridge prescribed in mL", m(cart, lambda r: r.update(quantity={"value": 1, "unit": "mL"})),
         [], fhir=True, note=fed23)
    case("inhalation-cartridge-plural", "Quantity written 'cartridges' is cartridges",
         m(cart, lambda r: r.update(quantity={"value": 2, "unit": "cartridges"})), [], note=fed23)
    case("quantity-herb-in-ml", "Dried herb prescribed in mL", m(herb, lambda r: r.update(quantity={"value": 10, "unit": "mL"})),
         ["E-QUANTITY"], note="FED-23: dried herb is supplied by weight (g)")
    case("jurisdiction-lower-case", "Jurisdiction written in lower case is read", m(base("VIC"), lambda r: r.update(jurisdiction="vic")), [])

    # Dates and validity, valid edges.
    s8_6m = m(nsw, lambda r: r.update(authored_on="2026-04-05", as_of="2026-10-05", treatment_started="2026-04-05", repeats=1, repeat_interval_days=90))
    case("s8-6-months-exact", "An S8 prescription on the last day of its 6 months is valid", s8_6m, [], fhir=True)
    qld_2021 = m(base("QLD"), lambda r: r.update(as_of="2021-06-01", authored_on="2021-05-30", treatment_started="2021-05-30", rtpm_checked=False))
    qld_2021["approvals"][0].update(valid_from="2021-01-01", valid_to="2021-12-31")
    case("qld-before-qscript", "QLD before QScript was mandatory (27 Sep 2021): no monitoring warning", qld_2021, [])
    case("qld-after-qscript", "The same QLD prescription after QScript became mandatory",
         m(qld_2021, lambda r: (r.update(as_of="2021-10-01", authored_on="2021-09-30", treatment_started="2021-09-30"))),
         ["W-RTPM"], valid=True)

    # Warnings only: still valid.
    for j in ("VIC", "QLD", "SA", "WA"):
        case(f"{j.lower()}-rtpm-not-checked", f"{j}: monitoring check not recorded (warning)",
             m(base(j), lambda r: r.update(rtpm_checked=False)), ["W-RTPM"], valid=True, fhir=(j == "VIC"))
    case("nsw-rtpm-not-required", "NSW: no mandatory monitoring check in the tables", m(nsw, lambda r: r.pop("rtpm_checked")), [])
    case("qld-rtpm-absent", "QLD: monitoring attestation absent", m(base("QLD"), lambda r: r.pop("rtpm_checked")), ["W-RTPM"], valid=True)
    case("vic-cat1-no-rtpm", "VIC category 1 (S4): no monitoring warning",
         m(product(copy.deepcopy(base("VIC")), [mg("CBD", 100)], 1, "S4", name="Bedrolite CBD 100 oil"), lambda r: r.update(rtpm_checked=False)), [])
    ahpra_bad = m(nsw, lambda r: (r["prescriber"].update(ahpra="MED12345"), r["approvals"][0].update(prescriber_ahpra="MED12345")))
    case("ahpra-malformed", "Ahpra number too short (warning; approval still matches)", ahpra_bad, ["W-IDENTIFIER"], valid=True, fhir=True)
    case("ihi-bad-luhn", "IHI with a wrong check digit",
         m(nsw, lambda r: r["patient"].update(ihi=r["patient"]["ihi"][:-1] + str((int(r["patient"]["ihi"][-1]) + 1) % 10))),
         ["W-IDENTIFIER"], valid=True)
    case("hpii-wrong-prefix", "HPI-I with an IHI prefix",
         m(nsw, lambda r: r["prescriber"].update(hpii=hi("800360", 990001571))), ["W-IDENTIFIER"], valid=True, fhir=True)
    case("medicare-bad-check", "Medicare number failing its check digit",
         m(nsw, lambda r: r["patient"].update(medicare="2123456781")), ["W-IDENTIFIER"], valid=True)
    case("ihi-letters", "IHI with letters in it",
         m(nsw, lambda r: r["patient"].update(ihi="80036081666905AB")), ["W-IDENTIFIER"], valid=True)

    # ---- invalid, one code each (and some combinations)
    case("no-approval", "Unregistered category-2 oil with no approval", m(nsw, lambda r: r.update(approvals=[])), ["E-PATHWAY"], fhir=True)
    case("sas-c", "SAS-C cannot authorise medicinal cannabis",
         m(nsw, lambda r: r["approvals"][0].update(pathway="SAS-C")), ["E-PATHWAY"], fhir=True)
    case("approval-no-number", "An approval without its number",
         m(nsw, lambda r: r["approvals"][0].pop("number")), ["E-PATHWAY"])
    case("vic-no-approval", "VIC, unregistered product, no approval",
         m(base("VIC"), lambda r: r.update(approvals=[])), ["E-PATHWAY"])

    case("approval-expired-before-writing", "The approval expired before the prescription was written",
         m(nsw, lambda r: r["approvals"][0].update(valid_from="2025-01-01", valid_to="2025-12-31")), ["E-APPROVAL-EXPIRED"], fhir=True)
    case("approval-expired-before-check", "The approval expired between writing and the check date",
         m(nsw, lambda r: r["approvals"][0].update(valid_to="2026-10-03")), ["E-APPROVAL-EXPIRED"], fhir=True)
    case("approval-not-yet-valid", "The approval starts after the prescription was written",
         m(nsw, lambda r: r["approvals"][0].update(valid_from="2026-10-02")), ["E-APPROVAL-EXPIRED"])
    case("approval-no-dates", "An approval without validity dates",
         m(nsw, lambda r: (r["approvals"][0].pop("valid_from"), r["approvals"][0].pop("valid_to"))), ["E-APPROVAL-EXPIRED"])
    case("qld-approval-expired", "QLD, approval expired",
         m(base("QLD"), lambda r: r["approvals"][0].update(valid_to="2026-06-30")), ["E-APPROVAL-EXPIRED"])

    case("approval-category", "The approval is for category 3; the product is category 2",
         m(nsw, lambda r: r["approvals"][0].update(category=3)), ["E-CATEGORY-MISMATCH"], fhir=True)
    case("declared-category", "Declared category 4 for a category-2 product",
         m(nsw, lambda r: r["product"].update(declared_category=4)), ["E-CATEGORY-MISMATCH"], fhir=True)
    case("approval-no-category", "An approval naming no category",
         m(nsw, lambda r: r["approvals"][0].pop("category")), ["E-CATEGORY-MISMATCH"])
    case("wa-approval-category", "WA, approval for category 1, product category 2",
         m(base("WA"), lambda r: r["approvals"][0].update(category=1)), ["E-CATEGORY-MISMATCH"])

    case("approval-form", "The approval is for capsules; the product is an oil",
         m(nsw, lambda r: r["approvals"][0].update(dosage_form="capsule")), ["E-DOSAGE-FORM-MISMATCH"], fhir=True)
    wafer = m(nsw, lambda r: r["product"].update(form="wafer", name="Medicabilis wafer 5:100"))
    wafer["quantity"] = {"value": 30, "unit": "wafer"}
    for ing in wafer["product"]["ingredients"]:
        ing["per"] = "wafer"
        ing["amount"] = ing["amount"] / 10
    case("approval-form-wafer", "An oil approval does not cover wafers", wafer, ["E-DOSAGE-FORM-MISMATCH"])
    case("sa-approval-form", "SA, approval for spray, product oil",
         m(base("SA"), lambda r: r["approvals"][0].update(dosage_form="spray")), ["E-DOSAGE-FORM-MISMATCH"])

    case("approval-holder", "The approval belongs to another prescriber",
         m(nsw, lambda r: r["approvals"][0].update(prescriber_ahpra="MED0009999999")), ["E-APPROVAL-HOLDER"], fhir=True)
    case("prescriber-no-ahpra", "The prescriber gives no Ahpra number to match the approval",
         m(nsw, lambda r: r["prescriber"].pop("ahpra")), ["E-APPROVAL-HOLDER"], fhir=True)
    case("nt-approval-holder", "NT, approval held by a colleague",
         m(base("NT"), lambda r: r["approvals"][0].update(prescriber_ahpra="MED0007654321")), ["E-APPROVAL-HOLDER"])

    case("quantity-zero", "Quantity 0", m(nsw, lambda r: r["quantity"].update(value=0)), ["E-QUANTITY"], fhir=True)
    case("quantity-negative", "Quantity −5 mL", m(nsw, lambda r: r["quantity"].update(value=-5)), ["E-QUANTITY"])
    case("quantity-unit-for-form", "An oil supplied in grams", m(nsw, lambda r: r["quantity"].update(unit="g")), ["E-QUANTITY"], fhir=True)
    case("quantity-capsules-in-ml", "Capsules supplied in mL", m(caps, lambda r: r["quantity"].update(unit="mL")), ["E-QUANTITY"])
    case("quantity-over-approval", "25 mL × 3 supplies = 75 mL, above the approval's 50 mL",
         m(nsw, lambda r: r["approvals"][0].update(max_quantity={"value": 50, "unit": "mL"})), ["E-QUANTITY"], fhir=True)
    act_limit = m(base("ACT"), lambda r: r["state_authorities"][0].update(max_quantity={"value": 60, "unit": "mL"}))
    case("quantity-over-authority", "ACT, 75 mL in all, CHO approval allows 60 mL", act_limit, ["E-QUANTITY"])

    case("act-no-cho", "ACT S8 without CHO approval", m(base("ACT"), lambda r: r.update(state_authorities=[])), ["E-S8-STATE-AUTHORITY"], fhir=True)
    case("act-cho-expired", "ACT, CHO approval expired",
         m(base("ACT"), lambda r: r["state_authorities"][0].update(valid_to="2026-09-30")), ["E-S8-STATE-AUTHORITY"])
    case("act-cho-from-nsw", "A CHO-type authority issued for NSW does not count in the ACT",
         m(base("ACT"), lambda r: r["state_authorities"][0].update(jurisdiction="NSW")), ["E-S8-STATE-AUTHORITY"])
    case("tas-no-s59e", "TAS S8 without s59E authorisation", m(base("TAS"), lambda r: r.update(state_authorities=[])), ["E-S8-STATE-AUTHORITY"], fhir=True)
    sa_long = m(base("SA"), lambda r: r.update(treatment_started="2026-01-10"))
    case("sa-long-no-s18a", "SA, S8 treatment since January, patient 46, no s18A", sa_long, ["E-S8-STATE-AUTHORITY"], fhir=True)
    case("sa-long-just-over", "SA, treatment 2 months and a day: s18A needed",
         m(base("SA"), lambda r: r.update(treatment_started="2026-08-04")), ["E-S8-STATE-AUTHORITY"])
    for j in ("NSW", "VIC", "QLD", "WA"):
        case(f"{j.lower()}-dependent-no-authority", f"{j}, drug-dependent patient, no authority",
             m(base(j), lambda r: r["patient"].update(drug_dependent=True)), ["E-S8-STATE-AUTHORITY"], fhir=(j in ("NSW", "VIC")))
    case("nsw-compounded-no-approval", "NSW, compounded S8 without NSW approval",
         m(nsw_comp, lambda r: r.update(state_authorities=[])), ["E-S8-STATE-AUTHORITY"], fhir=True)
    case("nsw-compounded-no-number", "NSW, compounded S8, approval number missing",
         m(nsw_comp, lambda r: r["state_authorities"][0].pop("number")), ["E-S8-STATE-AUTHORITY"])
    case("vic-permit-wrong-state", "VIC drug-dependent patient with a NSW approval only",
         m(base("VIC"), lambda r: (r["patient"].update(drug_dependent=True), r["state_authorities"].append(authority("NSW", "NSW_APPROVAL")))),
         ["E-S8-STATE-AUTHORITY"])

    case("declared-s4-for-s8", "Declared S4 for a category-2 (S8) product",
         m(nsw, lambda r: r["product"].update(declared_schedule="S4")), ["E-SCHEDULE"], fhir=True)
    case("declared-s8-for-cat1", "Declared S8 for a category-1 product",
         m(cat1, lambda r: r["product"].update(declared_schedule="S8")), ["E-SCHEDULE"])
    case("declared-s3-for-s8", "Declared S3 for a THC product",
         m(base("QLD"), lambda r: r["product"].update(declared_schedule="S3")), ["E-SCHEDULE"])

    case("np-on-ap", "A nurse practitioner on an Authorised Prescriber approval",
         m(nsw, lambda r: (r["prescriber"].update(kind="nurse_practitioner"), r["approvals"][0].update(pathway="AP"))),
         ["E-PRESCRIBER"], fhir=True)
    case("self-prescribed", "The prescriber prescribes for themselves", m(nsw, lambda r: r.update(self_prescribed=True)), ["E-PRESCRIBER"], fhir=True)
    case("registration-conditions", "The prescriber's registration carries conditions",
         m(nsw, lambda r: r["prescriber"].update(registration_conditions=True)), ["E-PRESCRIBER"], fhir=True)
    case("prescriber-kind-missing", "The prescriber's kind is not stated",
         m(nsw, lambda r: r["prescriber"].pop("kind")), ["E-PRESCRIBER"])
    case("np-on-ap-expired", "A nurse practitioner on an expired AP approval",
         m(nsw, lambda r: (r["prescriber"].update(kind="nurse_practitioner"), r["approvals"][0].update(pathway="AP", valid_to="2026-09-01"))),
         ["E-PRESCRIBER", "E-APPROVAL-EXPIRED"])

    case("jurisdiction-unknown", "Jurisdiction XX", m(nsw, lambda r: r.update(jurisdiction="XX")), ["E-JURISDICTION"], fhir=True)
    case("jurisdiction-missing", "No jurisdiction given", m(nsw, lambda r: r.pop("jurisdiction")), ["E-JURISDICTION"])
    case("nt-prescriber-interstate", "NT S8 from a prescriber practising in QLD",
         m(base("NT"), lambda r: r["prescriber"].update(address={"line": "2 Queen St, Brisbane", "state": "QLD", "postcode": "4000"})),
         ["E-JURISDICTION"], fhir=True)
    case("tas-prescriber-interstate", "TAS S8 (with s59E) from a prescriber practising in VIC",
         m(base("TAS"), lambda r: r["prescriber"].update(address={"line": "2 Collins St, Melbourne", "state": "VIC", "postcode": "3000"})),
         ["E-JURISDICTION"])

    case("content-patient-address", "No patient address", m(nsw, lambda r: r["patient"].pop("address")), ["E-RX-CONTENT"], fhir=True)
    case("content-patient-postcode", "Patient address without postcode",
         m(nsw, lambda r: r["patient"]["address"].pop("postcode")), ["E-RX-CONTENT"])
    case("content-dob-s8", "No date of birth on an S8", m(nsw, lambda r: r["patient"].pop("dob")), ["E-RX-CONTENT"], fhir=True)
    case("content-dob-s4-ok", "No date of birth on an S4 is allowed",
         m(cat1, lambda r: r["patient"].pop("dob")), [])
    case("content-directions", "No directions", m(nsw, lambda r: r.pop("directions")), ["E-RX-CONTENT"], fhir=True)
    case("content-directions-blank", "Blank directions", m(nsw, lambda r: r.update(directions="  ")), ["E-RX-CONTENT"])
    case("content-category-not-product", "\"Category 2 oil\" is not a product name",
         m(nsw, lambda r: r["product"].update(name="Category 2 oil")), ["E-RX-CONTENT"], fhir=True)
    case("content-strength-missing", "An ingredient without its amount",
         m(nsw, lambda r: r["product"]["ingredients"][1].pop("amount")), ["E-RX-CONTENT"], fhir=True)
    case("content-no-ingredients", "No ingredients at all", m(nsw, lambda r: r["product"].update(ingredients=[])), ["E-RX-CONTENT"])
    case("content-unsigned", "Not signed", m(nsw, lambda r: r["prescriber"].update(signed=False)), ["E-RX-CONTENT"], fhir=True)
    case("content-prescriber-phone", "No prescriber phone", m(nsw, lambda r: r["prescriber"].pop("phone")), ["E-RX-CONTENT"], fhir=True, role=True)
    case("content-patient-name", "No patient name", m(nsw, lambda r: r["patient"].pop("name")), ["E-RX-CONTENT"])
    case("content-form", "No dosage form", m(nsw, lambda r: r["product"].pop("form")), ["E-RX-CONTENT"])
    case("content-quantity", "No quantity", m(nsw, lambda r: r.pop("quantity")), ["E-RX-CONTENT"])
    case("content-future-dated", "Written after the check date",
         m(nsw, lambda r: r.update(authored_on="2026-10-06", treatment_started="2026-10-06")), ["E-RX-CONTENT"])
    case("content-medication-concept", "FHIR medicationCodeableConcept: no form, no strengths",
         nsw, ["E-RX-CONTENT"], fhir=True, simple=False, concept=True)
    case("content-per-missing", "A strength with no basis (per what?)",
         m(nsw, lambda r: r["product"]["ingredients"][0].pop("per")), ["E-RX-CONTENT"])

    case("repeats-no-interval", "S8 repeats without an interval", m(nsw, lambda r: r.pop("repeat_interval_days")), ["E-REPEATS"], fhir=True)
    case("repeats-beyond-validity", "8 repeats every 28 days run past 6 months",
         m(nsw, lambda r: r.update(repeats=8)), ["E-REPEATS"], fhir=True)
    case("s4-repeats-beyond-validity", "S4, 12 repeats every 31 days run past 12 months",
         m(cat1, lambda r: r.update(repeats=12, repeat_interval_days=31)), ["E-REPEATS"])
    case("s4-repeats-no-interval-ok", "S4 repeats without an interval are allowed",
         m(cat1, lambda r: r.pop("repeat_interval_days")), [])

    case("s8-expired", "An S8 a day past 6 months", m(s8_6m, lambda r: r.update(as_of="2026-10-06")), ["E-RX-EXPIRED"], fhir=True)
    case("s8-expired-long", "An S8 written a year ago (approval still valid)",
         m(nsw, lambda r: (r.update(authored_on="2025-10-01", treatment_started="2025-10-01", repeats=0), r["approvals"][0].update(valid_from="2025-01-01"))),
         ["E-RX-EXPIRED"])
    case("fhir-validity-period-ended", "FHIR validityPeriod ended before the check date",
         nsw, ["E-RX-EXPIRED", "E-REPEATS"], fhir=True, simple=False, validity_end="2026-10-04")

    smoked = m(herb, lambda r: r["product"].update(route="smoked"))
    case("route-smoked", "Dried herb prescribed to be smoked", smoked, ["E-ROUTE"], fhir=True)
    case("route-oil-vaporised", "An oil to be vaporised", m(nsw, lambda r: r["product"].update(route="vaporisation")), ["E-ROUTE"], fhir=True)
    herb_no_inhal = m(herb, lambda r: r["approvals"][0].update(dosage_form="oil"))
    fed07 = "FED-07: the approval must cover the product's dosage form (TGA SAS-B/AP approvals name one)"
    case("approval-form-herb-on-oil", "Dried herb on an approval for oil: the dosage form does not match the approval",
         herb_no_inhal, ["E-DOSAGE-FORM-MISMATCH"], fhir=True, note=fed07)
    case("approval-form-cartridge-on-herb", "A cartridge on an approval for dried herb",
         m(cart, lambda r: r["approvals"][0].update(dosage_form="dried_herb")), ["E-DOSAGE-FORM-MISMATCH"], note=fed07)
    case("approval-two-forms", "Dried herb with approvals for oil and for dried herb: the herb one serves",
         m(herb, lambda r: r["approvals"].insert(0, approval(category=4, dosage_form="oil", number="SASB-2026-0041"))), [], note=fed07)
    case("route-smoked-oil-approval", "Dried herb to be smoked, on an oil approval: both faults",
         m(herb_no_inhal, lambda r: r["product"].update(route="smoked")), ["E-ROUTE", "E-DOSAGE-FORM-MISMATCH"], note=fed07)
    case("route-herb-no-approval", "Dried herb with no approval at all: no pathway, and no inhalation approval",
         m(herb, lambda r: r.update(approvals=[])), ["E-PATHWAY", "E-ROUTE"],
         note="FED-04: unregistered products need an approval; FED-15: inhaled products one for an inhalation form")
    case("route-capsule-topical", "A capsule applied topically", m(caps, lambda r: r["product"].update(route="topical")), ["E-ROUTE"])

    wa_child_no = m(base("WA"), lambda r: r["patient"].update(dob="2012-03-01"))
    case("wa-child-no-ceo", "WA, patient 14, no CEO authorisation", wa_child_no, ["E-AGE"], fhir=True)
    case("wa-child-dependent-no-ceo", "WA, patient 14 and drug-dependent, no CEO authorisation: E-AGE",
         m(wa_child_no, lambda r: r["patient"].update(drug_dependent=True)), ["E-AGE"])
    case("wa-child-ceo-expired", "WA, patient 14, CEO authorisation expired",
         m(wa_child, lambda r: r["state_authorities"][0].update(valid_to="2026-06-30")), ["E-AGE"])
    case("wa-17-no-ceo", "WA, patient a day short of 18, no CEO authorisation",
         m(base("WA"), lambda r: r["patient"].update(dob="2008-10-06")), ["E-AGE"])
    case("wa-child-cat1", "WA, patient 14 on category 1 (S4): no CEO authorisation needed",
         m(product(copy.deepcopy(base("WA")), [mg("CBD", 100)], 1, "S4", name="Bedrolite CBD 100 oil"), lambda r: r["patient"].update(dob="2012-03-01")), [])

    # Combinations.
    case("combo-expired-unsigned", "Approval expired and not signed",
         m(nsw, lambda r: (r["approvals"][0].update(valid_to="2026-09-01"), r["prescriber"].update(signed=False))),
         ["E-APPROVAL-EXPIRED", "E-RX-CONTENT"], fhir=True)
    case("combo-act-no-cho-no-rtpm", "ACT without CHO approval, approval for another prescriber",
         m(base("ACT"), lambda r: (r.update(state_authorities=[]), r["approvals"][0].update(prescriber_ahpra="MED0009999999"))),
         ["E-S8-STATE-AUTHORITY", "E-APPROVAL-HOLDER"])
    case("combo-vic-dependent-no-rtpm", "VIC drug-dependent without permit, monitoring not checked",
         m(base("VIC"), lambda r: (r["patient"].update(drug_dependent=True), r.update(rtpm_checked=False))),
         ["E-S8-STATE-AUTHORITY", "W-RTPM"])

    # ---- unreadable input
    raw("input-malformed-json", "Malformed JSON", '{"jurisdiction": "NSW", "patient": {', "$")
    raw("input-not-json", "Not JSON at all", "Rx: CBD oil 25 mL", "$")
    bad("input-array", "A JSON array", [base("NSW")], "$")
    bad("input-null", "JSON null", None, "$")
    bad("input-unknown-field", "An unknown field (typo of directions)",
        m(nsw, lambda r: r.update(direction="twice daily")), "direction")
    bad("input-unknown-nested-field", "An unknown field in the patient",
        m(nsw, lambda r: r["patient"].update(birthday="1980-01-01")), "patient.birthday")
    bad("input-bad-date", "A date that does not exist", m(nsw, lambda r: r.update(authored_on="2026-13-45")), "authored_on")
    bad("input-date-format", "A date written day-first", m(nsw, lambda r: r["patient"].update(dob="01/01/1980")), "patient.dob")
    bad("input-absurd-strength", "5,000 mg/mL is not a strength",
        m(nsw, lambda r: r["product"]["ingredients"][0].update(amount=5000)), "product.ingredients[0].amount")
    bad("input-negative-strength", "A negative strength",
        m(nsw, lambda r: r["product"]["ingredients"][1].update(amount=-5)), "product.ingredients[1].amount")
    bad("input-percent-over-100", "150 % w/w", m(herb, lambda r: r["product"]["ingredients"][0].update(amount=150)), "product.ingredients[0].amount")
    bad("input-mixed-bases", "Strengths per mL and per g mixed",
        m(nsw, lambda r: r["product"]["ingredients"][1].update(per="g")), "product.ingredients[1].per")
    bad("input-unknown-unit", "A strength in grains", m(nsw, lambda r: r["product"]["ingredients"][0].update(unit="gr")), "product.ingredients[0].unit")
    bad("input-unknown-form", "A form Baton does not know", m(nsw, lambda r: r["product"].update(form="gummy")), "product.form")
    bad("input-category-7", "Declared category 7", m(nsw, lambda r: r["product"].update(declared_category=7)), "product.declared_category")
    bad("input-repeats-string", "Repeats as text", m(nsw, lambda r: r.update(repeats="two")), "repeats")
    bad("input-repeats-negative", "Negative repeats", m(nsw, lambda r: r.update(repeats=-1)), "repeats")
    bad("input-wrong-pathway", "An approval pathway that does not exist",
        m(nsw, lambda r: r["approvals"][0].update(pathway="SAS-D")), "approvals[0].pathway")
    fb = to_fhir(nsw)
    bad("input-fhir-wrong-resource", "A Patient resource instead of a Bundle", fb["entry"][1]["resource"], "resourceType", "fhir")
    no_mr = copy.deepcopy(fb)
    no_mr["entry"] = [e for e in no_mr["entry"] if e["resource"]["resourceType"] != "MedicationRequest"]
    bad("input-fhir-no-request", "A Bundle without a MedicationRequest", no_mr, "Bundle.entry", "fhir")
    no_patient = copy.deepcopy(fb)
    no_patient["entry"] = [e for e in no_patient["entry"] if e["resource"]["resourceType"] != "Patient"]
    bad("input-fhir-no-patient", "A Bundle whose Patient entry is missing", no_patient, "Bundle.entry[0].resource.subject.reference", "fhir")
    no_med = copy.deepcopy(fb)
    no_med["entry"] = [e for e in no_med["entry"] if e["resource"]["resourceType"] != "Medication"]
    bad("input-fhir-no-medication", "A Bundle whose Medication entry is missing", no_med, "Bundle.entry[0].resource.medicationReference.reference", "fhir")
    no_entries = {"resourceType": "Bundle", "type": "collection"}
    bad("input-fhir-no-entries", "An empty Bundle", no_entries, "Bundle.entry", "fhir")
    bad_date = copy.deepcopy(fb)
    bad_date["entry"][0]["resource"]["authoredOn"] = "yesterday"
    bad("input-fhir-bad-date", "authoredOn that does not parse", bad_date, "Bundle.entry[0].resource.authoredOn", "fhir")
    bad_ext = copy.deepcopy(fb)
    bad_ext["entry"][0]["resource"]["extension"].append({"url": EXT + "rtpm-check", "valueBoolean": True})
    bad("input-fhir-unknown-extension", "A misspelt Baton extension", bad_ext, "Bundle.entry[0].resource.extension[7].url", "fhir")
    bad_strength = copy.deepcopy(fb)
    bad_strength["entry"][3]["resource"]["ingredient"][0]["strength"]["numerator"]["value"] = 100000
    bad("input-fhir-absurd-strength", "FHIR strength of 100,000 mg/mL", bad_strength, "product.ingredients[0].amount", "fhir")
    two_mr = copy.deepcopy(fb)
    two_mr["entry"].append(copy.deepcopy(fb["entry"][0]))
    bad("input-fhir-two-requests", "Two MedicationRequests in one Bundle", two_mr, "Bundle.entry[4].resource", "fhir")
    month = copy.deepcopy(fb)
    month["entry"][0]["resource"]["dispenseRequest"]["dispenseInterval"] = {"value": 1, "unit": "month", "code": "mo"}
    bad("input-fhir-interval-months", "A dispense interval in months cannot be made days exactly",
        month, "Bundle.entry[0].resource.dispenseRequest.dispenseInterval.code", "fhir")
    bad_kind = copy.deepcopy(fb)
    for e in bad_kind["entry"][2]["resource"]["extension"]:
        if e["url"].endswith("prescriber-kind"):
            e["valueCode"] = "pharmacist"
    bad("input-fhir-unknown-kind", "A prescriber kind Baton does not know", bad_kind, "Bundle.entry[2].resource.extension[0]", "fhir")


FIXTURES = HERE.parent.parent / "fixtures" / "rx"


def write_fixtures():
    """Sample prescriptions for the docs, the README and the CLI tests."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    samples = {
        "nsw-cat2-sas-b.json": base("NSW"),
        "nsw-cat2-sas-b.fhir.json": to_fhir(base("NSW"), role=True),
        "act-no-cho.json": m(base("ACT"), lambda r: r.update(state_authorities=[])),
        "wa-child-np-ap.fhir.json": to_fhir(m(base("WA"), lambda r: (
            r["patient"].update(dob="2012-03-01"),
            r["prescriber"].update(kind="nurse_practitioner"),
            r["approvals"][0].update(pathway="AP", number="AP-2026-17")))),
    }
    for name, value in samples.items():
        (FIXTURES / name).write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n")


def main():
    import sys
    build()
    if "--check" in sys.argv:
        # The committed cases must be what this script writes: a hand edit to a case file, or
        # an edit here not re-run, fails the test command.
        stale = [c["id"] for c in CASES
                 if not (OUT / f"{c['id']}.json").exists()
                 or (OUT / f"{c['id']}.json").read_text() != json.dumps(c, indent=1, ensure_ascii=False) + "\n"]
        extra = sorted({p.stem for p in OUT.glob("*.json")} - {c["id"] for c in CASES})
        if stale or extra:
            raise SystemExit(f"evals/rx/cases is stale: re-run evals/rx/make.py ({len(stale)} differ, {len(extra)} extra)")
        print(f"{len(CASES)} committed cases match evals/rx/make.py")
        return
    write_fixtures()
    ids = [c["id"] for c in CASES]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"duplicate case ids: {sorted(dupes)}")
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir()
    for c in CASES:
        (OUT / f"{c['id']}.json").write_text(json.dumps(c, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(CASES)} cases written to {OUT}")


if __name__ == "__main__":
    main()
