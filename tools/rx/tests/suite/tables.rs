#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common;

use baton_rx::{RuleBook, RxError};
use pretty_assertions::assert_eq;

const CANNABINOIDS: &str = "[[cannabinoid]]\nnames = [\"CBD\"]\nfamily = \"cbd\"\n\
    [[rule]]\nid = \"C-1\"\nversion = 1\ntitle = \"t\"\ncheck = \"category\"\ncategory = 1\n\
    effective_from = \"2020-01-01\"\nsource = \"s\"\n";

fn compile(extra: &str) -> Result<RuleBook, RxError> {
    let text = format!("{CANNABINOIDS}{extra}");
    RuleBook::from_tables([("knowledge://rx/test.toml", text.as_str())])
}

fn message(extra: &str) -> String {
    compile(extra).unwrap_err().to_string()
}

#[test]
fn the_committed_tables_compile_with_unique_ids_and_a_source_each() {
    let book = common::book();
    assert!(book.rules.len() >= 40, "{} rules", book.rules.len());
    assert!(book.rules.iter().all(|r| !r.source.trim().is_empty()));
    assert!(book.version.starts_with("rx-") && book.version.len() == 15);
}

#[test]
fn a_misspelt_parameter_is_refused_naming_table_and_rule() {
    let error = message(
        "[[rule]]\nid = \"X-1\"\nversion = 1\ntitle = \"t\"\ncode = \"E-RX-EXPIRED\"\n\
         check = \"validity\"\nmonth = 6\neffective_from = \"2020-01-01\"\nsource = \"s\"\n",
    );
    assert!(error.contains("knowledge://rx/test.toml"), "{error}");
    assert!(error.contains("month"), "{error}");
}

#[test]
fn bad_rows_are_refused_with_the_reason() {
    let row = |body: &str| {
        format!("[[rule]]\nid = \"X-1\"\nversion = 1\ntitle = \"t\"\n{body}\nsource = \"s\"\n")
    };
    let cases = [
        (
            row("check = \"validity\"\nmonths = 6\neffective_from = \"2020-01-01\""),
            "check `validity` reports findings: give it a `code`",
        ),
        (
            row("code = \"E-AGE\"\ncheck = \"category\"\ncategory = 2\neffective_from = \"2020-01-01\""),
            "check `category` classifies: it takes no `code`",
        ),
        (
            row("code = \"E-RX-EXPIRED\"\ncheck = \"validity\"\nmonths = 6\neffective_from = \"2020-01-01\"\neffective_to = \"2019-01-01\""),
            "effective_to is before effective_from",
        ),
        (
            row("code = \"E-AGE\"\ncheck = \"state_authority\"\nauthorities = [\"CEO\"]\nwhen = \"under_age\"\neffective_from = \"2020-01-01\""),
            "needs `age`",
        ),
        (
            row("code = \"E-NOPE\"\ncheck = \"validity\"\nmonths = 6\neffective_from = \"2020-01-01\""),
            "E-NOPE",
        ),
        (
            row("code = \"E-RX-EXPIRED\"\ncheck = \"validity\"\nmonths = 6\neffective_from = \"2020-02-30\""),
            "expected a date YYYY-MM-DD, got `2020-02-30`",
        ),
        (
            row("code = \"E-RX-EXPIRED\"\ncheck = \"validity\"\nmonths = 6\neffective_from = \"2020-01-01\"")
                .replace("id = \"X-1\"", "id = \"C-1\""),
            "the id is used twice",
        ),
    ];
    for (extra, expected) in cases {
        let error = message(&extra);
        assert!(error.contains(expected), "{expected:?} not in {error:?}");
    }
}

#[test]
fn a_book_without_categories_is_refused() {
    let error = RuleBook::from_tables([(
        "t.toml",
        "[[cannabinoid]]\nnames = [\"CBD\"]\nfamily = \"cbd\"\n",
    )])
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "rule tables: no `category` rule: products cannot be classified"
    );
}
