#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use baton_knowledge::Library;
use baton_rx::{Day, RuleBook};
use serde_json::{Value, json};

/// The repository's knowledge root.
pub fn knowledge_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")
}

/// The committed rule tables.
pub fn book() -> RuleBook {
    let library = Library::load(&knowledge_root()).expect("knowledge loads");
    RuleBook::from_library(&library).expect("rule tables compile")
}

/// A day.
pub fn day(text: &str) -> Day {
    Day::parse(text).expect("a date")
}

/// A valid NSW category-2 prescription on SAS-B in the simple format.
pub fn valid_simple() -> Value {
    json!({
        "as_of": "2026-10-05",
        "jurisdiction": "NSW",
        "authored_on": "2026-10-01",
        "patient": {
            "name": "Alex Citizen", "dob": "1980-01-01",
            "address": {"line": "1 George St, Sydney", "state": "NSW", "postcode": "2000"},
            "ihi": "8003608166690503", "medicare": "2123456701",
            "drug_dependent": false, "palliative": false
        },
        "prescriber": {
            "name": "Dr Jo Smith", "kind": "medical_practitioner", "ahpra": "MED0001234567",
            "hpii": "8003619900015717",
            "address": {"line": "2 Pitt St, Sydney", "state": "NSW", "postcode": "2000"},
            "phone": "02 9000 0000", "signed": true, "registration_conditions": false
        },
        "product": {
            "name": "Tilray Balance 100:5 oil", "artg": false, "compounded": false,
            "form": "oil", "route": "sublingual",
            "ingredients": [
                {"name": "CBD", "amount": 100, "per": "mL", "unit": "mg"},
                {"name": "THC", "amount": 5, "per": "mL", "unit": "mg"}
            ],
            "declared_category": 2, "declared_schedule": "S8"
        },
        "quantity": {"value": 25, "unit": "mL"}, "repeats": 2, "repeat_interval_days": 28,
        "directions": "0.5 mL under the tongue twice daily", "self_prescribed": false,
        "treatment_started": "2026-06-01", "rtpm_checked": true,
        "approvals": [{
            "pathway": "SAS-B", "number": "SASB-2026-001", "category": 2, "dosage_form": "oil",
            "prescriber_ahpra": "MED0001234567", "valid_from": "2026-01-01", "valid_to": "2026-12-31"
        }],
        "state_authorities": []
    })
}
