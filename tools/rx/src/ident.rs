//! Identifier formats: letters + digits, prefixes, and check digits.

/// Check `value` against a format; `Err` says what is wrong.
pub(crate) fn check(
    value: &str,
    letters: usize,
    digits: usize,
    or_digits: Option<usize>,
    prefix: Option<&str>,
    luhn: bool,
    medicare: bool,
) -> Result<(), String> {
    let (head, tail) = value.split_at(value.len().min(letters));
    if letters > 0 && !(head.len() == letters && head.chars().all(|c| c.is_ascii_uppercase())) {
        return Err(format!("should start with {letters} capital letters"));
    }
    let count_ok = tail.len() == digits || or_digits == Some(tail.len());
    if !count_ok || !tail.chars().all(|c| c.is_ascii_digit()) {
        let lengths = match or_digits {
            Some(other) => format!("{digits} or {other}"),
            None => digits.to_string(),
        };
        return Err(if letters > 0 {
            format!("should be {letters} letters then {lengths} digits")
        } else {
            format!("should be {lengths} digits")
        });
    }
    if let Some(prefix) = prefix
        && !tail.starts_with(prefix)
    {
        return Err(format!("should start with {prefix}"));
    }
    // All ASCII digits, checked above.
    let numbers = || tail.bytes().map(|b| u32::from(b - b'0'));
    if luhn && !luhn_ok(numbers()) {
        return Err("fails its Luhn check digit".into());
    }
    if medicare {
        let first_ok = numbers().next().is_some_and(|d| (2..=6).contains(&d));
        let weights = [1, 3, 7, 9, 1, 3, 7, 9];
        let sum: u32 = numbers().zip(weights).map(|(d, w)| d * w).sum();
        if !first_ok || numbers().nth(8) != Some(sum % 10) {
            return Err("fails the Medicare check digit".into());
        }
    }
    Ok(())
}

fn luhn_ok(digits: impl DoubleEndedIterator<Item = u32>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if !i.is_multiple_of(2) {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}
