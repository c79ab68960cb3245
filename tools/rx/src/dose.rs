//! The most a patient may take in a day, read from free-text directions ("0.5–1 mL under the
//! tongue up to three times daily", "1 mL in the morning and 2 mL at night", "1–2 sprays as
//! needed, up to 10 a day").
//!
//! The reading is deliberately one-sided: it returns an amount only when the text states both
//! how much and how often (or a daily maximum), always taking the upper end of a range and the
//! largest step of a titration. Anything else is [`DailyDose::Unknown`], and callers must not
//! read "unknown" as "small": the Schedule 3 limit is judged only on a known amount.

/// What the directions say about the largest daily amount.
#[derive(Debug, Clone, PartialEq)]
pub enum DailyDose {
    /// At most `amount` of `unit` a day (`unit` normalised: `mL`, `mg`, `g`, `capsule`…).
    Known {
        /// How much.
        amount: f64,
        /// Of what.
        unit: String,
    },
    /// The directions do not give a daily amount; the reason says what is missing.
    Unknown(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Word(String),
    /// `,` or `;`: the end of one instruction.
    Break,
    /// A range dash between two numbers.
    Dash,
}

/// One dose and how many times a day it is taken, if said.
#[derive(Debug, Clone)]
struct Dose {
    amount: f64,
    unit: String,
    times: Option<f64>,
    /// `times` counts times of day ("in the morning and at night"), so another adds one.
    by_time_of_day: bool,
}

/// One step of a regimen (a titration has several, "… then …"): every dose taken in a day
/// at that step, a frequency said apart from any dose ("may increase to three times
/// daily"), and a daily maximum.
#[derive(Debug, Default, Clone)]
struct Step {
    doses: Vec<Dose>,
    frequency: Option<f64>,
    /// Times of day said before any dose.
    times_of_day: f64,
    cap: Option<(f64, Option<String>)>,
}

/// Units counted in whole doses: a cap without a unit counts them ("1–2 puffs, up to 10 a
/// day"); a cap after a measured dose ("2 mL, up to 3 a day") counts doses.
const COUNTED: &[&str] = &[
    "capsule",
    "tablet",
    "wafer",
    "spray",
    "actuation",
    "puff",
    "drop",
    "cartridge",
];

/// Read the largest daily amount the directions allow.
pub fn max_daily(directions: &str) -> DailyDose {
    let tokens = tokens(directions);
    // "5 mg/kg twice daily": the amount depends on a weight the prescription does not give.
    if tokens.iter().any(|t| {
        matches!(t, Token::Word(w) if matches!(
            w.as_str(),
            "kg" | "kilo" | "kilos" | "kilogram" | "kilograms" | "lb" | "lbs" | "pound"
                | "pounds" | "bodyweight"
        ))
    }) {
        return DailyDose::Unknown("the dose is by body weight");
    }
    let mut largest: Option<(f64, String)> = None;
    let mut last_dose: Option<(f64, String)> = None;
    for step in steps(&tokens) {
        let total = match step_total(&step, &mut last_dose) {
            Ok(Some(total)) => total,
            Ok(None) => continue,
            Err(reason) => return DailyDose::Unknown(reason),
        };
        largest = match largest {
            Some((most, unit)) if unit == total.1 => Some((most.max(total.0), unit)),
            Some(_) => return DailyDose::Unknown("the directions mix units"),
            None => Some(total),
        };
    }
    match largest {
        Some((amount, unit)) => DailyDose::Known { amount, unit },
        None => DailyDose::Unknown("the directions give no amount and frequency"),
    }
}

/// The daily amount of one step: its doses times their frequencies, held to its cap.
fn step_total(
    step: &Step,
    last_dose: &mut Option<(f64, String)>,
) -> Result<Option<(f64, String)>, &'static str> {
    let doses = match (&*last_dose, step.doses.is_empty(), step.frequency) {
        (_, false, _) => step.doses.clone(),
        // "…, may increase to three times daily" repeats the last dose more often.
        (Some((amount, unit)), true, Some(times)) => vec![Dose {
            amount: *amount,
            unit: unit.clone(),
            times: Some(times),
            by_time_of_day: false,
        }],
        _ => Vec::new(),
    };
    let mut total: Option<(f64, String)> = None;
    let mut unknown = None;
    for dose in &doses {
        *last_dose = Some((dose.amount, dose.unit.clone()));
        let Some(times) = dose.times.or(step.frequency) else {
            unknown = Some("the directions do not say how often");
            continue;
        };
        total = match total {
            None => Some((dose.amount * times, dose.unit.clone())),
            Some((sum, unit)) if unit == dose.unit => Some((sum + dose.amount * times, unit)),
            Some(_) => return Err("the directions mix units"),
        };
    }
    let cap = step.cap.as_ref().and_then(|(limit, unit)| match unit {
        Some(unit) => Some((*limit, unit.clone())),
        None => last_dose.as_ref().map(|(amount, unit)| {
            if COUNTED.contains(&unit.as_str()) {
                (*limit, unit.clone())
            } else {
                (*limit * amount, unit.clone())
            }
        }),
    });
    match (total, unknown, cap) {
        (Some((amount, unit)), None, Some((limit, limit_unit))) if limit_unit == unit => {
            Ok(Some((amount.min(limit), unit)))
        }
        (Some(total), None, _) => Ok(Some(total)),
        (_, _, Some(cap)) => Ok(Some(cap)),
        (_, Some(reason), None) => Err(reason),
        (None, None, None) => Ok(None),
    }
}

const TIMES_OF_DAY: &[&str] = &[
    "morning",
    "mane",
    "midday",
    "noon",
    "lunch",
    "lunchtime",
    "afternoon",
    "evening",
    "night",
    "nocte",
    "bedtime",
    "nightly",
];

/// Split into steps at "then", "or", "increasing"… (a titration's steps, or alternatives: the
/// largest counts); within a step every dose counts, whatever separates them.
fn steps(tokens: &[Token]) -> Vec<Step> {
    let mut done = Vec::new();
    let mut current = Step::default();
    // The last word was "and": a frequency or time of day after it adds to the dose's.
    let mut joined = false;
    let mut i = 0;
    while i < tokens.len() {
        let word = match &tokens[i] {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        };
        if matches!(
            word,
            Some("then" | "or" | "increasing" | "increase" | "titrate" | "titrating")
        ) {
            done.push(close(std::mem::take(&mut current)));
            joined = false;
            i += 1;
        } else if let Some((limit, unit, used)) = daily_cap(tokens, i) {
            if current.cap.as_ref().is_none_or(|(old, _)| limit < *old) {
                current.cap = Some((limit, unit));
            }
            i += used;
        } else if let Some((amount, unit, used)) = dose(tokens, i) {
            current.doses.push(Dose {
                amount,
                unit,
                times: None,
                by_time_of_day: false,
            });
            joined = false;
            i += used;
        } else if let Some((times, used)) = frequency(tokens, i) {
            add_frequency(&mut current, times, joined);
            joined = false;
            i += used;
        } else {
            if word.is_some_and(|w| TIMES_OF_DAY.contains(&w)) {
                add_time_of_day(&mut current, joined);
            }
            joined = matches!(word, Some("and" | "plus")) || (joined && tokens[i] == Token::Break);
            i += 1;
        }
    }
    done.push(close(current));
    done
}

/// A frequency: the last dose's if it has none, added to it after "and" ("tds and nocte"),
/// else the larger of the two said.
fn add_frequency(step: &mut Step, times: f64, joined: bool) {
    let slot = match step.doses.last_mut() {
        Some(dose) => {
            dose.by_time_of_day = false;
            &mut dose.times
        }
        None => &mut step.frequency,
    };
    *slot = Some(match *slot {
        None => times,
        Some(before) if joined => before + times,
        Some(before) => before.max(times),
    });
}

/// A time of day: one more time for the last dose when it counts times of day or follows
/// "and"; a refinement otherwise ("daily at night").
fn add_time_of_day(step: &mut Step, joined: bool) {
    match step.doses.last_mut() {
        Some(dose) if dose.times.is_none() => {
            dose.times = Some(1.0);
            dose.by_time_of_day = true;
        }
        Some(dose) if dose.by_time_of_day || joined => {
            dose.times = dose.times.map(|t| t + 1.0);
        }
        Some(_) => {}
        None => step.times_of_day += 1.0,
    }
}

/// A finished step: times of day said before any dose are its frequency.
fn close(mut step: Step) -> Step {
    if step.times_of_day > 0.0 && step.frequency.is_none() {
        step.frequency = Some(step.times_of_day);
    }
    step
}

/// `N [unit]`, or `N–M [unit]` (the upper end), at `at`: (amount, unit, tokens used).
fn amount(tokens: &[Token], at: usize) -> Option<(f64, usize)> {
    let Some(Token::Number(first)) = tokens.get(at) else {
        return None;
    };
    match (tokens.get(at + 1), tokens.get(at + 2)) {
        (Some(Token::Dash), Some(Token::Number(second))) => Some((first.max(*second), 3)),
        (Some(Token::Word(to)), Some(Token::Number(second))) if to == "to" => {
            Some((first.max(*second), 3))
        }
        _ => Some((*first, 1)),
    }
}

/// A dose with its unit: `0.5–1 mL`, `two capsules`, `100 mg`, and counted doses of a
/// strength, `two 50 mg capsules`, `2 x 0.5 mL` (the count times the amount).
fn dose(tokens: &[Token], at: usize) -> Option<(f64, String, usize)> {
    let single = |at: usize| {
        let (amount, used) = amount(tokens, at)?;
        let Some(Token::Word(word)) = tokens.get(at + used) else {
            return None;
        };
        Some((amount, unit(word)?.to_owned(), used + 1))
    };
    if let Some(Token::Number(count)) = tokens.get(at) {
        let by = usize::from(matches!(tokens.get(at + 1), Some(Token::Word(x)) if x == "x"));
        if matches!(tokens.get(at + 1 + by), Some(Token::Number(_)))
            && let Some((amount, unit, used)) = single(at + 1 + by)
        {
            return Some((count * amount, unit, used + 1 + by));
        }
    }
    single(at)
}

/// A daily maximum: `up to 10 a day`, `maximum 6 capsules daily`, `no more than 2 mL per day`.
fn daily_cap(tokens: &[Token], at: usize) -> Option<(f64, Option<String>, usize)> {
    let word = |offset: usize| match tokens.get(at + offset) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let lead = match (word(0), word(1)) {
        (Some("up" | "no" | "not"), Some("to" | "more" | "exceeding")) => {
            if word(1) == Some("more") && word(2) == Some("than") {
                3
            } else {
                2
            }
        }
        (Some("max" | "maximum" | "maximally"), _) => {
            if word(1) == Some("of") {
                2
            } else {
                1
            }
        }
        _ => return None,
    };
    let (limit, used) = amount(tokens, at + lead)?;
    let mut next = at + lead + used;
    let unit = match tokens.get(next) {
        Some(Token::Word(w)) if unit(w).is_some() => {
            next += 1;
            unit(w).map(str::to_owned)
        }
        _ => None,
    };
    let per_day = per_day(tokens, next)?;
    Some((limit, unit, next + per_day - at))
}

/// `daily`, `a day`, `per day`, `each day`, `/day`, `in 24 hours` at `at`: tokens used.
fn per_day(tokens: &[Token], at: usize) -> Option<usize> {
    let word = |offset: usize| match tokens.get(at + offset) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    match (word(0), word(1)) {
        (Some("daily" | "day" | "nightly"), _) => Some(1),
        (Some("a" | "per" | "each" | "every"), Some("day")) => Some(2),
        (Some("in"), _) if tokens.get(at + 1) == Some(&Token::Number(24.0)) => {
            matches!(word(2), Some("hours" | "hrs" | "h")).then_some(3)
        }
        _ => None,
    }
}

/// How many times a day, at `at`: (times, tokens used).
fn frequency(tokens: &[Token], at: usize) -> Option<(f64, usize)> {
    let word = |offset: usize| match tokens.get(at + offset) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let (times, used) = match word(0) {
        Some("bd" | "bid") => (2.0, 1),
        Some("tds" | "tid") => (3.0, 1),
        Some("qid" | "qds") => (4.0, 1),
        Some("od" | "daily" | "nightly") => (1.0, 1),
        Some("once") => (1.0, 1),
        // "1 mL x2 daily".
        Some("x") => match tokens.get(at + 1) {
            Some(Token::Number(n)) => (*n, 2),
            _ => return None,
        },
        Some("twice") => (2.0, 1),
        Some("thrice") => (3.0, 1),
        Some("every") => return every(tokens, at + 1).map(|(t, used)| (t, used + 1)),
        _ => {
            let (n, used) = amount(tokens, at)?;
            match tokens.get(at + used) {
                Some(Token::Word(w)) if w == "times" || w == "x" => (n, used + 1),
                _ => return None,
            }
        }
    };
    // "twice a day", "3 times per week".
    let next = at + used;
    if let Some(Token::Word(w)) = tokens.get(next + usize::from(is_filler(tokens, next)))
        && (w == "week" || w == "weekly")
    {
        return Some((times / 7.0, used + 1 + usize::from(is_filler(tokens, next))));
    }
    Some((times, used + per_day(tokens, next).unwrap_or(0)))
}

fn is_filler(tokens: &[Token], at: usize) -> bool {
    matches!(tokens.get(at), Some(Token::Word(w)) if w == "a" || w == "per" || w == "each")
}

/// `every 4 hours`, `every 4–6 hours` (the shorter interval), `every day`.
fn every(tokens: &[Token], at: usize) -> Option<(f64, usize)> {
    if let Some(Token::Word(w)) = tokens.get(at) {
        return match w.as_str() {
            "day" | "morning" | "night" | "evening" => Some((1.0, 1)),
            "week" => Some((1.0 / 7.0, 1)),
            "other" if matches!(tokens.get(at + 1), Some(Token::Word(d)) if d == "day") => {
                Some((0.5, 2))
            }
            _ => None,
        };
    }
    let Some(Token::Number(first)) = tokens.get(at) else {
        return None;
    };
    let (shortest, used) = match (tokens.get(at + 1), tokens.get(at + 2)) {
        (Some(Token::Dash), Some(Token::Number(second))) => (first.min(*second), 3),
        _ => (*first, 1),
    };
    match tokens.get(at + used) {
        Some(Token::Word(w)) if matches!(w.as_str(), "hours" | "hour" | "hrs" | "hr" | "h") => {
            // Every 5 hours is 5 doses in a day (0, 5, 10, 15, 20 h).
            (shortest > 0.0).then(|| ((24.0 / shortest).ceil().max(1.0), used + 1))
        }
        _ => None,
    }
}

/// The normalised unit a word names.
fn unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "ml" | "mls" | "millilitre" | "millilitres" | "milliliter" | "milliliters" => "mL",
        "mg" | "milligram" | "milligrams" => "mg",
        "g" | "gram" | "grams" => "g",
        "capsule" | "capsules" | "cap" | "caps" => "capsule",
        "tablet" | "tablets" | "tab" | "tabs" => "tablet",
        "wafer" | "wafers" | "troche" | "troches" => "wafer",
        "spray" | "sprays" => "spray",
        "actuation" | "actuations" => "actuation",
        "puff" | "puffs" | "inhalation" | "inhalations" => "puff",
        "drop" | "drops" => "drop",
        "cartridge" | "cartridges" => "cartridge",
        _ => return None,
    })
}

fn word_number(word: &str) -> Option<f64> {
    Some(match word {
        "half" => 0.5,
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        _ => return None,
    })
}

/// Lower-case words, numbers (`0.5`, `½`, `1/2`, `three`), range dashes and breaks.
fn tokens(text: &str) -> Vec<Token> {
    let text = text.to_lowercase();
    let cleaned = without_abbreviation_dots(&text);
    let mut out = Vec::new();
    let mut chars = cleaned.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut number = String::from(c);
            while let Some(&n) = chars.peek() {
                if n.is_ascii_digit() || n == '.' {
                    number.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            // A malformed number ("1.2.3") is no amount: a word reads as nothing.
            match number.trim_end_matches('.').parse::<f64>() {
                Ok(value) => out.push(Token::Number(value)),
                Err(_) => out.push(Token::Word(number)),
            }
        } else if let Some(fraction) = match c {
            '½' => Some(0.5),
            '¼' => Some(0.25),
            '¾' => Some(0.75),
            _ => None,
        } {
            // "1½ mL" is one and a half.
            match out.last_mut() {
                Some(Token::Number(whole)) => *whole += fraction,
                _ => out.push(Token::Number(fraction)),
            }
        } else if c.is_alphabetic() {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek() {
                if n.is_alphabetic() {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            match word_number(&word) {
                Some(n) => out.push(Token::Number(n)),
                None => out.push(Token::Word(word)),
            }
        } else if c == ','
            && out.last().is_some_and(|t| matches!(t, Token::Number(_)))
            && chars.peek().is_some_and(char::is_ascii_digit)
        {
            // "0,5 mL": a decimal comma; "1,200 mg": a thousands separator (three digits
            // after a whole number).
            let whole = match out.pop() {
                Some(Token::Number(n)) => n,
                _ => 0.0,
            };
            let mut digits = String::new();
            while let Some(&n) = chars.peek().filter(|n| n.is_ascii_digit()) {
                digits.push(n);
                chars.next();
            }
            let value = if digits.len() == 3 && whole >= 1.0 {
                whole * 1000.0 + digits.parse::<f64>().unwrap_or(0.0)
            } else {
                whole + format!("0.{digits}").parse::<f64>().unwrap_or(0.0)
            };
            out.push(Token::Number(value));
        } else if c == ',' || c == ';' {
            out.push(Token::Break);
        } else if matches!(c, '-' | '–' | '—') {
            out.push(Token::Dash);
        } else if c == '/' {
            // `1/2` is a half; `/day` is per day.
            match (out.last(), chars.peek()) {
                (Some(Token::Number(top)), Some(d)) if d.is_ascii_digit() => {
                    let top = *top;
                    let mut bottom = String::new();
                    while let Some(&n) = chars.peek().filter(|n| n.is_ascii_digit()) {
                        bottom.push(n);
                        chars.next();
                    }
                    let bottom = bottom.parse::<f64>().unwrap_or(0.0);
                    out.pop();
                    out.push(Token::Number(if bottom > 0.0 { top / bottom } else { top }));
                }
                _ => out.push(Token::Word("per".into())),
            }
        }
    }
    halves(out)
}

/// Latin abbreviations written with dots (b.d., t.d.s., p.r.n.) without them; decimal points
/// stay.
fn without_abbreviation_dots(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let between_letters = c == '.'
            && i > 0
            && chars[i - 1].is_alphabetic()
            && chars
                .get(i + 1)
                .is_none_or(|n| n.is_alphabetic() || !n.is_ascii_digit());
        if !between_letters {
            cleaned.push(c);
        }
    }
    cleaned
}

/// "one and a half mL": the whole and its half as one number.
fn halves(out: Vec<Token>) -> Vec<Token> {
    let mut merged: Vec<Token> = Vec::with_capacity(out.len());
    for token in out {
        let n = merged.len();
        if let Token::Number(half) = token
            && half == 0.5
            && n >= 3
            && matches!(&merged[n - 2..], [Token::Word(and), Token::Word(a)] if and == "and" && a == "a")
            && matches!(merged[n - 3], Token::Number(_))
        {
            merged.truncate(n - 2);
            if let Some(Token::Number(whole)) = merged.last_mut() {
                *whole += 0.5;
            }
            continue;
        }
        merged.push(token);
    }
    merged
}
