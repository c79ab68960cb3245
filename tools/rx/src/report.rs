use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Schedule;

/// Finding codes. `E-` codes make a prescription invalid; `W-` codes are warnings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Code {
    /// An unapproved product without a usable access pathway.
    #[serde(rename = "E-PATHWAY")]
    Pathway,
    /// The approval is not valid on the prescription or check date.
    #[serde(rename = "E-APPROVAL-EXPIRED")]
    ApprovalExpired,
    /// The product's category differs from the approval's or the declared one.
    #[serde(rename = "E-CATEGORY-MISMATCH")]
    CategoryMismatch,
    /// The product's dosage form differs from the approval's.
    #[serde(rename = "E-DOSAGE-FORM-MISMATCH")]
    DosageFormMismatch,
    /// The approval belongs to another prescriber.
    #[serde(rename = "E-APPROVAL-HOLDER")]
    ApprovalHolder,
    /// Quantity zero or negative, in a unit unfit for the form, or above a limit.
    #[serde(rename = "E-QUANTITY")]
    Quantity,
    /// A state or territory S8 authority is missing, expired or incomplete.
    #[serde(rename = "E-S8-STATE-AUTHORITY")]
    S8StateAuthority,
    /// The declared schedule is wrong for the product.
    #[serde(rename = "E-SCHEDULE")]
    Schedule,
    /// This prescriber may not prescribe this (kind, pathway, self-prescribing, conditions).
    #[serde(rename = "E-PRESCRIBER")]
    Prescriber,
    /// Unknown jurisdiction, or a prescriber practising outside one that requires it.
    #[serde(rename = "E-JURISDICTION")]
    Jurisdiction,
    /// A required item of the prescription is missing or blank.
    #[serde(rename = "E-RX-CONTENT")]
    RxContent,
    /// Repeats without an interval, or more than fit in the prescription's validity.
    #[serde(rename = "E-REPEATS")]
    Repeats,
    /// The prescription is past its validity.
    #[serde(rename = "E-RX-EXPIRED")]
    RxExpired,
    /// A forbidden route, a route unfit for the form, or inhalation without an approval for it.
    #[serde(rename = "E-ROUTE")]
    Route,
    /// The patient's age requires an authority that is missing.
    #[serde(rename = "E-AGE")]
    Age,
    /// The input cannot be read as a prescription.
    #[serde(rename = "E-INPUT")]
    Input,
    /// Real-time prescription monitoring not attested where checking is mandatory.
    #[serde(rename = "W-RTPM")]
    Rtpm,
    /// An identifier is malformed.
    #[serde(rename = "W-IDENTIFIER")]
    Identifier,
}

impl Code {
    /// Every code, in the order of the issue that defined them.
    pub const ALL: [Code; 18] = [
        Code::Pathway,
        Code::ApprovalExpired,
        Code::CategoryMismatch,
        Code::DosageFormMismatch,
        Code::ApprovalHolder,
        Code::Quantity,
        Code::S8StateAuthority,
        Code::Schedule,
        Code::Prescriber,
        Code::Jurisdiction,
        Code::RxContent,
        Code::Repeats,
        Code::RxExpired,
        Code::Route,
        Code::Age,
        Code::Input,
        Code::Rtpm,
        Code::Identifier,
    ];

    /// The code as written (`E-PATHWAY`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Pathway => "E-PATHWAY",
            Code::ApprovalExpired => "E-APPROVAL-EXPIRED",
            Code::CategoryMismatch => "E-CATEGORY-MISMATCH",
            Code::DosageFormMismatch => "E-DOSAGE-FORM-MISMATCH",
            Code::ApprovalHolder => "E-APPROVAL-HOLDER",
            Code::Quantity => "E-QUANTITY",
            Code::S8StateAuthority => "E-S8-STATE-AUTHORITY",
            Code::Schedule => "E-SCHEDULE",
            Code::Prescriber => "E-PRESCRIBER",
            Code::Jurisdiction => "E-JURISDICTION",
            Code::RxContent => "E-RX-CONTENT",
            Code::Repeats => "E-REPEATS",
            Code::RxExpired => "E-RX-EXPIRED",
            Code::Route => "E-ROUTE",
            Code::Age => "E-AGE",
            Code::Input => "E-INPUT",
            Code::Rtpm => "W-RTPM",
            Code::Identifier => "W-IDENTIFIER",
        }
    }

    /// Errors make a prescription invalid; warnings do not.
    pub fn severity(self) -> Severity {
        match self {
            Code::Rtpm | Code::Identifier => Severity::Warning,
            Code::Pathway
            | Code::ApprovalExpired
            | Code::CategoryMismatch
            | Code::DosageFormMismatch
            | Code::ApprovalHolder
            | Code::Quantity
            | Code::S8StateAuthority
            | Code::Schedule
            | Code::Prescriber
            | Code::Jurisdiction
            | Code::RxContent
            | Code::Repeats
            | Code::RxExpired
            | Code::Route
            | Code::Age
            | Code::Input => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The prescription must not be issued or dispensed as it is.
    Error,
    /// Worth a look; does not make it invalid.
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// What kind of problem.
    pub code: Code,
    /// `error` or `warning` (from the code).
    pub severity: Severity,
    /// Id of the rule that found it (`FED-03`), or `INPUT` for unreadable input.
    pub rule: String,
    /// What is wrong, for a pharmacist to read.
    pub message: String,
    /// Where: a field of the simple format (`product.ingredients[1].amount`), or for FHIR
    /// input problems the FHIR element (`Bundle.entry[2].resource.authoredOn`).
    pub path: String,
    /// The law or guidance the rule comes from.
    pub source: String,
}

/// The verdict on one prescription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// False if and only if a finding is an error.
    pub valid: bool,
    /// The product's schedule, when it could be worked out.
    pub schedule: Option<Schedule>,
    /// The product's TGA category (1–5), when it could be worked out.
    pub category: Option<u8>,
    /// Version of the rule tables used (changes with every edit to them).
    pub rules_version: String,
    /// What was found, in rule order.
    pub findings: Vec<Finding>,
}

impl Report {
    /// The distinct codes found, sorted.
    pub fn codes(&self) -> Vec<Code> {
        let mut codes: Vec<Code> = self.findings.iter().map(|f| f.code).collect();
        codes.sort();
        codes.dedup();
        codes
    }
}
