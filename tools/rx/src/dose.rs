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

/// One dose of an instruction and how many times a day it is taken, if said.
#[derive(Debug, Clone)]
struct Dose {
    amount: f64,
    unit: String,
    times: Option<f64>,
    /// `times` counts times of day ("in the morning and at night"), so another adds one.
    by_time_of_day: bool,
}

/// One instruction: its doses and a frequency said apart from any dose ("may increase to
/// three times daily").
#[derive(Debug, Default, Clone)]
struct Instruction {
    doses: Vec<Dose>,
    frequency: Option<f64>,
}

/// Read the largest daily amount the directions allow.
pub fn max_daily(directions: &str) -> DailyDose {
    let tokens = tokens(directions);
    // "5 mg/kg twice daily": the amount depends on a weight the prescription does not give.
    if tokens.iter().any(
        |t| matches!(t, Token::Word(w) if matches!(w.as_str(), "kg" | "kilogram" | "kilograms")),
    ) {
        return DailyDose::Unknown("the dose is by body weight");
    }
    let (instructions, cap) = instructions(&tokens);
    let mut largest: Option<(f64, String)> = None;
    let mut unknown: Option<&'static str> = None;
    let mut last_dose: Option<(f64, String)> = None;
    for instruction in &instructions {
        let doses = match (
            &last_dose,
            instruction.doses.is_empty(),
            instruction.frequency,
        ) {
            (_, false, _) => instruction.doses.clone(),
            // "…, may increase to three times daily" repeats the last dose more often.
            (Some((amount, unit)), true, Some(times)) => vec![Dose {
                amount: *amount,
                unit: unit.clone(),
                times: Some(times),
                by_time_of_day: false,
            }],
            _ => continue,
        };
        let mut total: Option<(f64, String)> = None;
        for dose in doses {
            last_dose = Some((dose.amount, dose.unit.clone()));
            let Some(times) = dose.times.or(instruction.frequency) else {
                unknown = Some("the directions do not say how often");
                continue;
            };
            total = match total {
                None => Some((dose.amount * times, dose.unit)),
                Some((sum, first)) if first == dose.unit => {
                    Some((sum + dose.amount * times, first))
                }
                Some(_) => return DailyDose::Unknown("the directions mix units"),
            };
        }
        largest = match (largest, total) {
            (Some((most, first)), Some((amount, unit))) if first == unit => {
                Some((most.max(amount), first))
            }
            (Some(_), Some(_)) => return DailyDose::Unknown("the directions mix units"),
            (most, None) => most,
            (None, total) => total,
        };
    }
    let cap = cap.and_then(|(amount, unit)| {
        let unit = unit.or_else(|| last_dose.map(|(_, unit)| unit))?;
        Some((amount, unit))
    });
    match (largest, unknown, cap) {
        (Some((amount, unit)), None, Some((limit, limit_unit))) if limit_unit == unit => {
            DailyDose::Known {
                amount: amount.min(limit),
                unit,
            }
        }
        (Some((amount, unit)), None, _) => DailyDose::Known { amount, unit },
        (_, _, Some((amount, unit))) => DailyDose::Known { amount, unit },
        (_, Some(reason), None) => DailyDose::Unknown(reason),
        (None, None, None) => DailyDose::Unknown("the directions give no amount and frequency"),
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

/// Split into instructions (at `,`, `;`, "then", "or", "increasing"…) and find a daily cap.
fn instructions(tokens: &[Token]) -> (Vec<Instruction>, Option<(f64, Option<String>)>) {
    let mut done = Vec::new();
    let mut current = Instruction::default();
    let mut times_of_day = 0.0;
    let mut cap: Option<(f64, Option<String>)> = None;
    let mut i = 0;
    while i < tokens.len() {
        let word = match &tokens[i] {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        };
        let splits = matches!(
            word,
            Some("then" | "or" | "increasing" | "increase" | "titrate" | "titrating")
        );
        if tokens[i] == Token::Break || splits {
            if times_of_day > 0.0 && current.frequency.is_none() {
                current.frequency = Some(times_of_day);
            }
            times_of_day = 0.0;
            done.push(std::mem::take(&mut current));
            i += 1;
        } else if let Some((limit, unit, used)) = daily_cap(tokens, i) {
            if cap.as_ref().is_none_or(|(old, _)| limit < *old) {
                cap = Some((limit, unit));
            }
            i += used;
        } else if let Some((amount, unit, used)) = dose(tokens, i) {
            current.doses.push(Dose {
                amount,
                unit,
                times: None,
                by_time_of_day: false,
            });
            i += used;
        } else if let Some((times, used)) = frequency(tokens, i) {
            match current.doses.last_mut() {
                Some(dose) if dose.times.is_none() => dose.times = Some(times),
                _ => current.frequency = Some(times),
            }
            i += used;
        } else {
            if word.is_some_and(|w| TIMES_OF_DAY.contains(&w)) {
                // "1 mL in the morning and 2 mL at night": each dose has its own time;
                // "1 mL in the morning and at night": one dose, two times.
                match current.doses.last_mut() {
                    Some(dose) if dose.times.is_none() => {
                        dose.times = Some(1.0);
                        dose.by_time_of_day = true;
                    }
                    Some(Dose {
                        times: Some(times),
                        by_time_of_day: true,
                        ..
                    }) => *times += 1.0,
                    _ => times_of_day += 1.0,
                }
            }
            i += 1;
        }
    }
    if times_of_day > 0.0 && current.frequency.is_none() {
        current.frequency = Some(times_of_day);
    }
    done.push(current);
    (done, cap)
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

/// A dose with its unit: `0.5–1 mL`, `two capsules`, `100 mg`.
fn dose(tokens: &[Token], at: usize) -> Option<(f64, String, usize)> {
    let (amount, used) = amount(tokens, at)?;
    let Some(Token::Word(word)) = tokens.get(at + used) else {
        return None;
    };
    Some((amount, unit(word)?.to_owned(), used + 1))
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
            (shortest > 0.0).then(|| ((24.0 / shortest).floor().max(1.0), used + 1))
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
    // Latin abbreviations written with dots: b.d., t.d.s., p.r.n.
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
        } else if c == '½' {
            out.push(Token::Number(0.5));
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
            // "0,5 mL": a decimal comma.
            let whole = match out.pop() {
                Some(Token::Number(n)) => n,
                _ => 0.0,
            };
            let mut fraction = String::from("0.");
            while let Some(&n) = chars.peek().filter(|n| n.is_ascii_digit()) {
                fraction.push(n);
                chars.next();
            }
            out.push(Token::Number(
                whole + fraction.parse::<f64>().unwrap_or(0.0),
            ));
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
    out
}
