#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use baton_evals::{default_cases_dir, load_rx_cases, run_rx};
use baton_knowledge::Library;
use baton_rx::{Code, Day, RuleBook};

fn book() -> RuleBook {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../knowledge");
    RuleBook::from_library(&Library::load(&root).unwrap()).unwrap()
}

#[test]
fn every_labelled_case_gets_exactly_its_verdict_and_codes() {
    let cases = load_rx_cases(&default_cases_dir("rx")).unwrap();
    let scores = run_rx(&book(), &cases, Day::parse("2026-11-22").unwrap());
    println!("{}", scores.render());
    assert!(scores.cases >= 150, "{} cases", scores.cases);
    for code in Code::ALL {
        assert!(
            cases.iter().any(|case| case.codes.contains(&code)),
            "no case is labelled {code}"
        );
    }
    assert!(scores.targets_met(), "{}", scores.render());
}

#[test]
fn fhir_twins_get_the_same_report_as_their_simple_form() {
    let cases = load_rx_cases(&default_cases_dir("rx")).unwrap();
    let book = book();
    let today = Day::parse("2026-11-22").unwrap();
    let mut pairs = 0;
    for fhir in cases.iter().filter(|c| c.id.ends_with("-fhir")) {
        let Some(simple) = cases
            .iter()
            .find(|c| c.id == fhir.id.trim_end_matches("-fhir"))
        else {
            continue;
        };
        pretty_assertions::assert_eq!(
            simple.report(&book, today),
            fhir.report(&book, today),
            "{}",
            fhir.id
        );
        pairs += 1;
    }
    assert!(pairs >= 60, "{pairs} pairs");
}
