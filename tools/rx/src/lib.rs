//! `baton-rx`: the prescription-rule pack. Checks Australian medicinal-cannabis prescriptions
//! (FHIR R4 Bundles or a simple JSON format) against federal (TGA) and state/territory rules.
//!
//! The key design choice: the rules are **data**. Every rule is a row of a TOML table in the
//! `rx` knowledge pack (`knowledge/rx/*.toml`) with an id, a version, the code it reports, the
//! jurisdictions and schedules it covers, `effective_from`/`effective_to` dates and its legal
//! source. The engine only knows what each *kind* of check means; thresholds, places, codes
//! and dates all come from the tables, so a change in the law is a reviewed data change, and a
//! running server picks it up when the knowledge shelf reloads. FHIR input is mapped onto
//! the simple format's model, so both formats meet the same rules: a fast road reads the text
//! once with its own pull reader into borrowed structs, and anything it does not expect goes to
//! the exact reader, which rewrites the Bundle into the simple format and names the FHIR
//! element at fault.

mod book;
mod classify;
mod dose;
mod engine;
mod error;
mod fhir;
mod fhir_fast;
mod ident;
mod input;
mod model;
mod pull;
mod report;
mod rules;
mod tools;

pub use book::Rules;
pub use classify::{Scheduled, Shares, Strength, Use, category, schedule, strength};
pub use dose::{DailyDose, max_daily};
pub use engine::{input_report, validate};
pub use error::{Result, RxError};
pub use fhir::EXTENSION_BASE;
pub use input::{Format, InputError, parse_bytes, parse_value};
pub use model::{
    Address, Approval, AuthorityKind, Day, Form, Ingredient, Pathway, Patient, Prescriber,
    PrescriberKind, Prescription, Product, Quantity, Route, Schedule, StateAuthority,
};
pub use report::{Code, Finding, Report, Severity};
pub use rules::{Check, Condition, Field, IdField, PACK, Rule, RuleBook, RuleInfo};
pub use tools::*;

/// Today's date in the machine's time zone: the default check date.
pub fn today() -> Day {
    Day(jiff::Zoned::now().date())
}

/// Read and validate one prescription file's bytes.
pub fn validate_bytes(book: &RuleBook, bytes: &[u8], today: Day) -> Report {
    match parse_bytes(bytes) {
        Ok((rx, _)) => validate(book, &rx, today),
        Err(error) => input_report(book, &error),
    }
}
