//! The fast road for FHIR Bundles: the bundle is read by a pull reader (`pull.rs`) into
//! borrowed structs holding only the fields the mapping uses, and the prescription is built
//! directly, without a JSON tree or a rewritten document. A tree made a check five times
//! slower than the simple format; a typed `serde` walk still spent most of a check's time in
//! its per-field machinery.
//!
//! This road only has to be right when it succeeds: on anything unusual (a `null`, an escaped
//! string it wants, a duplicate field or extension, a type it does not expect, any input
//! error) it gives up and the exact reader in `fhir.rs` reads the bundle again, with its paths
//! and messages. The tests below check both roads give the same prescription on every bundle
//! in the repository, on hand-made variants, and on thousands of corrupted copies.

use serde::Deserialize;
use serde::de::value::{
    BoolDeserializer, BorrowedStrDeserializer, Error as ValueError, U64Deserializer,
};

use crate::fhir::{
    AHPRA, EXTENSION_BASE, HPII, IHI, MEDICARE, MEDICATION_EXTENSIONS, PATIENT_EXTENSIONS,
    PRACTITIONER_EXTENSIONS, REQUEST_EXTENSIONS,
};
use crate::model::{
    Address, Approval, Day, Ingredient, Patient, Prescriber, Prescription, Product, Quantity,
    StateAuthority,
};
use crate::pull::{Fast, GiveUp, Pull, Scalar};

/// Store a field's value; a field given twice is left to the exact reader.
fn once<T>(slot: &mut Option<T>, value: T) -> Fast<()> {
    match slot {
        Some(_) => Err(GiveUp),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

struct Bundle<'a> {
    kind: &'a str,
    timestamp: Option<&'a str>,
    entry: Vec<Entry<'a>>,
}

impl<'a> Bundle<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Bundle<'a>> {
        let (mut kind, mut timestamp, mut entry) = (None, None, None);
        pull.object(|pull, key| match key {
            "resourceType" => once(&mut kind, pull.string()?),
            "timestamp" => once(&mut timestamp, pull.string()?),
            "entry" => once(&mut entry, pull.list(Entry::read)?),
            _ => pull.skip(),
        })?;
        Ok(Bundle {
            kind: kind.ok_or(GiveUp)?,
            timestamp,
            entry: entry.ok_or(GiveUp)?,
        })
    }
}

struct Entry<'a> {
    full_url: Option<&'a str>,
    // Boxed: the entries vector moves pointers, not whole resources, as it grows.
    resource: Box<Resource<'a>>,
}

impl<'a> Entry<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Entry<'a>> {
        let (mut full_url, mut resource) = (None, None);
        pull.object(|pull, key| match key {
            "fullUrl" => once(&mut full_url, pull.string()?),
            "resource" => once(&mut resource, Box::new(Resource::read(pull)?)),
            _ => pull.skip(),
        })?;
        Ok(Entry {
            full_url,
            resource: resource.ok_or(GiveUp)?,
        })
    }
}

/// Every field any of the resources is read for. Fields that mean different things in
/// different resources (`name`, `address`, `code`) are read as whichever shape they have.
#[derive(Default)]
struct Resource<'a> {
    kind: &'a str,
    id: Option<&'a str>,
    name: Option<Shape<HumanName<'a>>>,
    address: Option<Shape<FhirAddress<'a>>>,
    code: Option<Shape<Concept<'a>>>,
    birth_date: Option<&'a str>,
    identifier: Option<Vec<Labelled<'a>>>,
    telecom: Option<Vec<Labelled<'a>>>,
    extension: Option<Vec<Extension<'a>>>,
    practitioner: Option<Reference<'a>>,
    location: Option<Vec<Reference<'a>>>,
    form: Option<Concept<'a>>,
    ingredient: Option<Vec<FhirIngredient<'a>>>,
    subject: Option<Reference<'a>>,
    requester: Option<Reference<'a>>,
    medication_codeable_concept: Option<Concept<'a>>,
    medication_reference: Option<Reference<'a>>,
    dosage_instruction: Option<Vec<Dosage<'a>>>,
    dispense_request: Option<Dispense<'a>>,
    authored_on: Option<&'a str>,
}

impl<'a> Resource<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Resource<'a>> {
        let mut kind = None;
        let mut r = Resource::default();
        pull.object(|pull, key| match key {
            "resourceType" => once(&mut kind, pull.string()?),
            "id" => once(&mut r.id, pull.string()?),
            "name" => once(&mut r.name, Shape::read(pull, HumanName::read)?),
            "address" => once(&mut r.address, Shape::read(pull, FhirAddress::read)?),
            "code" => once(&mut r.code, Shape::read(pull, Concept::read)?),
            "birthDate" => once(&mut r.birth_date, pull.string()?),
            "identifier" => once(&mut r.identifier, pull.list(Labelled::read)?),
            "telecom" => once(&mut r.telecom, pull.list(Labelled::read)?),
            "extension" => once(&mut r.extension, pull.list(Extension::read)?),
            "practitioner" => once(&mut r.practitioner, Reference::read(pull)?),
            "location" => once(&mut r.location, pull.list(Reference::read)?),
            "form" => once(&mut r.form, Concept::read(pull)?),
            "ingredient" => once(&mut r.ingredient, pull.list(FhirIngredient::read)?),
            "subject" => once(&mut r.subject, Reference::read(pull)?),
            "requester" => once(&mut r.requester, Reference::read(pull)?),
            "medicationCodeableConcept" => {
                once(&mut r.medication_codeable_concept, Concept::read(pull)?)
            }
            "medicationReference" => once(&mut r.medication_reference, Reference::read(pull)?),
            "dosageInstruction" => once(&mut r.dosage_instruction, pull.list(Dosage::read)?),
            "dispenseRequest" => once(&mut r.dispense_request, Dispense::read(pull)?),
            "authoredOn" => once(&mut r.authored_on, pull.string()?),
            _ => pull.skip(),
        })?;
        r.kind = kind.ok_or(GiveUp)?;
        Ok(r)
    }
}

/// A field that is a list in one resource and an object or text in another (`name`,
/// `address`, `code`), read as whichever it is.
enum Shape<T> {
    List(Vec<T>),
    One(T),
    Other,
}

impl<T> Shape<T> {
    fn read<'a>(pull: &mut Pull<'a>, item: fn(&mut Pull<'a>) -> Fast<T>) -> Fast<Shape<T>> {
        match pull.peek()? {
            b'[' => pull.list(item).map(Shape::List),
            b'{' => item(pull).map(Shape::One),
            _ => pull.scalar().map(|_| Shape::Other),
        }
    }
}

struct Reference<'a> {
    reference: Option<&'a str>,
}

impl<'a> Reference<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Reference<'a>> {
        let mut reference = None;
        pull.object(|pull, key| match key {
            "reference" => once(&mut reference, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(Reference { reference })
    }
}

#[derive(Default)]
struct HumanName<'a> {
    text: Option<&'a str>,
    given: Option<Vec<&'a str>>,
    family: Option<&'a str>,
}

impl<'a> HumanName<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<HumanName<'a>> {
        let mut name = HumanName::default();
        pull.object(|pull, key| match key {
            "text" => once(&mut name.text, pull.string()?),
            "given" => once(&mut name.given, pull.list(Pull::string)?),
            "family" => once(&mut name.family, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(name)
    }
}

#[derive(Default)]
struct FhirAddress<'a> {
    line: Option<Vec<&'a str>>,
    city: Option<&'a str>,
    state: Option<&'a str>,
    postal_code: Option<&'a str>,
}

impl<'a> FhirAddress<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<FhirAddress<'a>> {
        let mut address = FhirAddress::default();
        pull.object(|pull, key| match key {
            "line" => once(&mut address.line, pull.list(Pull::string)?),
            "city" => once(&mut address.city, pull.string()?),
            "state" => once(&mut address.state, pull.string()?),
            "postalCode" => once(&mut address.postal_code, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(address)
    }
}

/// An Identifier or a ContactPoint: a system and a value.
#[derive(Default)]
struct Labelled<'a> {
    system: Option<&'a str>,
    value: Option<&'a str>,
}

impl<'a> Labelled<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Labelled<'a>> {
        let mut labelled = Labelled::default();
        pull.object(|pull, key| match key {
            "system" => once(&mut labelled.system, pull.string()?),
            "value" => once(&mut labelled.value, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(labelled)
    }
}

/// An extension's `value[x]`, read before its url says what it should hold.
enum Held<'a> {
    Scalar(Scalar<'a>),
    Quantity(FhirQuantity<'a>),
    /// An object or list in someone else's extension (a `valueCodeableConcept`…).
    Other,
}

/// An extension: its url, its sub-extensions and its one `value[x]` with its key.
struct Extension<'a> {
    url: &'a str,
    extension: Option<Vec<Extension<'a>>>,
    value: Option<(&'a str, Held<'a>)>,
}

impl<'a> Extension<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Extension<'a>> {
        let (mut url, mut extension, mut value) = (None, None, None);
        pull.object(|pull, key| match key {
            "url" => once(&mut url, pull.string()?),
            "extension" => once(&mut extension, pull.list(Extension::read)?),
            _ if key.starts_with("value") => {
                let held = match (key, pull.peek()?) {
                    ("valueQuantity", b'{') => Held::Quantity(FhirQuantity::read(pull)?),
                    (_, b'{' | b'[') => {
                        pull.skip()?;
                        Held::Other
                    }
                    _ => Held::Scalar(pull.scalar()?),
                };
                // More than one `value[x]`: the exact reader picks by its own order.
                once(&mut value, (key, held))
            }
            _ => pull.skip(),
        })?;
        Ok(Extension {
            url: url.ok_or(GiveUp)?,
            extension,
            value,
        })
    }
}

#[derive(Default)]
struct Coding<'a> {
    display: Option<&'a str>,
    code: Option<&'a str>,
}

impl<'a> Coding<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Coding<'a>> {
        let mut coding = Coding::default();
        pull.object(|pull, key| match key {
            "display" => once(&mut coding.display, pull.string()?),
            "code" => once(&mut coding.code, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(coding)
    }
}

#[derive(Default)]
struct Concept<'a> {
    text: Option<&'a str>,
    coding: Option<Vec<Coding<'a>>>,
}

impl<'a> Concept<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Concept<'a>> {
        let mut concept = Concept::default();
        pull.object(|pull, key| match key {
            "text" => once(&mut concept.text, pull.string()?),
            "coding" => once(&mut concept.coding, pull.list(Coding::read)?),
            _ => pull.skip(),
        })?;
        Ok(concept)
    }

    /// Its text, else its first coding's display, else code.
    fn text(&self) -> Option<String> {
        if let Some(text) = self.text {
            return Some(text.to_owned());
        }
        let first = self.coding.as_ref()?.first()?;
        first.display.or(first.code).map(str::to_owned)
    }

    /// Its first coding's code, else its text.
    fn code(&self) -> Option<&'a str> {
        self.coding
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.code)
            .or(self.text)
    }
}

#[derive(Default)]
struct FhirQuantity<'a> {
    value: Option<f64>,
    code: Option<&'a str>,
    unit: Option<&'a str>,
}

impl<'a> FhirQuantity<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<FhirQuantity<'a>> {
        let mut quantity = FhirQuantity::default();
        pull.object(|pull, key| match key {
            "value" => once(&mut quantity.value, pull.f64()?),
            "code" => once(&mut quantity.code, pull.string()?),
            "unit" => once(&mut quantity.unit, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(quantity)
    }

    /// The UCUM `code` first (annotations like `{capsule}` unwrapped), else `unit`.
    fn unit(&self) -> Option<String> {
        self.code.or(self.unit).map(|unit| {
            unit.trim()
                .trim_start_matches('{')
                .trim_end_matches('}')
                .to_owned()
        })
    }

    fn quantity(&self) -> Quantity {
        Quantity {
            value: self.value,
            unit: self.unit(),
        }
    }
}

#[derive(Default)]
struct FhirIngredient<'a> {
    item_codeable_concept: Option<Concept<'a>>,
    strength: Option<Ratio<'a>>,
}

impl<'a> FhirIngredient<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<FhirIngredient<'a>> {
        let mut ingredient = FhirIngredient::default();
        pull.object(|pull, key| match key {
            "itemCodeableConcept" => {
                once(&mut ingredient.item_codeable_concept, Concept::read(pull)?)
            }
            "strength" => once(&mut ingredient.strength, Ratio::read(pull)?),
            _ => pull.skip(),
        })?;
        Ok(ingredient)
    }
}

#[derive(Default)]
struct Ratio<'a> {
    numerator: Option<FhirQuantity<'a>>,
    denominator: Option<FhirQuantity<'a>>,
}

impl<'a> Ratio<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Ratio<'a>> {
        let mut ratio = Ratio::default();
        pull.object(|pull, key| match key {
            "numerator" => once(&mut ratio.numerator, FhirQuantity::read(pull)?),
            "denominator" => once(&mut ratio.denominator, FhirQuantity::read(pull)?),
            _ => pull.skip(),
        })?;
        Ok(ratio)
    }
}

#[derive(Default)]
struct Dosage<'a> {
    text: Option<&'a str>,
    route: Option<Concept<'a>>,
}

impl<'a> Dosage<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Dosage<'a>> {
        let mut dosage = Dosage::default();
        pull.object(|pull, key| match key {
            "text" => once(&mut dosage.text, pull.string()?),
            "route" => once(&mut dosage.route, Concept::read(pull)?),
            _ => pull.skip(),
        })?;
        Ok(dosage)
    }
}

#[derive(Default)]
struct Dispense<'a> {
    quantity: Option<FhirQuantity<'a>>,
    number_of_repeats_allowed: Option<u32>,
    dispense_interval: Option<FhirQuantity<'a>>,
    validity_period: Option<Period<'a>>,
}

impl<'a> Dispense<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Dispense<'a>> {
        let mut dispense = Dispense::default();
        pull.object(|pull, key| match key {
            "quantity" => once(&mut dispense.quantity, FhirQuantity::read(pull)?),
            "numberOfRepeatsAllowed" => once(&mut dispense.number_of_repeats_allowed, pull.u32()?),
            "dispenseInterval" => once(&mut dispense.dispense_interval, FhirQuantity::read(pull)?),
            "validityPeriod" => once(&mut dispense.validity_period, Period::read(pull)?),
            _ => pull.skip(),
        })?;
        Ok(dispense)
    }
}

struct Period<'a> {
    end: Option<&'a str>,
}

impl<'a> Period<'a> {
    fn read(pull: &mut Pull<'a>) -> Fast<Period<'a>> {
        let mut end = None;
        pull.object(|pull, key| match key {
            "end" => once(&mut end, pull.string()?),
            _ => pull.skip(),
        })?;
        Ok(Period { end })
    }
}

/// The date part of a FHIR date or dateTime.
fn day_of(text: &str) -> Fast<Day> {
    let rest_ok = text
        .get(10..)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('T'));
    match text.get(..10).and_then(Day::parse) {
        Some(day) if rest_ok => Ok(day),
        _ => Err(GiveUp),
    }
}

/// A scalar read as `T` the way `serde_json` reads the same JSON into `T`; numbers other
/// than plain non-negative integers are left to the exact reader.
fn typed<'a, T: Deserialize<'a>>(scalar: Scalar<'a>) -> Fast<T> {
    Ok(match scalar {
        Scalar::Str(text) => T::deserialize(BorrowedStrDeserializer::<ValueError>::new(text))?,
        Scalar::Bool(flag) => T::deserialize(BoolDeserializer::<ValueError>::new(flag))?,
        Scalar::Number(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
            let number: u64 = text.parse().map_err(|_| GiveUp)?;
            T::deserialize(U64Deserializer::<ValueError>::new(number))?
        }
        Scalar::Number(_) => return Err(GiveUp),
    })
}

/// An extension's `value[x]`, in the order the exact reader looks for it.
enum Value<'a> {
    Json(Scalar<'a>),
    Date(Day),
    Quantity(Quantity),
}

impl<'a> Extension<'a> {
    fn value(&self) -> Fast<Value<'a>> {
        let (key, held) = self.value.as_ref().ok_or(GiveUp)?;
        match (*key, held) {
            (
                "valueBoolean" | "valueCode" | "valueString" | "valueInteger" | "valueUnsignedInt"
                | "valuePositiveInt" | "valueDecimal",
                Held::Scalar(scalar),
            ) => Ok(Value::Json(*scalar)),
            ("valueDate" | "valueDateTime", Held::Scalar(Scalar::Str(text))) => {
                Ok(Value::Date(day_of(text)?))
            }
            ("valueQuantity", Held::Quantity(quantity)) => Ok(Value::Quantity(quantity.quantity())),
            _ => Err(GiveUp),
        }
    }

    /// The value read as `T` (booleans, codes, strings, numbers).
    fn get<T: Deserialize<'a>>(&self) -> Fast<T> {
        match self.value()? {
            Value::Json(scalar) => typed(scalar),
            Value::Date(_) | Value::Quantity(_) => Err(GiveUp),
        }
    }

    fn day(&self) -> Fast<Day> {
        match self.value()? {
            Value::Json(scalar) => typed(scalar),
            Value::Date(day) => Ok(day),
            Value::Quantity(_) => Err(GiveUp),
        }
    }

    /// `valueDate` or `valueDateTime` only.
    fn date(&self) -> Fast<Day> {
        match &self.value {
            Some(("valueDate" | "valueDateTime", Held::Scalar(Scalar::Str(text)))) => day_of(text),
            _ => Err(GiveUp),
        }
    }

    fn quantity(&self) -> Fast<Quantity> {
        match self.value()? {
            Value::Quantity(quantity) => Ok(quantity),
            // A scalar is never a quantity for the exact reader either.
            Value::Json(_) | Value::Date(_) => Err(GiveUp),
        }
    }
}

/// Baton's extensions on a resource by name; each allowed name at most once, except `lists`.
fn baton<'e, 'a>(
    extensions: Option<&'e Vec<Extension<'a>>>,
    allowed: &[&str],
    lists: &[&str],
) -> Fast<Vec<(&'a str, &'e Extension<'a>)>> {
    let mut found: Vec<(&'a str, &'e Extension<'a>)> = Vec::new();
    for extension in extensions.into_iter().flatten() {
        let Some(name) = extension.url.strip_prefix(EXTENSION_BASE) else {
            continue;
        };
        let repeated = found.iter().any(|(seen, _)| *seen == name);
        if !allowed.contains(&name) || (repeated && !lists.contains(&name)) {
            return Err(GiveUp);
        }
        found.push((name, extension));
    }
    Ok(found)
}

/// The first name of a list; anything else holds no name for the exact reader either.
fn human_name(names: Option<&Shape<HumanName<'_>>>) -> Option<String> {
    let Some(Shape::List(names)) = names else {
        return None;
    };
    let name = names.first()?;
    if let Some(text) = name.text {
        return Some(text.to_owned());
    }
    let mut parts: Vec<&str> = name.given.clone().unwrap_or_default();
    parts.extend(name.family);
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The first address of a list, or the one address (a Location has one).
fn address(shape: &Shape<FhirAddress<'_>>) -> Option<Address> {
    let address = match shape {
        Shape::List(list) => list.first()?,
        Shape::One(address) => address,
        Shape::Other => return None,
    };
    let mut line = address.line.as_ref().map(|lines| lines.join(", "));
    if let (Some(city), Some(line)) = (address.city, line.as_mut()) {
        line.push_str(", ");
        line.push_str(city);
    }
    Some(Address {
        line,
        state: address.state.map(str::to_owned),
        postcode: address.postal_code.map(str::to_owned),
    })
}

/// The value of the first entry with `system` (an identifier or a phone number).
fn labelled(list: Option<&Vec<Labelled<'_>>>, system: &str) -> Option<String> {
    list?
        .iter()
        .find(|item| item.system == Some(system))
        .and_then(|item| item.value)
        .map(str::to_owned)
}

fn target<'a>(reference: Option<&Reference<'a>>) -> Option<&'a str> {
    reference.and_then(|r| r.reference)
}

/// The entry a reference points at, as the exact reader finds it.
fn referenced<'b, 'a>(
    entries: &'b [Entry<'a>],
    target: Option<&str>,
    kinds: &[&str],
) -> Fast<&'b Resource<'a>> {
    let Some(target) = target else {
        let mut candidates = entries.iter().filter(|e| kinds.contains(&e.resource.kind));
        return match (candidates.next(), candidates.next()) {
            (Some(entry), None) => Ok(&entry.resource),
            _ => Err(GiveUp),
        };
    };
    let entry = entries
        .iter()
        .find(|entry| {
            entry.full_url == Some(target)
                || entry.resource.id.is_some_and(|id| {
                    let kind = entry.resource.kind;
                    target
                        .strip_suffix(id)
                        .and_then(|head| head.strip_suffix('/'))
                        .and_then(|head| head.strip_suffix(kind))
                        .is_some_and(|head| head.is_empty() || head.ends_with('/'))
                })
        })
        .ok_or(GiveUp)?;
    if kinds.contains(&entry.resource.kind) {
        Ok(&entry.resource)
    } else {
        Err(GiveUp)
    }
}

/// Read a FHIR Bundle the fast way; `Err(GiveUp)` sends it to the exact reader.
pub(crate) fn parse(bytes: &[u8]) -> Fast<Prescription> {
    // Checking the UTF-8 once up front lets the reader hand out slices of the text.
    let text = std::str::from_utf8(bytes).map_err(|_| GiveUp)?;
    let mut pull = Pull::new(text);
    let bundle = Bundle::read(&mut pull)?;
    pull.end()?;
    if bundle.kind != "Bundle" {
        return Err(GiveUp);
    }
    let entries = &bundle.entry;
    let mut requests = entries
        .iter()
        .filter(|e| e.resource.kind == "MedicationRequest");
    let (Some(request), None) = (requests.next(), requests.next()) else {
        return Err(GiveUp);
    };
    let mr = &request.resource;
    let mut rx = Prescription::default();
    let signed = read_request(mr, bundle.timestamp, &mut rx)?;
    let patient = referenced(entries, target(mr.subject.as_ref()), &["Patient"])?;
    rx.patient = read_patient(patient)?;
    rx.prescriber = read_prescriber(entries, mr, signed)?;
    read_product(entries, mr, &mut rx)?;
    read_supply(mr, &mut rx)?;
    Ok(rx)
}

/// The request's own facts (check date, jurisdiction, flags, approvals, authorities, when
/// it was authored) into `rx`; whether it is signed, which belongs to the prescriber.
fn read_request(
    mr: &Resource<'_>,
    timestamp: Option<&str>,
    rx: &mut Prescription,
) -> Fast<Option<bool>> {
    let extensions = baton(
        mr.extension.as_ref(),
        REQUEST_EXTENSIONS,
        &["tga-approval", "state-authority"],
    )?;
    let mut signed = None;
    for (name, extension) in extensions {
        match name {
            "as-of" => rx.as_of = Some(extension.date()?),
            "jurisdiction" => rx.jurisdiction = Some(extension.get()?),
            "self-prescribed" => rx.self_prescribed = extension.get()?,
            "rtpm-checked" => rx.rtpm_checked = Some(extension.get()?),
            "treatment-started" => rx.treatment_started = Some(extension.date()?),
            "signed" => signed = Some(extension.get()?),
            "tga-approval" => rx.approvals.push(approval(extension)?),
            "state-authority" => rx.state_authorities.push(authority(extension)?),
            _ => return Err(GiveUp),
        }
    }
    if rx.as_of.is_none()
        && let Some(timestamp) = timestamp
    {
        rx.as_of = Some(day_of(timestamp)?);
    }
    rx.authored_on = mr.authored_on.map(day_of).transpose()?;
    Ok(signed)
}

/// The prescriber: the requester, a Practitioner or a PractitionerRole pointing at one.
fn read_prescriber(
    entries: &[Entry<'_>],
    mr: &Resource<'_>,
    signed: Option<bool>,
) -> Fast<Option<Prescriber>> {
    let requester = referenced(
        entries,
        target(mr.requester.as_ref()),
        &["Practitioner", "PractitionerRole"],
    )?;
    let (practitioner, role) = if requester.kind == "PractitionerRole" {
        let practitioner = referenced(
            entries,
            target(requester.practitioner.as_ref()),
            &["Practitioner"],
        )?;
        (practitioner, Some(requester))
    } else {
        (requester, None)
    };
    let mut prescriber = read_practitioner(entries, practitioner, role)?;
    if let Some(signed) = signed {
        prescriber.get_or_insert_with(Prescriber::default).signed = Some(signed);
    }
    Ok(prescriber)
}

/// The product (a coded concept or a Medication resource), its route and the directions.
fn read_product(entries: &[Entry<'_>], mr: &Resource<'_>, rx: &mut Prescription) -> Fast<()> {
    let mut product = match &mr.medication_codeable_concept {
        Some(concept) => concept.text().map(|name| Product {
            name: Some(name),
            ..Product::default()
        }),
        None => {
            let medication = referenced(
                entries,
                target(mr.medication_reference.as_ref()),
                &["Medication"],
            )?;
            read_medication(medication)?
        }
    };
    if let Some(first) = mr.dosage_instruction.as_ref().and_then(|d| d.first()) {
        if let Some(code) = first.route.as_ref().and_then(Concept::code) {
            let route = typed(Scalar::Str(code))?;
            product.get_or_insert_with(Product::default).route = Some(route);
        }
        rx.directions = first.text.map(str::to_owned);
    }
    rx.product = product;
    Ok(())
}

/// The supply: quantity, repeats, their interval, and the end of the validity period.
fn read_supply(mr: &Resource<'_>, rx: &mut Prescription) -> Fast<()> {
    if let Some(dispense) = &mr.dispense_request {
        rx.quantity = dispense.quantity.as_ref().map(FhirQuantity::quantity);
        if let Some(repeats) = dispense.number_of_repeats_allowed {
            rx.repeats = repeats;
        }
        if let Some(interval) = &dispense.dispense_interval {
            rx.repeat_interval_days = Some(days(interval)?);
        }
        if let Some(end) = dispense.validity_period.as_ref().and_then(|p| p.end) {
            rx.valid_until = Some(day_of(end)?);
        }
    }
    Ok(())
}

fn days(interval: &FhirQuantity<'_>) -> Fast<u32> {
    let number = interval.value.ok_or(GiveUp)?;
    let per_unit = match interval.unit().as_deref() {
        Some("d" | "day" | "days") => 1.0,
        Some("wk" | "week" | "weeks") => 7.0,
        _ => return Err(GiveUp),
    };
    let days = number * per_unit;
    if days.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&days) {
        return Err(GiveUp);
    }
    // A whole number in u32's range, checked just above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(days as u32)
}

fn approval(extension: &Extension<'_>) -> Fast<Approval> {
    let mut approval = Approval::default();
    for (name, part) in parts(extension)? {
        match name {
            "pathway" => approval.pathway = Some(part.get()?),
            "number" => approval.number = Some(part.get()?),
            "category" => approval.category = Some(part.get()?),
            "dosage_form" => approval.dosage_form = Some(part.get()?),
            "prescriber_ahpra" => approval.prescriber_ahpra = Some(part.get()?),
            "valid_from" => approval.valid_from = Some(part.day()?),
            "valid_to" => approval.valid_to = Some(part.day()?),
            "max_quantity" => approval.max_quantity = Some(part.quantity()?),
            _ => return Err(GiveUp),
        }
    }
    Ok(approval)
}

fn authority(extension: &Extension<'_>) -> Fast<StateAuthority> {
    let mut authority = StateAuthority::default();
    for (name, part) in parts(extension)? {
        match name {
            "jurisdiction" => authority.jurisdiction = Some(part.get()?),
            "type" => authority.kind = Some(part.get()?),
            "number" => authority.number = Some(part.get()?),
            "valid_from" => authority.valid_from = Some(part.day()?),
            "valid_to" => authority.valid_to = Some(part.day()?),
            "max_quantity" => authority.max_quantity = Some(part.quantity()?),
            _ => return Err(GiveUp),
        }
    }
    Ok(authority)
}

/// A complex extension's sub-extensions by name, each at most once.
fn parts<'e, 'a>(extension: &'e Extension<'a>) -> Fast<Vec<(&'a str, &'e Extension<'a>)>> {
    let parts = extension.extension.as_ref().ok_or(GiveUp)?;
    let mut named: Vec<(&'a str, &'e Extension<'a>)> = Vec::with_capacity(parts.len());
    for part in parts {
        if named.iter().any(|(name, _)| *name == part.url) {
            return Err(GiveUp);
        }
        named.push((part.url, part));
    }
    Ok(named)
}

fn read_patient(resource: &Resource<'_>) -> Fast<Option<Patient>> {
    let mut patient = Patient {
        name: human_name(resource.name.as_ref()),
        dob: resource.birth_date.map(day_of).transpose()?,
        address: resource.address.as_ref().and_then(address),
        ihi: labelled(resource.identifier.as_ref(), IHI),
        medicare: labelled(resource.identifier.as_ref(), MEDICARE),
        ..Patient::default()
    };
    let mut touched = patient != Patient::default();
    for (name, extension) in baton(resource.extension.as_ref(), PATIENT_EXTENSIONS, &[])? {
        match name {
            "drug-dependent" => patient.drug_dependent = extension.get()?,
            "palliative" => patient.palliative = extension.get()?,
            _ => return Err(GiveUp),
        }
        touched = true;
    }
    Ok(touched.then_some(patient))
}

fn read_practitioner(
    entries: &[Entry<'_>],
    resource: &Resource<'_>,
    role: Option<&Resource<'_>>,
) -> Fast<Option<Prescriber>> {
    let mut prescriber = Prescriber {
        name: human_name(resource.name.as_ref()),
        ahpra: labelled(resource.identifier.as_ref(), AHPRA),
        hpii: labelled(resource.identifier.as_ref(), HPII),
        ..Prescriber::default()
    };
    let mut touched = prescriber != Prescriber::default();
    // Where the prescriber practises: the role's Location, else the Practitioner's address.
    let location = match role {
        Some(role) => match role.location.as_ref().and_then(|l| l.first()) {
            Some(reference) => Some(referenced(entries, reference.reference, &["Location"])?),
            None => None,
        },
        None => None,
    };
    let place = location
        .and_then(|l| l.address.as_ref())
        .or(resource.address.as_ref());
    if let Some(place) = place.and_then(address) {
        prescriber.address = Some(place);
        touched = true;
    }
    let mut phone = None;
    for holder in [role, location, Some(resource)].into_iter().flatten() {
        if let Some(number) = labelled(holder.telecom.as_ref(), "phone") {
            phone = Some(number);
            break;
        }
    }
    if phone.is_some() {
        prescriber.phone = phone;
        touched = true;
    }
    for (name, extension) in baton(resource.extension.as_ref(), PRACTITIONER_EXTENSIONS, &[])? {
        match name {
            "prescriber-kind" => prescriber.kind = Some(extension.get()?),
            "registration-conditions" => prescriber.registration_conditions = extension.get()?,
            _ => return Err(GiveUp),
        }
        touched = true;
    }
    Ok(touched.then_some(prescriber))
}

fn read_medication(resource: &Resource<'_>) -> Fast<Option<Product>> {
    let mut product = Product::default();
    let mut touched = false;
    let concept = match &resource.code {
        None => None,
        Some(Shape::One(concept)) => Some(concept),
        Some(Shape::List(_) | Shape::Other) => return Err(GiveUp),
    };
    if let Some(name) = concept.and_then(Concept::text) {
        product.name = Some(name);
        touched = true;
    }
    if let Some(code) = resource.form.as_ref().and_then(Concept::code) {
        product.form = Some(typed(Scalar::Str(code))?);
        touched = true;
    }
    if let Some(list) = &resource.ingredient {
        touched = true;
        for item in list {
            let mut ingredient = Ingredient {
                name: item
                    .item_codeable_concept
                    .as_ref()
                    .and_then(Concept::text)
                    .unwrap_or_default(),
                ..Ingredient::default()
            };
            if let Some(strength) = &item.strength {
                if let Some(numerator) = &strength.numerator {
                    let over = strength
                        .denominator
                        .as_ref()
                        .and_then(|d| d.value)
                        .unwrap_or(1.0);
                    if over <= 0.0 {
                        return Err(GiveUp);
                    }
                    if let Some(value) = numerator.value {
                        let amount = value / over;
                        if !amount.is_finite() {
                            return Err(GiveUp);
                        }
                        ingredient.amount = Some(amount);
                    }
                    ingredient.unit = numerator.unit();
                }
                ingredient.per = strength.denominator.as_ref().and_then(FhirQuantity::unit);
            }
            product.ingredients.push(ingredient);
        }
    }
    for (name, extension) in baton(resource.extension.as_ref(), MEDICATION_EXTENSIONS, &[])? {
        match name {
            "artg" => product.artg = extension.get()?,
            "compounded" => product.compounded = extension.get()?,
            "declared-category" => product.declared_category = Some(extension.get()?),
            "declared-schedule" => product.declared_schedule = Some(extension.get()?),
            _ => return Err(GiveUp),
        }
        touched = true;
    }
    Ok(touched.then_some(product))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use super::parse;
    use crate::fhir;

    /// Every FHIR input the repository holds: the eval cases and the fixtures.
    fn bundles() -> Vec<(String, serde_json::Value)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut found = Vec::new();
        for dir in ["evals/rx/cases", "fixtures/rx"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                if dir == "evals/rx/cases" {
                    value = value["input"].take();
                }
                if value.get("resourceType").is_some() {
                    found.push((path.display().to_string(), value));
                }
            }
        }
        found
    }

    #[test]
    fn the_fast_road_reads_every_readable_bundle_exactly_as_the_exact_reader() {
        let bundles = bundles();
        assert!(bundles.len() >= 80, "{} bundles", bundles.len());
        let (mut fast, mut refused) = (0, 0);
        for (name, value) in &bundles {
            let bytes = serde_json::to_vec_pretty(value).unwrap();
            match (parse(&bytes), fhir::parse(value)) {
                (Ok(quick), Ok(exact)) => {
                    pretty_assertions::assert_eq!(quick, exact, "{name}");
                    fast += 1;
                }
                (Ok(quick), Err(error)) => {
                    panic!("{name}: the fast road read {quick:?} where the exact one says {error}")
                }
                (Err(_), Ok(_)) => panic!("{name}: the fast road gave up on a readable bundle"),
                (Err(_), Err(_)) => refused += 1,
            }
        }
        println!("{fast} read, {refused} refused");
        assert!(
            fast >= 70 && refused >= 10,
            "{fast} read, {refused} refused"
        );
    }

    /// Thousands of corrupted copies of every bundle: whatever the fast road reads, the
    /// exact reader reads too, into the same prescription.
    #[test]
    fn corrupted_bundles_are_read_alike_or_left_to_the_exact_reader() {
        use crate::pull::mutate::{Rng, corrupt};
        let mut rng = Rng::new(11);
        let (mut alike, mut left) = (0, 0);
        for (name, value) in bundles() {
            let text = serde_json::to_vec_pretty(&value).unwrap();
            for _ in 0..200 {
                let bytes = corrupt(&text, &mut rng);
                let Ok(quick) = parse(&bytes) else {
                    left += 1;
                    continue;
                };
                let shown = String::from_utf8_lossy(&bytes);
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("{name}: fast read what serde_json refuses ({e}): {shown}")
                });
                match fhir::parse(&value) {
                    Ok(exact) => pretty_assertions::assert_eq!(quick, exact, "{name}: {shown}"),
                    Err(error) => {
                        panic!("{name}: fast read {quick:?}, exact says {error}: {shown}")
                    }
                }
                alike += 1;
            }
        }
        println!("{alike} read alike, {left} left to the exact reader");
        assert!(alike > 2_000 && left > 2_000, "{alike} {left}");
    }

    /// Variants of one bundle that take the less-travelled turns of the mapping.
    #[test]
    fn both_readers_agree_on_the_unusual_turns_of_a_bundle() {
        use serde_json::json;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rx");
        let text = std::fs::read_to_string(root.join("nsw-cat2-sas-b.fhir.json")).unwrap();
        let base: serde_json::Value = serde_json::from_str(&text).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let edits: [(&str, Edit); 16] = [
            ("interval in weeks", |b| {
                b["entry"][0]["resource"]["dispenseRequest"]["dispenseInterval"] =
                    json!({"value": 4, "code": "wk"});
            }),
            ("interval in months", |b| {
                b["entry"][0]["resource"]["dispenseRequest"]["dispenseInterval"] =
                    json!({"value": 1, "code": "mo"});
            }),
            ("validity end", |b| {
                b["entry"][0]["resource"]["dispenseRequest"]["validityPeriod"] =
                    json!({"start": "2026-10-01", "end": "2026-12-01T00:00:00+10:00"});
            }),
            ("check date from the timestamp", |b| {
                b["entry"][0]["resource"]["extension"]
                    .as_array_mut()
                    .unwrap()
                    .remove(0);
                b["timestamp"] = json!("2026-10-06T08:00:00Z");
            }),
            ("name as text", |b| {
                b["entry"][1]["resource"]["name"] = json!([{"text": "Ms Jane Citizen"}]);
            }),
            ("name as an object", |b| {
                b["entry"][1]["resource"]["name"] = json!({"family": "Citizen"});
            }),
            ("address as a string", |b| {
                b["entry"][1]["resource"]["address"] = json!("somewhere");
            }),
            ("someone else's extension", |b| {
                b["entry"][2]["resource"]["extension"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"url": "http://example.org/x", "valueString": "y"}));
            }),
            ("misspelt Baton extension", |b| {
                b["entry"][2]["resource"]["extension"]
                    .as_array_mut()
                    .unwrap()
                    .push(
                        json!({"url": "https://baton.dev/fhir/StructureDefinition/prescriber-knd",
                           "valueCode": "nurse_practitioner"}),
                    );
            }),
            ("medication as a concept", |b| {
                let request = &mut b["entry"][0]["resource"];
                request
                    .as_object_mut()
                    .unwrap()
                    .remove("medicationReference");
                request["medicationCodeableConcept"] = json!({"text": "Cannabis oil 10:1"});
            }),
            ("requester is the practitioner", |b| {
                b["entry"][0]["resource"]["requester"] = json!({"reference": "Practitioner/pr1"});
            }),
            ("reference to nothing", |b| {
                b["entry"][0]["resource"]["subject"] = json!({"reference": "Patient/p9"});
            }),
            ("no subject reference", |b| {
                b["entry"][0]["resource"]
                    .as_object_mut()
                    .unwrap()
                    .remove("subject");
            }),
            ("category as a decimal", |b| {
                b["entry"][5]["resource"]["extension"][2] = json!({
                    "url": "https://baton.dev/fhir/StructureDefinition/declared-category",
                    "valueDecimal": 2.5});
            }),
            ("approval dates as dateTimes", |b| {
                let approval = &mut b["entry"][0]["resource"]["extension"][6]["extension"];
                approval[5] = json!({"url": "valid_from", "valueDateTime": "2026-01-01T00:00:00Z"});
            }),
            ("repeats as text", |b| {
                b["entry"][0]["resource"]["dispenseRequest"]["numberOfRepeatsAllowed"] = json!("2");
            }),
        ];
        let mut fast = Vec::new();
        for (name, edit) in edits {
            let mut bundle = base.clone();
            edit(&mut bundle);
            let bytes = serde_json::to_vec(&bundle).unwrap();
            match (parse(&bytes), fhir::parse(&bundle)) {
                (Ok(quick), Ok(exact)) => {
                    pretty_assertions::assert_eq!(quick, exact, "{name}");
                    fast.push(name);
                }
                (Ok(quick), Err(error)) => {
                    panic!("{name}: fast read {quick:?}, exact says {error}")
                }
                (Err(_), _) => {}
            }
        }
        // The readable variants all take the fast road; the broken ones are left to the exact
        // reader.
        assert_eq!(fast.len(), 11, "{fast:?}");
    }
}
