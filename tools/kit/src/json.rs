//! JSON the way a hostile input needs it read: a key given twice in one object is ambiguous
//! (serde_json keeps the last), so it is found and named rather than resolved silently.

use std::fmt;

use serde_json::Value;

/// A JSON value's kind, as messages name it (`a string`, `an array`, …).
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first key that appears twice in one object of `bytes`, with the path of that object
/// (`$` for the top level). `None` for JSON without one, and for text that is not JSON (the
/// tree reader names that).
pub fn duplicate_key(bytes: &[u8]) -> Option<(String, String)> {
    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::de::DeserializeSeed::deserialize(
        DuplicateWalk {
            path: String::new(),
            found: &mut found,
        },
        &mut deserializer,
    );
    found
}

/// One JSON value, walked for duplicate keys; stops at the first.
struct DuplicateWalk<'a> {
    path: String,
    found: &'a mut Option<(String, String)>,
}

impl DuplicateWalk<'_> {
    fn shown(&self) -> String {
        if self.path.is_empty() {
            "$".to_owned()
        } else {
            self.path.clone()
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateWalk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateWalk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let element = DuplicateWalk {
                path: format!("{}[{index}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                *self.found = Some((self.shown(), key));
                return Err(serde::de::Error::custom("duplicate key"));
            }
            let path = if self.path.is_empty() {
                key
            } else {
                format!("{}.{key}", self.path)
            };
            map.next_value_seed(DuplicateWalk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) with `…` when cut: for
/// messages that may quote what a caller sent, before they are kept or sent back.
pub fn clip(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text.truncate(cut);
    text.push('…');
}
