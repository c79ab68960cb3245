#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::{book, day, valid_simple};
use baton_rx::{Code, Schedule, validate_bytes};
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

/// A day the rule tables do not cover has no rule to check: never "valid".
#[test]
fn a_day_before_the_tables_is_an_error_naming_the_range_never_valid() {
    let mut rx = valid_simple();
    rx["as_of"] = "2016-01-01".into();
    rx["jurisdiction"] = "XX".into();
    let report = run(&rx);
    assert!(!report.valid);
    assert_eq!(report.codes(), vec![Code::Input]);
    let finding = &report.findings[0];
    assert_eq!(finding.path, "as_of");
    let (from, _) = book().effective_range().unwrap();
    assert!(
        finding.message.starts_with(&format!(
            "2016-01-01 is outside the days the rule tables cover ({from} onwards"
        )),
        "{}",
        finding.message
    );
}

/// A key given twice is ambiguous: refused naming the key and the object, in either format —
/// never read as whichever came last.
#[test]
fn a_duplicated_key_is_refused_naming_it_in_both_formats() {
    let simple = valid_simple().to_string();
    let twice = simple.replacen("\"as_of\"", "\"jurisdiction\":\"XX\",\"as_of\"", 1);
    assert_ne!(simple, twice, "the test edits the document");
    let report = validate_bytes(&book(), twice.as_bytes(), day("2026-11-22"));
    assert!(!report.valid);
    assert_eq!(report.codes(), vec![Code::Input]);
    assert!(
        report.findings[0].message.contains("jurisdiction"),
        "{:?}",
        report.findings
    );

    let fhir = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/rx/nsw-cat2-sas-b.fhir.json"),
    )
    .unwrap();
    let clean = validate_bytes(&book(), fhir.as_bytes(), day("2026-11-22"));
    assert!(clean.valid, "{:?}", clean.findings);
    let twice = fhir.replacen(
        "\"resourceType\": \"Patient\",",
        "\"resourceType\": \"Patient\",\n        \"birthDate\": \"2020-01-01\",",
        1,
    );
    assert_ne!(fhir, twice, "the test edits the bundle");
    let report = validate_bytes(&book(), twice.as_bytes(), day("2026-11-22"));
    assert!(!report.valid, "{:?}", report.findings);
    assert_eq!(report.codes(), vec![Code::Input]);
    let finding = &report.findings[0];
    assert_eq!(
        finding.message,
        "the key `birthDate` appears twice in the same object; which one is meant is ambiguous"
    );
    assert!(finding.path.starts_with("entry["), "{}", finding.path);
}

mod hostile {
    //! Property tests: corrupted prescriptions (bytes replaced, inserted, deleted in the
    //! committed fixtures, both formats) never panic, and a report is never "valid" with an
    //! error finding in it. Fixed seed, bounded cases: the same inputs every run.
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::{book, day, validate_bytes};

    static SEEDS: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rx");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    });
    static BOOK: std::sync::LazyLock<baton_rx::RuleBook> = std::sync::LazyLock::new(book);

    proptest! {
        #![proptest_config(Config {
            cases: 20_000,
            rng_seed: RngSeed::Fixed(0x5eed_0016),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn corrupted_prescriptions_never_panic_nor_pass_with_an_error(
            seed in 0usize..64,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let bytes = baton_test_support::mutate(SEEDS[seed % SEEDS.len()].clone(), &edits);
            let report = validate_bytes(&BOOK, &bytes, day("2026-11-22"));
            let errors = report
                .findings
                .iter()
                .filter(|f| f.severity == baton_rx::Severity::Error)
                .count();
            prop_assert_eq!(report.valid, errors == 0, "{:?}", report.findings);
        }
    }
}
