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
        // Doses at different times of the day add up, whatever separates them.
        ("1 mL mane; 1 mL nocte", known(2.0, "mL")),
        (
            "0.5 mL morning, 0.5 mL midday, 0.5 mL afternoon, 0.5 mL night",
            known(2.0, "mL"),
        ),
        ("0.5 mL tds and nocte", known(2.0, "mL")),
        ("1 mL every morning and every night", known(2.0, "mL")),
        ("One capsule daily at night", known(1.0, "capsule")),
        ("1 mL x2 daily", known(2.0, "mL")),
        // A cap belongs to its step of a titration.
        (
            "Up to 1 mL daily for the first week, then 1 mL three times daily",
            known(3.0, "mL"),
        ),
        // A cap without a unit after a measured dose counts doses.
        ("2 mL as needed, up to 3 a day", known(6.0, "mL")),
        ("Take 1,200 mg daily", known(1200.0, "mg")),
        ("1½ mL tds", known(4.5, "mL")),
        ("one and a half mL tds", known(4.5, "mL")),
        ("two 50 mg capsules tds", known(300.0, "mg")),
        ("2 x 75 mg capsules bd", known(300.0, "mg")),
        ("2 x 0.5 mL tds", known(3.0, "mL")),
        ("1 mL every 5 hours", known(5.0, "mL")),
        ("1 mL every other day", known(0.5, "mL")),
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
        "5 mg per kilo twice daily",
        "5 mg per pound of bodyweight daily",
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
    // Every instruction of one step counts: ten thousand of them are ten thousand doses.
    assert_eq!(max_daily(&long), known(20_000.0, "mL"));
}
