//! Reading the largest daily dose out of directions as prescribers write them.

use baton_rx::{DailyDose, max_daily};
use pretty_assertions::assert_eq;

fn known(amount: f64, unit: &str) -> DailyDose {
    DailyDose::Known {
        amount,
        unit: unit.into(),
    }
}

#[test]
fn directions_as_written_give_their_largest_daily_amount() {
    let cases = [
        ("0.5 mL under the tongue twice daily", known(1.0, "mL")),
        ("2 mL twice daily", known(4.0, "mL")),
        ("Take 1 mL three times a day", known(3.0, "mL")),
        ("0.5–1 mL up to 3 times daily", known(3.0, "mL")),
        ("0.5 to 1 ml tds", known(3.0, "mL")),
        ("1 mL b.d.", known(2.0, "mL")),
        ("One capsule by mouth at night", known(1.0, "capsule")),
        ("two capsules every 8 hours", known(6.0, "capsule")),
        ("1 mL every 4-6 hours", known(6.0, "mL")),
        ("1 mL in the morning and 2 mL at night", known(3.0, "mL")),
        ("1 mL in the morning and at night", known(2.0, "mL")),
        (
            "1 mL twice daily, increasing to 2 mL three times daily",
            known(6.0, "mL"),
        ),
        (
            "0.5 mL twice daily; may increase to three times daily",
            known(1.5, "mL"),
        ),
        (
            "One spray into the mouth up to 12 times daily as titrated",
            known(12.0, "spray"),
        ),
        (
            "Inhale 1–2 puffs as needed, up to 10 daily",
            known(10.0, "puff"),
        ),
        (
            "2 capsules twice daily, maximum 3 capsules a day",
            known(3.0, "capsule"),
        ),
        (
            "Vaporise 0.1 g at 190 °C up to three times daily",
            known(0.1 * 3.0, "g"),
        ),
        ("50 mg CBD twice daily", known(100.0, "mg")),
        ("½ mL nocte", known(0.5, "mL")),
        ("1/2 tablet daily", known(0.5, "tablet")),
        ("0,5 mL twice daily", known(1.0, "mL")),
        ("1 mL three times per week", known(3.0 / 7.0, "mL")),
    ];
    for (text, expected) in cases {
        assert_eq!(max_daily(text), expected, "{text}");
    }
}

/// Unknown is never read as small: without how much and how often there is no amount.
#[test]
fn directions_without_an_amount_or_a_frequency_are_unknown() {
    for text in [
        "As directed",
        "Apply thinly to the knee twice daily",
        "Take 1 mL",
        "1 mL as needed",
        "1 mL twice daily or 2 capsules at night",
        "",
        "1.2.3 mL twice daily",
        "every 0 hours 1 mL",
        "5 mg/kg twice daily",
        "2.5 mg per kg twice daily",
    ] {
        assert!(
            matches!(max_daily(text), DailyDose::Unknown(_)),
            "{text}: {:?}",
            max_daily(text)
        );
    }
}

/// Whatever the text, reading it never panics (numbers huge, odd characters, long input).
#[test]
fn hostile_directions_never_panic() {
    let long = "1 mL twice daily, ".repeat(10_000);
    for text in [
        "9".repeat(400).as_str(),
        "1/0 mL daily",
        "–––––",
        "up to",
        "maximum of",
        "every",
        "1 mL every 99999999999999999999 hours",
        "🙂 1 mL 🙂 twice 🙂 daily",
        long.as_str(),
    ] {
        let _ = max_daily(text);
    }
    assert_eq!(max_daily(&long), known(2.0, "mL"));
}
