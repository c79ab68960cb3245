//! Reading a prescription: detect the format, map FHIR onto the simple model, and refuse what
//! cannot be read with the place it went wrong.

use std::fmt;

use serde_json::Value;

use crate::model::Prescription;
use crate::{fhir, fhir_fast};

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
    // Both formats are read straight from the bytes (a JSON tree first made a check three
    // to five times slower); input that fails is read again through the tree, which names
    // the place. Text that mentions `resourceType` anywhere is tried as FHIR first.
    if memchr::memmem::find(bytes, b"\"resourceType\"").is_some() {
        if let Ok(rx) = fhir_fast::parse(bytes) {
            return Ok((rx, Format::Fhir));
        }
    } else {
        // Paths are tracked only once plain reading has failed: tracking costs a fifth.
        if let Ok(rx) = serde_json::from_slice::<Prescription>(bytes) {
            return Ok((rx, Format::Simple));
        }
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
    // The tree below keeps the last of two equal keys: a prescription naming `quantity` twice
    // would be read as whichever came last. Refuse it, naming the key and where.
    if let Some((path, key)) = baton_kit::duplicate_key(bytes) {
        return Err(InputError::new(
            path,
            format!(
                "the key `{key}` appears twice in the same object; which one is meant is ambiguous"
            ),
        ));
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
    read_value(value)
}

/// Read a JSON value (either format): a value with `resourceType` is FHIR.
pub fn parse_value(value: Value) -> Result<(Prescription, Format), InputError> {
    if is_fhir(&value)
        && let Ok(bytes) = serde_json::to_vec(&value)
        && let Ok(rx) = fhir_fast::parse(&bytes)
    {
        return Ok((rx, Format::Fhir));
    }
    read_value(value)
}

fn is_fhir(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|object| object.contains_key("resourceType"))
}

/// The exact reader: every input error with its path.
fn read_value(value: Value) -> Result<(Prescription, Format), InputError> {
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
pub(crate) use baton_kit::json_kind as kind_of;
