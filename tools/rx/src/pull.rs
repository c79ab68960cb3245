//! A pull reader for the fast FHIR road: it walks JSON text once, hands the caller borrowed
//! keys and strings, and skips what the caller does not ask for while still checking it.
//!
//! It accepts a strict subset of what `serde_json` accepts and refuses (`GiveUp`) everything
//! else: escaped strings the caller wants to read, `\u` escapes of surrogates, `null`,
//! numbers too large for an `f64`, nesting deeper than `serde_json`'s limit, and of course
//! anything that is not JSON. A refusal is never an answer — the exact reader then reads the
//! input through `serde_json` and names what is wrong — so the one rule here is: never accept
//! text `serde_json` would refuse. A typed `serde` walk of a pretty-printed bundle spent two
//! thirds of a check's time in its per-field machinery (figures in docs/benchmarks.md).

/// The fast road gave up: the exact reader decides.
#[derive(Debug)]
pub(crate) struct GiveUp;

/// `Ok`, or the fast road gives up.
pub(crate) type Fast<T> = Result<T, GiveUp>;

impl From<serde_json::Error> for GiveUp {
    fn from(_: serde_json::Error) -> GiveUp {
        GiveUp
    }
}

impl From<serde::de::value::Error> for GiveUp {
    fn from(_: serde::de::value::Error) -> GiveUp {
        GiveUp
    }
}

/// Deeper than this is left to the exact reader (`serde_json` stops at 128).
const MAX_DEPTH: u32 = 100;

/// A cursor over JSON text.
pub(crate) struct Pull<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

/// A JSON scalar read without knowing yet what it should be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    /// A string without escapes.
    Str(&'a str),
    Bool(bool),
    /// A number's text, checked against JSON's grammar.
    Number(&'a str),
}

impl<'a> Pull<'a> {
    /// A reader at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Pull<'a> {
        Pull {
            text,
            at: 0,
            depth: 0,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_space(&mut self) {
        let bytes = self.bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte that is not white space, not consumed.
    pub(crate) fn peek(&mut self) -> Fast<u8> {
        self.skip_space();
        self.bytes().get(self.at).copied().ok_or(GiveUp)
    }

    fn eat(&mut self, byte: u8) -> Fast<()> {
        if self.peek()? == byte {
            self.at += 1;
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// Only white space is left.
    pub(crate) fn end(mut self) -> Fast<()> {
        self.skip_space();
        if self.at == self.text.len() {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A string without escapes, borrowed.
    pub(crate) fn string(&mut self) -> Fast<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.bytes();
        let mut at = start;
        // Eight bytes at a time: the first quote, backslash or control byte ends the run.
        while let Some(chunk) = bytes.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().map_err(|_| GiveUp)?);
            let stops = special(word);
            if stops != 0 {
                at += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        loop {
            match bytes.get(at) {
                Some(b'"') => break,
                Some(b'\\') | None => return Err(GiveUp),
                Some(&byte) if byte < 0x20 => return Err(GiveUp),
                Some(_) => at += 1,
            }
        }
        self.at = at + 1;
        self.text.get(start..at).ok_or(GiveUp)
    }

    /// A number's text; the grammar is JSON's, the value is read by the caller.
    pub(crate) fn number(&mut self) -> Fast<&'a str> {
        self.skip_space();
        let start = self.at;
        let bytes = self.bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at > from
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        match bytes.get(at) {
            Some(b'0') => at += 1,
            Some(b'1'..=b'9') => {
                digits(&mut at);
            }
            _ => return Err(GiveUp),
        }
        let mut plain = true;
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            plain = false;
            if !digits(&mut at) {
                return Err(GiveUp);
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            plain = false;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            if !digits(&mut at) {
                return Err(GiveUp);
            }
        }
        self.at = at;
        let text = self.text.get(start..at).ok_or(GiveUp)?;
        // serde_json refuses numbers beyond an f64's range; short integers are always within.
        if (!plain || text.len() > 18) && !text.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(GiveUp);
        }
        Ok(text)
    }

    /// A number as an `f64`, rounded exactly as `serde_json` rounds it.
    pub(crate) fn f64(&mut self) -> Fast<f64> {
        let text = self.number()?;
        number_f64(text)
    }

    /// A non-negative integer that fits a `u32`.
    pub(crate) fn u32(&mut self) -> Fast<u32> {
        let text = self.number()?;
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GiveUp);
        }
        text.parse().map_err(|_| GiveUp)
    }

    /// `true` or `false`.
    pub(crate) fn bool(&mut self) -> Fast<bool> {
        self.skip_space();
        let rest = self.bytes().get(self.at..).unwrap_or_default();
        if rest.starts_with(b"true") {
            self.at += 4;
            Ok(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Ok(false)
        } else {
            Err(GiveUp)
        }
    }

    /// A string, boolean or number; anything else gives up.
    pub(crate) fn scalar(&mut self) -> Fast<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Scalar::Str),
            b't' | b'f' => self.bool().map(Scalar::Bool),
            _ => self.number().map(Scalar::Number),
        }
    }

    /// Step into an object or array; `Ok(true)` when it is empty (and already left).
    fn enter(&mut self, open: u8, close: u8) -> Fast<bool> {
        self.eat(open)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        self.more_or_leave(close).map(|more| !more)
    }

    /// After an opening or an item: `Ok(true)` when more follows, `Ok(false)` once `close`
    /// has been passed.
    fn more_or_leave(&mut self, close: u8) -> Fast<bool> {
        let next = self.peek()?;
        if next == close {
            self.at += 1;
            self.depth -= 1;
            Ok(false)
        } else {
            Ok(true)
        }
    }

    /// After an item: a comma (more follows) or `close`.
    fn separator(&mut self, close: u8) -> Fast<bool> {
        if self.peek()? == b',' {
            self.at += 1;
            return Ok(true);
        }
        match self.more_or_leave(close)? {
            false => Ok(false),
            true => Err(GiveUp),
        }
    }

    /// An object: `field` is called with each key and must read (or skip) its value.
    pub(crate) fn object(&mut self, field: impl FnMut(&mut Self, &'a str) -> Fast<()>) -> Fast<()> {
        self.members(Pull::string, field)
    }

    /// An object whose keys are read by `key`.
    fn members(
        &mut self,
        key: fn(&mut Self) -> Fast<&'a str>,
        mut field: impl FnMut(&mut Self, &'a str) -> Fast<()>,
    ) -> Fast<()> {
        if self.enter(b'{', b'}')? {
            return Ok(());
        }
        loop {
            let key = key(self)?;
            self.eat(b':')?;
            field(self, key)?;
            if !self.separator(b'}')? {
                return Ok(());
            }
        }
    }

    /// An array, each item read by `item`.
    pub(crate) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Fast<()>) -> Fast<()> {
        if self.enter(b'[', b']')? {
            return Ok(());
        }
        loop {
            item(self)?;
            if !self.separator(b']')? {
                return Ok(());
            }
        }
    }

    /// An array read into a vector.
    pub(crate) fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Fast<T>) -> Fast<Vec<T>> {
        let mut items = Vec::new();
        self.array(|pull| {
            items.push(item(pull)?);
            Ok(())
        })?;
        Ok(items)
    }

    /// Any value, checked and passed over.
    pub(crate) fn skip(&mut self) -> Fast<()> {
        match self.peek()? {
            // Keys nobody reads may hold escapes.
            b'{' => self.members(
                |pull| pull.skip_string().map(|()| ""),
                |pull, _| pull.skip(),
            ),
            b'[' => self.array(Pull::skip),
            b'"' => self.skip_string(),
            b't' | b'f' => self.bool().map(drop),
            _ => self.number().map(drop),
        }
    }

    /// A string that may hold escapes; only checked, never decoded.
    fn skip_string(&mut self) -> Fast<()> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        loop {
            let rest = bytes.get(self.at..).ok_or(GiveUp)?;
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(GiveUp)?;
            if !plain(rest.get(..stop).ok_or(GiveUp)?) {
                return Err(GiveUp);
            }
            self.at += stop + 1;
            if rest.get(stop) == Some(&b'"') {
                return Ok(());
            }
            match bytes.get(self.at) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
                Some(b'u') => {
                    let hex = self.text.get(self.at + 1..self.at + 5).ok_or(GiveUp)?;
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(GiveUp);
                    }
                    // Surrogates must pair up; that is the exact reader's business.
                    let code = u16::from_str_radix(hex, 16).map_err(|_| GiveUp)?;
                    if (0xD800..=0xDFFF).contains(&code) {
                        return Err(GiveUp);
                    }
                    self.at += 5;
                }
                _ => return Err(GiveUp),
            }
        }
    }
}

/// A high bit in each byte of `word` that is a quote, a backslash or a control character.
fn special(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |w: u64| w.wrapping_sub(ONES) & !w & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero_in(word ^ (ONES * u64::from(b'"'))) | zero_in(word ^ (ONES * u64::from(b'\\'))) | control
}

/// No backslash and no control character: the bytes are the string.
fn plain(body: &[u8]) -> bool {
    // A fold, not `any`: without the early exit it runs a whole vector of bytes at a time.
    !body
        .iter()
        .fold(false, |bad, &byte| bad | (byte < 0x20) | (byte == b'\\'))
}

/// A checked number's text as an `f64`: short plain integers directly, the rest through
/// `serde_json`, so both readers round alike.
pub(crate) fn number_f64(text: &str) -> Fast<f64> {
    if text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) {
        // At most 15 digits: below 2^53, so exactly representable.
        #[allow(clippy::cast_precision_loss)]
        return text.parse::<u64>().map(|n| n as f64).map_err(|_| GiveUp);
    }
    Ok(serde_json::from_str(text)?)
}

/// Corrupting valid JSON at random, for the tests of both readers.
#[cfg(test)]
pub(crate) mod mutate {
    /// Bytes a corruption inserts: JSON's punctuation, literals' letters, escapes, digits.
    const ALPHABET: &[u8] = b"{}[]:,\"\\ \n\t0123456789-+.eEtrufalsnbx/dD8";

    /// A small deterministic generator (xorshift64*), so a failure replays.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        pub(crate) fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let wide = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            // Below n, so it fits a usize.
            (wide % n.max(1) as u64) as usize
        }
    }

    /// `text` with one to three bytes deleted, inserted, replaced or a short run copied.
    pub(crate) fn corrupt(text: &[u8], rng: &mut Rng) -> Vec<u8> {
        let mut bytes = text.to_vec();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(4) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                2 if at < bytes.len() => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                _ => {
                    let from = rng.below(bytes.len());
                    let run: Vec<u8> =
                        bytes[from..bytes.len().min(from + 1 + rng.below(16))].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, run);
                }
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use pretty_assertions::assert_eq;

    use super::mutate::{Rng, corrupt};
    use super::{Fast, Pull};

    fn read_all(text: &str) -> Fast<()> {
        let mut pull = Pull::new(text);
        pull.skip()?;
        pull.end()
    }

    /// JSON the pull reader leaves to the exact reader although `serde_json` takes it.
    fn left_alone(text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        lower.contains("null") || lower.contains("\\ud") || text.matches('[').count() > 100
    }

    const CORPUS: &[&str] = &[
        r#"{"a": [1, -2.5e3, 0, 1E+2, 0.125], "b": {"c": "d\"\\\/\b\f\n\r\t\u00e9", "e": true}}"#,
        r#"[{"url": "https://x/y", "valueQuantity": {"value": 25, "code": "mL"}}, false, "ü€"]"#,
        r#"  {"entry": [{"resource": {"resourceType": "Patient", "name": [{"given": ["A"]}]}}]}  "#,
        r#"{"n": 123456789012345678901234567890, "m": -0, "k": 2.5e-400, "z": []}"#,
        "[[[[[[[[[[1]]]]]]]]]]",
        r#""just a string""#,
    ];

    #[test]
    fn the_corpus_is_read_whole() {
        for text in CORPUS {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
            assert!(read_all(text).is_ok(), "{text}");
        }
    }

    /// The one rule: never accept what `serde_json` refuses. And the converse, so the reader
    /// is not merely timid: what `serde_json` takes, it takes too, but for what it leaves alone.
    #[test]
    fn corrupted_json_is_accepted_exactly_when_serde_json_accepts_it() {
        let mut rng = Rng::new(7);
        let (mut both, mut neither, mut left) = (0, 0, 0);
        for round in 0..100_000 {
            let base = CORPUS[round % CORPUS.len()];
            let bytes = corrupt(base.as_bytes(), &mut rng);
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let serde = serde_json::from_str::<serde_json::Value>(text).is_ok();
            match (read_all(text).is_ok(), serde) {
                (true, true) => both += 1,
                (false, false) => neither += 1,
                (true, false) => panic!("accepted what serde_json refuses: {text}"),
                (false, true) if left_alone(text) => left += 1,
                (false, true) => panic!("refused valid JSON it should read: {text}"),
            }
        }
        println!("{both} read by both, {neither} by neither, {left} left to serde_json");
        assert!(both > 10_000 && neither > 50_000, "{both} {neither} {left}");
    }

    #[test]
    fn what_it_leaves_to_the_exact_reader() {
        let refused = [
            r#"{"a": null}"#,
            r#"["\ud800"]"#,
            r#"["\ud83d\ude00"]"#,
            "[1e400]",
            &format!("{}1{}", "[".repeat(101), "]".repeat(101)),
            "\u{feff}{}",
            "{} x",
            r#"{"a": 1,}"#,
            "[01]",
        ];
        for text in refused {
            assert!(read_all(text).is_err(), "{text}");
        }
        let mut pull = Pull::new(r#"["a\"b"]"#);
        let escaped = pull.list(Pull::string).map_err(|_| "gave up");
        assert_eq!(escaped.err(), Some("gave up"));
    }
}
