//! Reading a prescription: detect the format, map FHIR onto the simple model, and refuse what
//! cannot be read with the place it went wrong.

use std::fmt;

use serde_json::Value;

use crate::fhir;
use crate::model::Prescription;

/// Input that cannot be read as a prescription: reported as one `E-INPUT` finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Where (`patient.dob`, `Bundle.entry[2].resource.authoredOn`, `$` for the whole input).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An input error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Which format an input was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Baton's simple JSON.
    Simple,
    /// A FHIR R4 Bundle.
    Fhir,
}

/// Read JSON text (either format).
pub fn parse_bytes(bytes: &[u8]) -> Result<(Prescription, Format), InputError> {
    // The simple format is read straight from the bytes: building a JSON tree first tripled
    // the cost of a check. Text that mentions `resourceType` anywhere takes the tree path,
    // which tells FHIR from simple by the top-level key.
    if !contains(bytes, b"\"resourceType\"") {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, Prescription>(&mut deserializer) {
            Ok(rx) if deserializer.end().is_ok() => return Ok((rx, Format::Simple)),
            // Syntax errors, trailing text and non-objects are described from the tree
            // below, with the same messages as any other input.
            Ok(_) => {}
            Err(error) if error.inner().is_data() && error.path().to_string() != "." => {
                let path = error.path().to_string();
                return Err(InputError::new(path, error.into_inner().to_string()));
            }
            Err(_) => {}
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|error| {
        InputError::new(
            "$",
            format!(
                "not valid JSON (line {}, column {}): {error}",
                error.line(),
                error.column()
            ),
        )
    })?;
    parse_value(value)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Read a JSON value (either format): a value with `resourceType` is FHIR.
pub fn parse_value(value: Value) -> Result<(Prescription, Format), InputError> {
    let Value::Object(object) = &value else {
        return Err(InputError::new(
            "$",
            format!(
                "expected a JSON object (a prescription or a FHIR Bundle), got {}",
                kind_of(&value)
            ),
        ));
    };
    if object.contains_key("resourceType") {
        return fhir::parse(&value).map(|rx| (rx, Format::Fhir));
    }
    let prescription: Prescription = serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = if path == "." { "$".to_owned() } else { path };
        InputError::new(path, error.into_inner().to_string())
    })?;
    Ok((prescription, Format::Simple))
}

/// A JSON value's kind, for messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
