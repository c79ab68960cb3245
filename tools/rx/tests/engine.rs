#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use baton_rx::{Code, Schedule, validate_bytes};
use common::{book, day, valid_simple};
use pretty_assertions::assert_eq;

fn run(value: &serde_json::Value) -> baton_rx::Report {
    validate_bytes(&book(), value.to_string().as_bytes(), day("2026-11-22"))
}

#[test]
fn the_reference_prescription_is_valid() {
    let report = run(&valid_simple());
    assert_eq!(report.findings, vec![]);
    assert!(report.valid);
    assert_eq!(report.category, Some(2));
    assert_eq!(report.schedule, Some(Schedule::S8));
}

#[test]
fn a_nurse_practitioner_on_an_authorised_prescriber_approval_is_e_prescriber() {
    let mut rx = valid_simple();
    rx["prescriber"]["kind"] = "nurse_practitioner".into();
    rx["approvals"][0]["pathway"] = "AP".into();
    assert_eq!(run(&rx).codes(), vec![Code::Prescriber]);
}
