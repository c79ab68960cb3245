//! Files in and out of a call, for callers that share no disk with Baton: an argument naming
//! a file the tool reads also takes an artifact URI (`baton://artifacts/<sha256>`) or inline
//! content (`data:<media type>;base64,…`); an argument naming where the tool writes may be
//! left out, and the files then go to Baton's store and come back by URI. The gate does the
//! moving (it owns the store); this module says which arguments take part and how that reads
//! in the schemas a client sees.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::JsonObject;

/// An argument naming where a tool writes files, and the name its output gets when the
/// caller leaves it out (a name ending in `/` is a folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputArg {
    /// JSON pointer to the argument (`/out_dir`).
    pub pointer: String,
    /// File or folder name used in the call's private folder (`stems/`, `cutout.png`).
    pub name: String,
    /// Whether the tool needs the argument: left out, Baton keeps the files in its store.
    /// An optional one (a spectrogram image) goes to the store only when given as
    /// `baton://artifacts/`; left out, the tool writes no file.
    pub required: bool,
}

impl OutputArg {
    /// Whether the output is a folder of files rather than one file.
    pub fn is_folder(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// A file a call wrote, kept in Baton's store: what `artifacts` in a result lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeptFile {
    /// The file's name (`harmonic.wav`).
    pub name: String,
    /// Where it was written on Baton's machine (absent when it lives only in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where to read it: MCP `resources/read`, or `GET /v1/artifacts/<sha256>`.
    pub uri: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub media_type: String,
}

const FILE_NOTE: &str = " Also takes an artifact URI `baton://artifacts/<sha256>` (upload the \
    bytes with `POST /v1/artifacts`) or small inline content `data:<media type>;base64,<…>`.";

const OUTPUT_NOTE: &str = " Leave it out (or give `baton://artifacts/`) and Baton keeps the \
    output in its store and answers each file's artifact URI.";

const OPTIONAL_OUTPUT_NOTE: &str = " Give `baton://artifacts/` and Baton keeps the file in its \
    store and answers its artifact URI.";

/// The input schema with the file and output arguments described as such and the output
/// arguments no longer required; and the output arguments.
pub(crate) fn input_schema(
    mut schema: JsonObject,
    file_args: &[&str],
    outputs: &[(&str, &str)],
) -> (JsonObject, Vec<OutputArg>) {
    for pointer in file_args {
        append_description(&mut schema, pointer, FILE_NOTE);
    }
    let mut args = Vec::new();
    for (pointer, file) in outputs {
        let name = pointer.trim_start_matches('/');
        let required = match schema.get_mut("required") {
            Some(Value::Array(required)) => {
                let before = required.len();
                required.retain(|r| r.as_str() != Some(name));
                required.len() < before
            }
            _ => false,
        };
        let note = if required {
            OUTPUT_NOTE
        } else {
            OPTIONAL_OUTPUT_NOTE
        };
        append_description(&mut schema, pointer, note);
        args.push(OutputArg {
            pointer: (*pointer).to_owned(),
            name: (*file).to_owned(),
            required,
        });
    }
    if schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        schema.remove("required");
    }
    (schema, args)
}

/// The output schema with the `artifacts` the gate adds to a result of a tool that writes.
pub(crate) fn output_schema(mut schema: JsonObject) -> JsonObject {
    let mut kept = crate::schema::schema_for::<KeptFile>();
    kept.remove("description");
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.insert(
            "artifacts".into(),
            serde_json::json!({
                "description": "Every file the call wrote, kept in Baton's store.",
                "type": "array",
                "items": kept,
            }),
        );
    }
    schema
}

fn append_description(schema: &mut JsonObject, pointer: &str, note: &str) {
    let name = pointer.trim_start_matches('/');
    let Some(Value::Object(property)) = schema
        .get_mut("properties")
        .and_then(|p| p.as_object_mut())
        .and_then(|p| p.get_mut(name))
    else {
        return;
    };
    let text = property
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    property.insert("description".into(), Value::String(format!("{text}{note}")));
}
