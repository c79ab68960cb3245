//! FHIR R4 input, the exact reader: a Bundle holding one MedicationRequest with its Patient,
//! Practitioner (and optional PractitionerRole, Location) and Medication. It is rewritten into
//! the simple format and read by the same deserializer, so both formats meet exactly the same
//! validation; errors are reported at the FHIR element they came from. Well-formed bundles are
//! read first by `fhir_fast.rs`, which must agree with this reader. The mapping is in
//! `docs/rx-format.md`.

use serde_json::{Map, Value, json};

use crate::input::{InputError, kind_of};
use crate::model::{Day, Prescription};

/// Baton's extensions live under this URL.
pub const EXTENSION_BASE: &str = "https://baton.dev/fhir/StructureDefinition/";
/// Ahpra registration number system.
pub const AHPRA: &str = "http://hl7.org.au/id/ahpra-registration-number";
/// HPI-I system.
pub const HPII: &str = "http://ns.electronichealth.net.au/id/hi/hpii/1.0";
/// IHI system.
pub const IHI: &str = "http://ns.electronichealth.net.au/id/hi/ihi/1.0";
/// Medicare number system.
pub const MEDICARE: &str = "http://ns.electronichealth.net.au/id/medicare-number";

/// Baton's extensions on the MedicationRequest.
pub(crate) const REQUEST_EXTENSIONS: &[&str] = &[
    "as-of",
    "jurisdiction",
    "self-prescribed",
    "treatment-started",
    "rtpm-checked",
    "signed",
    "tga-approval",
    "state-authority",
];
/// Baton's extensions on the Patient.
pub(crate) const PATIENT_EXTENSIONS: &[&str] = &["drug-dependent", "palliative"];
/// Baton's extensions on the Practitioner.
pub(crate) const PRACTITIONER_EXTENSIONS: &[&str] = &["prescriber-kind", "registration-conditions"];
/// Baton's extensions on the Medication.
pub(crate) const MEDICATION_EXTENSIONS: &[&str] = &[
    "artg",
    "compounded",
    "declared-category",
    "declared-schedule",
];

/// A resource of the bundle and where it sits.
struct Entry<'a> {
    kind: &'a str,
    id: Option<&'a str>,
    full_url: Option<&'a str>,
    resource: &'a Map<String, Value>,
    path: String,
}

/// The simple-format object being built, and where each of its parts came from.
#[derive(Default)]
struct Out {
    root: Map<String, Value>,
    origins: Vec<(String, String)>,
}

impl Out {
    fn set(&mut self, path: &[&str], value: Value, origin: String) {
        let mut object = &mut self.root;
        for key in &path[..path.len() - 1] {
            let slot = object
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(inner) = slot else { return };
            object = inner;
        }
        object.insert(path[path.len() - 1].to_owned(), value);
        self.origins.push((path.join("."), origin));
    }

    fn push(&mut self, key: &str, value: Value, origin: String) {
        let index = match self
            .root
            .entry(key.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => {
                items.push(value);
                items.len() - 1
            }
            _ => return,
        };
        self.origins.push((format!("{key}[{index}]"), origin));
    }

    /// The FHIR element a simple-format path came from (longest recorded prefix).
    fn origin_of(&self, path: &str) -> Option<String> {
        self.origins
            .iter()
            .filter(|(simple, _)| {
                path == simple
                    || path.starts_with(&format!("{simple}."))
                    || path.starts_with(&format!("{simple}["))
            })
            .max_by_key(|(simple, _)| simple.len())
            .map(|(simple, origin)| format!("{origin}{}", &path[simple.len()..]))
    }

    /// Deserialize what was built as a simple-format prescription; an error names the FHIR
    /// element the offending part came from.
    fn finish(mut self) -> Result<Prescription, InputError> {
        serde_path_to_error::deserialize(Value::Object(std::mem::take(&mut self.root))).map_err(
            |error| {
                let simple = error.path().to_string();
                let path = self.origin_of(&simple).unwrap_or(simple);
                InputError::new(path, error.into_inner().to_string())
            },
        )
    }
}

/// Read a FHIR R4 Bundle.
pub fn parse(value: &Value) -> Result<Prescription, InputError> {
    let bundle = object(value, "Bundle")?;
    let kind = bundle.get("resourceType").and_then(Value::as_str);
    if kind != Some("Bundle") {
        return Err(InputError::new(
            "resourceType",
            format!(
                "expected a FHIR `Bundle` holding the MedicationRequest, got `{}`",
                kind.unwrap_or("?")
            ),
        ));
    }
    let entries = entries(bundle)?;
    let request = only(&entries, "MedicationRequest")?;
    let mut out = Out::default();
    let extensions = baton_extensions(request.resource, &request.path, REQUEST_EXTENSIONS)?;
    read_request(bundle, request, &extensions, &mut out)?;
    let patient = referenced(
        &entries,
        request.resource.get("subject"),
        &format!("{}.subject", request.path),
        &["Patient"],
    )?;
    read_patient(patient, &mut out)?;
    read_prescriber(&entries, request, &extensions, &mut out)?;
    read_product(&entries, request, &mut out)?;
    let valid_until = read_supply(request, &mut out)?;
    let mut prescription = out.finish()?;
    prescription.valid_until = valid_until;
    Ok(prescription)
}

/// The request's own facts: check date, jurisdiction and the other flags, when it was
/// authored, and the approvals and authorities it carries.
fn read_request(
    bundle: &Map<String, Value>,
    request: &Entry<'_>,
    extensions: &[(&str, &Value, String)],
    out: &mut Out,
) -> Result<(), InputError> {
    if let Some((ext, path)) = find(extensions, "as-of") {
        out.set(&["as_of"], date_value(ext, &path)?, path);
    } else if let Some(timestamp) = bundle.get("timestamp") {
        out.set(
            &["as_of"],
            date_of(timestamp, "Bundle.timestamp")?,
            "Bundle.timestamp".into(),
        );
    }
    for (name, key) in [
        ("jurisdiction", "jurisdiction"),
        ("self-prescribed", "self_prescribed"),
        ("rtpm-checked", "rtpm_checked"),
    ] {
        if let Some((ext, path)) = find(extensions, name) {
            out.set(&[key], primitive(ext, &path)?, path);
        }
    }
    if let Some((ext, path)) = find(extensions, "treatment-started") {
        out.set(&["treatment_started"], date_value(ext, &path)?, path);
    }
    if let Some(authored) = request.resource.get("authoredOn") {
        let path = format!("{}.authoredOn", request.path);
        out.set(&["authored_on"], date_of(authored, &path)?, path);
    }
    for (name, key) in [
        ("tga-approval", "approvals"),
        ("state-authority", "state_authorities"),
    ] {
        for (_, ext, path) in extensions.iter().filter(|(n, _, _)| *n == name) {
            out.push(key, complex(ext, path)?, path.clone());
        }
    }
    Ok(())
}

/// The prescriber: the requester, a Practitioner or a PractitionerRole pointing at one.
fn read_prescriber(
    entries: &[Entry<'_>],
    request: &Entry<'_>,
    extensions: &[(&str, &Value, String)],
    out: &mut Out,
) -> Result<(), InputError> {
    let requester = referenced(
        entries,
        request.resource.get("requester"),
        &format!("{}.requester", request.path),
        &["Practitioner", "PractitionerRole"],
    )?;
    let (practitioner, role) = if requester.kind == "PractitionerRole" {
        let role_path = format!("{}.practitioner", requester.path);
        let practitioner = referenced(
            entries,
            requester.resource.get("practitioner"),
            &role_path,
            &["Practitioner"],
        )?;
        (practitioner, Some(requester))
    } else {
        (requester, None)
    };
    read_practitioner(entries, practitioner, role, out)?;
    if let Some((ext, path)) = find(extensions, "signed") {
        out.set(&["prescriber", "signed"], primitive(ext, &path)?, path);
    }
    Ok(())
}

/// The product (a coded concept or a Medication resource), its route and the directions.
fn read_product(
    entries: &[Entry<'_>],
    request: &Entry<'_>,
    out: &mut Out,
) -> Result<(), InputError> {
    let mr = request.resource;
    let at = |field: &str| format!("{}.{field}", request.path);
    if let Some(concept) = mr.get("medicationCodeableConcept") {
        let path = at("medicationCodeableConcept");
        if let Some(name) = concept_text(concept, &path)? {
            out.set(&["product", "name"], Value::String(name), path);
        }
    } else {
        let medication = referenced(
            entries,
            mr.get("medicationReference"),
            &at("medicationReference"),
            &["Medication"],
        )?;
        read_medication(medication, out)?;
    }
    let dosage = mr.get("dosageInstruction").and_then(|d| d.get(0));
    if let Some(route) = dosage.and_then(|d| d.get("route")) {
        let path = at("dosageInstruction[0].route");
        if let Some(code) = concept_code(route, &path)? {
            out.set(&["product", "route"], Value::String(code), path);
        }
    }
    if let Some(text) = dosage.and_then(|d| d.get("text")) {
        out.set(
            &["directions"],
            text.clone(),
            at("dosageInstruction[0].text"),
        );
    }
    Ok(())
}

/// The supply: quantity, repeats and their interval; the end of the validity period, which
/// has no simple-format field and is returned instead.
fn read_supply(request: &Entry<'_>, out: &mut Out) -> Result<Option<Day>, InputError> {
    let Some(dispense) = request.resource.get("dispenseRequest") else {
        return Ok(None);
    };
    let base = format!("{}.dispenseRequest", request.path);
    let dispense = object(dispense, &base)?;
    if let Some(quantity) = dispense.get("quantity") {
        let path = format!("{base}.quantity");
        out.set(&["quantity"], quantity_of(quantity, &path)?, path);
    }
    if let Some(repeats) = dispense.get("numberOfRepeatsAllowed") {
        out.set(
            &["repeats"],
            repeats.clone(),
            format!("{base}.numberOfRepeatsAllowed"),
        );
    }
    if let Some(interval) = dispense.get("dispenseInterval") {
        let path = format!("{base}.dispenseInterval");
        out.set(&["repeat_interval_days"], days_of(interval, &path)?, path);
    }
    let mut valid_until = None;
    if let Some(end) = dispense.get("validityPeriod").and_then(|p| p.get("end")) {
        let path = format!("{base}.validityPeriod.end");
        if let Value::String(text) = date_of(end, &path)? {
            valid_until = Day::parse(&text);
        }
    }
    Ok(valid_until)
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InputError> {
    value
        .as_object()
        .ok_or_else(|| InputError::new(path, format!("expected an object, got {}", kind_of(value))))
}

fn entries(bundle: &Map<String, Value>) -> Result<Vec<Entry<'_>>, InputError> {
    let Some(list) = bundle.get("entry") else {
        return Err(InputError::new(
            "Bundle.entry",
            "the Bundle has no entries: it must hold the MedicationRequest, Patient, \
             Practitioner and Medication",
        ));
    };
    let Value::Array(list) = list else {
        return Err(InputError::new(
            "Bundle.entry",
            format!("expected an array, got {}", kind_of(list)),
        ));
    };
    let mut entries = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        let path = format!("Bundle.entry[{index}]");
        let entry = object(entry, &path)?;
        let Some(resource) = entry.get("resource") else {
            return Err(InputError::new(
                format!("{path}.resource"),
                "entry has no resource",
            ));
        };
        let resource = object(resource, &format!("{path}.resource"))?;
        let Some(kind) = resource.get("resourceType").and_then(Value::as_str) else {
            return Err(InputError::new(
                format!("{path}.resource.resourceType"),
                "resource has no resourceType",
            ));
        };
        entries.push(Entry {
            kind,
            id: resource.get("id").and_then(Value::as_str),
            full_url: entry.get("fullUrl").and_then(Value::as_str),
            resource,
            path: format!("{path}.resource"),
        });
    }
    Ok(entries)
}

fn only<'a, 'b>(entries: &'b [Entry<'a>], kind: &str) -> Result<&'b Entry<'a>, InputError> {
    let mut found = entries.iter().filter(|entry| entry.kind == kind);
    match (found.next(), found.next()) {
        (Some(entry), None) => Ok(entry),
        (None, _) => Err(InputError::new(
            "Bundle.entry",
            format!("the Bundle holds no {kind}"),
        )),
        (Some(_), Some(second)) => Err(InputError::new(
            second.path.clone(),
            format!("the Bundle holds more than one {kind}: send one prescription per Bundle"),
        )),
    }
}

/// The entry a Reference points at (by `fullUrl`, `Type/id` or a URL ending in it); with no
/// reference, the bundle's only resource of the kind.
fn referenced<'a, 'b>(
    entries: &'b [Entry<'a>],
    reference: Option<&Value>,
    path: &str,
    kinds: &[&str],
) -> Result<&'b Entry<'a>, InputError> {
    let wanted = kinds.join(" or ");
    let target = match reference {
        None => None,
        Some(value) => {
            let object = object(value, path)?;
            match object.get("reference") {
                None => None,
                Some(Value::String(text)) => Some(text.as_str()),
                Some(other) => {
                    return Err(InputError::new(
                        format!("{path}.reference"),
                        format!("expected a string, got {}", kind_of(other)),
                    ));
                }
            }
        }
    };
    let Some(target) = target else {
        let mut candidates = entries.iter().filter(|e| kinds.contains(&e.kind));
        return match (candidates.next(), candidates.next()) {
            (Some(entry), None) => Ok(entry),
            (None, _) => Err(InputError::new(
                path,
                format!("the Bundle holds no {wanted} entry"),
            )),
            (Some(_), Some(_)) => Err(InputError::new(
                path,
                format!("several {wanted} entries and no reference saying which"),
            )),
        };
    };
    entries
        .iter()
        .find(|entry| {
            entry.full_url == Some(target)
                || entry.id.is_some_and(|id| {
                    let local = format!("{}/{id}", entry.kind);
                    target == local || target.ends_with(&format!("/{local}"))
                })
        })
        .filter(|entry| kinds.contains(&entry.kind))
        .ok_or_else(|| {
            InputError::new(
                format!("{path}.reference"),
                format!("`{target}` is not a {wanted} entry of the Bundle"),
            )
        })
}

/// Baton's extensions on `resource`: `(name, extension, path)`. An extension under Baton's
/// base that is not one of `allowed` is an error (a typo would otherwise drop a fact).
fn baton_extensions<'a>(
    resource: &'a Map<String, Value>,
    base: &str,
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a Value, String)>, InputError> {
    let Some(list) = resource.get("extension") else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = list else {
        return Err(InputError::new(
            format!("{base}.extension"),
            format!("expected an array, got {}", kind_of(list)),
        ));
    };
    let mut found = Vec::new();
    for (index, extension) in list.iter().enumerate() {
        let path = format!("{base}.extension[{index}]");
        let url = extension
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| InputError::new(format!("{path}.url"), "extension has no url"))?;
        let Some(name) = url.strip_prefix(EXTENSION_BASE) else {
            continue;
        };
        if !allowed.contains(&name) {
            return Err(InputError::new(
                format!("{path}.url"),
                format!(
                    "unknown Baton extension `{name}` here; known: {}",
                    allowed.join(", ")
                ),
            ));
        }
        found.push((name, extension, path));
    }
    Ok(found)
}

fn find<'a>(extensions: &[(&str, &'a Value, String)], name: &str) -> Option<(&'a Value, String)> {
    extensions
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, extension, path)| (*extension, path.clone()))
}

/// The `value[x]` of a simple extension, as JSON.
fn primitive(extension: &Value, path: &str) -> Result<Value, InputError> {
    for key in [
        "valueBoolean",
        "valueCode",
        "valueString",
        "valueInteger",
        "valueUnsignedInt",
        "valuePositiveInt",
        "valueDecimal",
    ] {
        if let Some(value) = extension.get(key) {
            return Ok(value.clone());
        }
    }
    if let Some(value) = extension
        .get("valueDate")
        .or_else(|| extension.get("valueDateTime"))
    {
        return date_of(value, &format!("{path}.valueDate"));
    }
    if let Some(quantity) = extension.get("valueQuantity") {
        return quantity_of(quantity, &format!("{path}.valueQuantity"));
    }
    Err(InputError::new(
        path,
        "extension has no value (valueBoolean, valueCode, valueString, valueInteger, valueDate…)",
    ))
}

fn date_value(extension: &Value, path: &str) -> Result<Value, InputError> {
    match extension
        .get("valueDate")
        .or_else(|| extension.get("valueDateTime"))
    {
        Some(value) => date_of(value, &format!("{path}.valueDate")),
        None => Err(InputError::new(path, "expected valueDate")),
    }
}

/// A complex extension (`tga-approval`, `state-authority`) as a simple-format object: its
/// sub-extensions are named exactly like the simple format's fields.
fn complex(extension: &Value, path: &str) -> Result<Value, InputError> {
    let Some(Value::Array(parts)) = extension.get("extension") else {
        return Err(InputError::new(
            format!("{path}.extension"),
            "expected sub-extensions (pathway, number, category…)",
        ));
    };
    let mut object = Map::new();
    for (index, part) in parts.iter().enumerate() {
        let at = format!("{path}.extension[{index}]");
        let name = part
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| InputError::new(format!("{at}.url"), "sub-extension has no url"))?;
        object.insert(name.to_owned(), primitive(part, &at)?);
    }
    Ok(Value::Object(object))
}

/// The date part of a FHIR date or dateTime.
fn date_of(value: &Value, path: &str) -> Result<Value, InputError> {
    let Value::String(text) = value else {
        return Err(InputError::new(
            path,
            format!("expected a date string, got {}", kind_of(value)),
        ));
    };
    let day = text.get(..10).and_then(Day::parse);
    let rest_ok = text
        .get(10..)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('T'));
    match day {
        Some(day) if rest_ok => Ok(Value::String(day.to_string())),
        _ => Err(InputError::new(
            path,
            format!("`{text}` is not a FHIR date (YYYY-MM-DD, optionally with a time)"),
        )),
    }
}

fn quantity_of(value: &Value, path: &str) -> Result<Value, InputError> {
    let quantity = object(value, path)?;
    let mut out = Map::new();
    if let Some(number) = quantity.get("value") {
        out.insert("value".into(), number.clone());
    }
    if let Some(unit) = unit_of(quantity) {
        out.insert("unit".into(), Value::String(unit));
    }
    Ok(Value::Object(out))
}

/// A Quantity's unit: UCUM `code` first (annotations like `{capsule}` unwrapped), else `unit`.
fn unit_of(quantity: &Map<String, Value>) -> Option<String> {
    quantity
        .get("code")
        .or_else(|| quantity.get("unit"))
        .and_then(Value::as_str)
        .map(|unit| {
            unit.trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_owned()
        })
}

fn days_of(value: &Value, path: &str) -> Result<Value, InputError> {
    let duration = object(value, path)?;
    let Some(number) = duration.get("value").and_then(Value::as_f64) else {
        return Err(InputError::new(
            format!("{path}.value"),
            "expected a number",
        ));
    };
    let per_unit = match unit_of(duration).as_deref() {
        Some("d" | "day" | "days") => 1.0,
        Some("wk" | "week" | "weeks") => 7.0,
        other => {
            return Err(InputError::new(
                format!("{path}.code"),
                format!(
                    "interval unit `{}` cannot be turned into days exactly: use d or wk",
                    other.unwrap_or("(none)")
                ),
            ));
        }
    };
    let days = number * per_unit;
    if days.fract() != 0.0 || days < 0.0 {
        return Err(InputError::new(
            format!("{path}.value"),
            format!("{number} is not a whole number of days"),
        ));
    }
    Ok(json!(days as u64))
}

/// A CodeableConcept's text, else its first coding's display, else code.
fn concept_text(value: &Value, path: &str) -> Result<Option<String>, InputError> {
    let concept = object(value, path)?;
    if let Some(Value::String(text)) = concept.get("text") {
        return Ok(Some(text.clone()));
    }
    let first = concept.get("coding").and_then(|c| c.get(0));
    Ok(first
        .and_then(|c| c.get("display").or_else(|| c.get("code")))
        .and_then(Value::as_str)
        .map(str::to_owned))
}

/// A CodeableConcept's first coding's code, else its text.
fn concept_code(value: &Value, path: &str) -> Result<Option<String>, InputError> {
    let concept = object(value, path)?;
    let code = concept
        .get("coding")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("code"))
        .and_then(Value::as_str);
    Ok(code
        .or_else(|| concept.get("text").and_then(Value::as_str))
        .map(str::to_owned))
}

fn human_name(value: &Value) -> Option<String> {
    let name = value.get(0)?;
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|given| given.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(family) = name.get("family").and_then(Value::as_str) {
        parts.push(family);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn address_of(value: &Value) -> Option<Value> {
    let address = value.get(0).unwrap_or(value);
    let address = address.as_object()?;
    let mut out = Map::new();
    if let Some(lines) = address.get("line").and_then(Value::as_array) {
        let line: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
        out.insert("line".into(), Value::String(line.join(", ")));
    }
    if let Some(city) = address.get("city").and_then(Value::as_str)
        && let Some(Value::String(line)) = out.get_mut("line")
    {
        line.push_str(", ");
        line.push_str(city);
    }
    if let Some(state) = address.get("state") {
        out.insert("state".into(), state.clone());
    }
    if let Some(postcode) = address.get("postalCode") {
        out.insert("postcode".into(), postcode.clone());
    }
    Some(Value::Object(out))
}

fn identifier(resource: &Map<String, Value>, system: &str) -> Option<Value> {
    resource
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|id| id.get("system").and_then(Value::as_str) == Some(system))
        .and_then(|id| id.get("value"))
        .cloned()
}

fn phone_of(resource: &Map<String, Value>) -> Option<Value> {
    resource
        .get("telecom")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
        .and_then(|t| t.get("value"))
        .cloned()
}

fn read_patient(patient: &Entry<'_>, out: &mut Out) -> Result<(), InputError> {
    let resource = patient.resource;
    let at = |field: &str| format!("{}.{field}", patient.path);
    if let Some(name) = resource.get("name").and_then(human_name) {
        out.set(&["patient", "name"], Value::String(name), at("name"));
    }
    if let Some(dob) = resource.get("birthDate") {
        out.set(
            &["patient", "dob"],
            date_of(dob, &at("birthDate"))?,
            at("birthDate"),
        );
    }
    if let Some(address) = resource.get("address").and_then(address_of) {
        out.set(&["patient", "address"], address, at("address[0]"));
    }
    if let Some(ihi) = identifier(resource, IHI) {
        out.set(&["patient", "ihi"], ihi, at("identifier"));
    }
    if let Some(medicare) = identifier(resource, MEDICARE) {
        out.set(&["patient", "medicare"], medicare, at("identifier"));
    }
    for (name, ext, path) in baton_extensions(resource, &patient.path, PATIENT_EXTENSIONS)? {
        let key = if name == "drug-dependent" {
            "drug_dependent"
        } else {
            "palliative"
        };
        out.set(&["patient", key], primitive(ext, &path)?, path);
    }
    Ok(())
}

fn read_practitioner(
    entries: &[Entry<'_>],
    practitioner: &Entry<'_>,
    role: Option<&Entry<'_>>,
    out: &mut Out,
) -> Result<(), InputError> {
    let resource = practitioner.resource;
    let at = |field: &str| format!("{}.{field}", practitioner.path);
    if let Some(name) = resource.get("name").and_then(human_name) {
        out.set(&["prescriber", "name"], Value::String(name), at("name"));
    }
    if let Some(ahpra) = identifier(resource, AHPRA) {
        out.set(&["prescriber", "ahpra"], ahpra, at("identifier"));
    }
    if let Some(hpii) = identifier(resource, HPII) {
        out.set(&["prescriber", "hpii"], hpii, at("identifier"));
    }
    // Where the prescriber practises: the role's Location, else the Practitioner's address.
    let location = match role
        .and_then(|role| role.resource.get("location"))
        .and_then(|l| l.get(0))
    {
        Some(reference) => Some(referenced(
            entries,
            Some(reference),
            &format!("{}.location[0]", role.map_or("", |r| r.path.as_str())),
            &["Location"],
        )?),
        None => None,
    };
    let address = location
        .and_then(|l| {
            l.resource
                .get("address")
                .map(|a| (a, format!("{}.address", l.path)))
        })
        .or_else(|| resource.get("address").map(|a| (a, at("address[0]"))));
    if let Some((address, path)) = address
        && let Some(address) = address_of(address)
    {
        out.set(&["prescriber", "address"], address, path);
    }
    let phone = role
        .and_then(|role| phone_of(role.resource).map(|p| (p, format!("{}.telecom", role.path))))
        .or_else(|| {
            location.and_then(|l| phone_of(l.resource).map(|p| (p, format!("{}.telecom", l.path))))
        })
        .or_else(|| phone_of(resource).map(|p| (p, at("telecom"))));
    if let Some((phone, path)) = phone {
        out.set(&["prescriber", "phone"], phone, path);
    }
    for (name, ext, path) in
        baton_extensions(resource, &practitioner.path, PRACTITIONER_EXTENSIONS)?
    {
        let key = if name == "prescriber-kind" {
            "kind"
        } else {
            "registration_conditions"
        };
        out.set(&["prescriber", key], primitive(ext, &path)?, path);
    }
    Ok(())
}

fn read_medication(medication: &Entry<'_>, out: &mut Out) -> Result<(), InputError> {
    let resource = medication.resource;
    let at = |field: &str| format!("{}.{field}", medication.path);
    if let Some(code) = resource.get("code")
        && let Some(name) = concept_text(code, &at("code"))?
    {
        out.set(&["product", "name"], Value::String(name), at("code"));
    }
    if let Some(form) = resource.get("form")
        && let Some(code) = concept_code(form, &at("form"))?
    {
        out.set(&["product", "form"], Value::String(code), at("form"));
    }
    if let Some(ingredients) = resource.get("ingredient") {
        let Value::Array(ingredients) = ingredients else {
            return Err(InputError::new(
                at("ingredient"),
                format!("expected an array, got {}", kind_of(ingredients)),
            ));
        };
        let mut list = Vec::with_capacity(ingredients.len());
        for (index, ingredient) in ingredients.iter().enumerate() {
            let path = at(&format!("ingredient[{index}]"));
            let item = ingredient
                .get("itemCodeableConcept")
                .map(|c| concept_text(c, &format!("{path}.itemCodeableConcept")))
                .transpose()?
                .flatten()
                .unwrap_or_default();
            let mut row = Map::new();
            row.insert("name".into(), Value::String(item));
            if let Some(strength) = ingredient.get("strength") {
                let spath = format!("{path}.strength");
                let strength = object(strength, &spath)?;
                let numerator = strength
                    .get("numerator")
                    .map(|n| object(n, &format!("{spath}.numerator")))
                    .transpose()?;
                let denominator = strength
                    .get("denominator")
                    .map(|d| object(d, &format!("{spath}.denominator")))
                    .transpose()?;
                if let Some(numerator) = numerator {
                    let value = numerator.get("value").and_then(Value::as_f64);
                    let over = denominator
                        .and_then(|d| d.get("value"))
                        .and_then(Value::as_f64)
                        .unwrap_or(1.0);
                    if over <= 0.0 {
                        return Err(InputError::new(
                            format!("{spath}.denominator.value"),
                            format!("{over} is not a denominator: it must be more than 0"),
                        ));
                    }
                    if let Some(value) = value {
                        row.insert("amount".into(), json!(value / over));
                    }
                    if let Some(unit) = unit_of(numerator) {
                        row.insert("unit".into(), Value::String(unit));
                    }
                }
                if let Some(per) = denominator.and_then(unit_of) {
                    row.insert("per".into(), Value::String(per));
                }
            }
            list.push(Value::Object(row));
        }
        out.set(
            &["product", "ingredients"],
            Value::Array(list),
            at("ingredient"),
        );
    }
    for (name, ext, path) in baton_extensions(resource, &medication.path, MEDICATION_EXTENSIONS)? {
        let key = match name {
            "artg" => "artg",
            "compounded" => "compounded",
            "declared-category" => "declared_category",
            _ => "declared_schedule",
        };
        out.set(&["product", key], primitive(ext, &path)?, path);
    }
    Ok(())
}
