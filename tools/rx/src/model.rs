//! The simple prescription format, which is also the engine's model: FHIR input is mapped onto
//! it, so both formats meet the same rules.

use std::borrow::Cow;
use std::fmt;

use jiff::civil::Date;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar date written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub Date);

impl Day {
    /// Parse `YYYY-MM-DD` exactly (no times, no week dates).
    pub fn parse(text: &str) -> Option<Day> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes
                .iter()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !shaped {
            return None;
        }
        // Digits checked above: read them directly (jiff's general parser cost a microsecond
        // per prescription); `Date::new` still refuses 2026-02-30.
        let number = |range: std::ops::Range<usize>| {
            bytes[range]
                .iter()
                .fold(0i16, |n, b| n * 10 + i16::from(b - b'0'))
        };
        let (year, month, day) = (number(0..4), number(5..7), number(8..10));
        let month = i8::try_from(month).ok()?;
        let day = i8::try_from(day).ok()?;
        Date::new(year, month, day).ok().map(Day)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Day, D::Error> {
        let text = Cow::<str>::deserialize(deserializer)?;
        Day::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a date YYYY-MM-DD, got `{text}`"))
        })
    }
}

impl JsonSchema for Day {
    fn schema_name() -> Cow<'static, str> {
        "Day".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date", "description": "A date, YYYY-MM-DD" })
    }
}

/// One medicinal-cannabis prescription in Baton's simple format (`docs/rx-format.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prescription {
    /// The date to check on; default today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Day>,
    /// State or territory whose rules apply (where it is dispensed): ACT, NSW, NT, QLD, SA,
    /// TAS, VIC or WA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// The date the prescription was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<Day>,
    /// The patient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Patient>,
    /// The prescriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prescriber: Option<Prescriber>,
    /// The product prescribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// Quantity per supply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// Repeat supplies after the first (0 when absent).
    #[serde(default)]
    pub repeats: u32,
    /// Days between supplies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval_days: Option<u32>,
    /// Directions for use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directions: Option<String>,
    /// Whether the prescriber is also the patient.
    #[serde(default)]
    pub self_prescribed: bool,
    /// When the patient's treatment with this medicine began (default: `authored_on`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_started: Option<Day>,
    /// Whether the real-time prescription monitoring system was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtpm_checked: Option<bool>,
    /// TGA approvals (SAS, Authorised Prescriber, clinical trial) the prescriber holds.
    #[serde(default)]
    pub approvals: Vec<Approval>,
    /// State or territory S8 authorities and permits.
    #[serde(default)]
    pub state_authorities: Vec<StateAuthority>,
    /// End of the validity period written on a FHIR prescription
    /// (`dispenseRequest.validityPeriod.end`); the simple format has no such field.
    #[serde(skip)]
    pub valid_until: Option<Day>,
}

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street lines, comma-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// State or territory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Postcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
}

impl Address {
    /// Whether the line, state and postcode are all given.
    pub fn is_complete(&self) -> bool {
        [&self.line, &self.state, &self.postcode]
            .iter()
            .all(|part| filled(part.as_deref()))
    }
}

/// Whether an optional text is present and not blank.
pub(crate) fn filled(text: Option<&str>) -> bool {
    text.is_some_and(|t| !t.trim().is_empty())
}

/// The patient.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Patient {
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Date of birth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<Day>,
    /// Home address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Individual Healthcare Identifier (16 digits, 800360…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ihi: Option<String>,
    /// Medicare card number (10 digits, or 11 with the reference number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medicare: Option<String>,
    /// Drug-dependent within the meaning of the state's poisons law.
    #[serde(default)]
    pub drug_dependent: bool,
    /// Receiving palliative care.
    #[serde(default)]
    pub palliative: bool,
}

/// The prescriber.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prescriber {
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kind of practitioner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PrescriberKind>,
    /// Ahpra registration number (three letters, ten digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahpra: Option<String>,
    /// Healthcare Provider Identifier – Individual (16 digits, 800361…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpii: Option<String>,
    /// Practice address; its state is where the prescriber practises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Practice phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Whether the prescription is signed (handwritten or electronic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<bool>,
    /// Whether the prescriber's registration carries conditions.
    #[serde(default)]
    pub registration_conditions: bool,
}

/// Kinds of prescriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrescriberKind {
    /// A registered medical practitioner.
    MedicalPractitioner,
    /// An endorsed nurse practitioner.
    NursePractitioner,
}

/// The product prescribed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    /// Product name as on the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Registered on the ARTG (otherwise an unapproved product needing a TGA approval).
    #[serde(default)]
    pub artg: bool,
    /// Compounded by a pharmacist rather than manufactured.
    #[serde(default)]
    pub compounded: bool,
    /// Dosage form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
    /// Route of administration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// Active ingredients and their strengths.
    #[serde(default)]
    pub ingredients: Vec<Ingredient>,
    /// The TGA category the prescriber believes it is (checked against the strengths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_category: Option<u8>,
    /// The schedule the prescriber believes it is (checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_schedule: Option<Schedule>,
}

/// One ingredient's strength: `amount` `unit` per `per` (e.g. 100 mg per mL, 22 % per g).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingredient {
    /// Ingredient name (CBD, THC, CBG…).
    pub name: String,
    /// Amount of the ingredient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// What `amount` is per: mL, g, capsule, tablet, wafer, spray, cartridge, each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<String>,
    /// Unit of `amount`: mg, g, mcg, or % (w/w, per g).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A quantity with its unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quantity {
    /// How much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Unit: mL, g, capsule, tablet, wafer, cartridge, spray.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A TGA approval to prescribe an unapproved product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Access pathway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pathway: Option<Pathway>,
    /// Approval number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Product category (1–5) approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<u8>,
    /// Dosage form approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dosage_form: Option<Form>,
    /// Ahpra number of the prescriber the approval belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prescriber_ahpra: Option<String>,
    /// First day the approval is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Day>,
    /// Last day the approval is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Day>,
    /// Most the approval allows on one prescription, repeats included (when it sets a limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_quantity: Option<Quantity>,
}

/// A state or territory authority to prescribe an S8 medicine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateAuthority {
    /// State or territory that issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Kind of authority.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AuthorityKind>,
    /// Authority or permit number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// First day it is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Day>,
    /// Last day it is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Day>,
    /// Most it allows on one prescription, repeats included (when it sets a limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_quantity: Option<Quantity>,
}

/// Dosage forms.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Oral liquid.
    Oil,
    /// Capsule.
    Capsule,
    /// Tablet.
    Tablet,
    /// Wafer or troche.
    Wafer,
    /// Oromucosal spray.
    Spray,
    /// Dried flower.
    DriedHerb,
    /// Vaporiser cartridge.
    InhalationCartridge,
    /// Liquid for vaporisation.
    InhalationLiquid,
    /// Cream, gel or balm.
    Topical,
}

/// Routes of administration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// Swallowed.
    Oral,
    /// Under the tongue.
    Sublingual,
    /// Through the lining of the mouth.
    Oromucosal,
    /// Heated in a vaporiser.
    Vaporisation,
    /// Inhaled.
    Inhalation,
    /// On the skin.
    Topical,
    /// Burnt and smoked.
    Smoked,
}

/// Poisons Standard schedules a cannabis product can fall in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Schedule {
    /// Pharmacist only.
    S3,
    /// Prescription only.
    S4,
    /// Controlled drug.
    S8,
}

/// TGA access pathways.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Pathway {
    /// Special Access Scheme category A (seriously ill patients; notification).
    #[serde(rename = "SAS-A")]
    SasA,
    /// Special Access Scheme category B (approval per patient).
    #[serde(rename = "SAS-B")]
    SasB,
    /// Special Access Scheme category C (listed products only).
    #[serde(rename = "SAS-C")]
    SasC,
    /// Authorised Prescriber.
    #[serde(rename = "AP")]
    Ap,
    /// Clinical trial.
    #[serde(rename = "CT")]
    Ct,
}

/// Kinds of state or territory S8 authority.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum AuthorityKind {
    /// ACT Chief Health Officer approval.
    #[serde(rename = "CHO")]
    Cho,
    /// An S8 permit (VIC, QLD).
    #[serde(rename = "S8_PERMIT")]
    S8Permit,
    /// SA Controlled Substances Act s18A authority.
    #[serde(rename = "s18A")]
    S18a,
    /// TAS Poisons Act s59E authorisation.
    #[serde(rename = "s59E")]
    S59e,
    /// WA CEO authorisation.
    #[serde(rename = "CEO")]
    Ceo,
    /// NSW Health approval.
    #[serde(rename = "NSW_APPROVAL")]
    NswApproval,
}

/// Values as the tables write them (`dried_herb, oil`), joined for a message.
pub(crate) fn names<T: Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|item| {
            serde_json::to_value(item)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One value as the tables write it (`sublingual`, `S4`).
pub(crate) fn label<T: Serialize>(item: &T) -> String {
    names(std::slice::from_ref(item))
}
