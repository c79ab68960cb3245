use schemars::JsonSchema;
use schemars::generate::SchemaSettings;

/// A JSON object, the shape of every MCP tool schema.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Which side of serde a schema describes: what a tool accepts, or what it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// The JSON Schema (draft 2020-12) of `T`, as sent to clients.
///
/// Subschemas are inlined and the `$schema` and root `title` keys dropped (and, for inputs, the
/// root description): many MCP clients
/// (Codex among them) translate tool schemas into model function definitions that do not
/// follow `$ref`, and a root title repeating the Rust type name only spends the model's context.
pub fn schema_for<T: JsonSchema>() -> JsonObject {
    generate::<T>(Direction::Input)
}

pub(crate) fn generate<T: JsonSchema>(direction: Direction) -> JsonObject {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
        s.meta_schema = None;
    });
    let settings = match direction {
        Direction::Input => settings.for_deserialize(),
        Direction::Output => settings.for_serialize(),
    };
    let schema = settings.into_generator().into_root_schema_for::<T>();
    let mut object = match schema.to_value() {
        serde_json::Value::Object(object) => object,
        // `true`/`false` schemas: an empty object accepts anything, which is what `true` says.
        other => {
            let mut object = JsonObject::new();
            if other == serde_json::Value::Bool(false) {
                object.insert("not".into(), serde_json::json!({}));
            }
            object
        }
    };
    object.remove("title");
    for value in object.values_mut() {
        standard_formats(value);
    }
    if direction == Direction::Input {
        // The tool's description already says what the arguments are for.
        object.remove("description");
    }
    // Function-calling front ends (OpenAI's among them) reject an object schema without
    // `properties`, which schemars omits for an argument struct with no fields.
    if object.get("type").and_then(serde_json::Value::as_str) == Some("object") {
        object
            .entry("properties")
            .or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
    }
    object
}

/// `{"type": ["string", "null"], …}` as `{"anyOf": [{"type": "string", …}, {"type": "null"}]}`:
/// the same contract, in the spelling clients that map schemas onto a single-`type` dialect
/// (Gemini's OpenAPI subset, the MCP Inspector's portability check) accept. Annotations stay
/// on the outside; validation keywords go with the non-null branch.
fn split_nullable(map: &mut JsonObject) {
    const ANNOTATIONS: [&str; 7] = [
        "description",
        "title",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    ];
    let Some(serde_json::Value::Array(types)) = map.get("type") else {
        return;
    };
    let null = serde_json::Value::String("null".into());
    if types.len() != 2 || !types.contains(&null) || map.contains_key("anyOf") {
        return;
    }
    let Some(other) = types.iter().find(|t| **t != null).cloned() else {
        return;
    };
    let mut branch = JsonObject::new();
    branch.insert("type".into(), other);
    let moved: Vec<String> = map
        .keys()
        .filter(|key| *key != "type" && !ANNOTATIONS.contains(&key.as_str()))
        .cloned()
        .collect();
    for key in moved {
        if let Some(value) = map.remove(&key) {
            branch.insert(key, value);
        }
    }
    map.remove("type");
    map.insert(
        "anyOf".into(),
        serde_json::json!([branch, { "type": "null" }]),
    );
}

/// Replace schemars' integer and float formats (`uint32`, `int64`, `double` …), which are not
/// JSON Schema formats — strict validators (AJV, so the MCP Inspector) warn about each — by
/// the bounds they stand for (`minimum`/`maximum`), keeping any tighter bound already there.
fn standard_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let bounds: Option<(Option<i64>, Option<u64>)> =
                match map.get("format").and_then(serde_json::Value::as_str) {
                    Some("uint8") => Some((Some(0), Some(u64::from(u8::MAX)))),
                    Some("uint16") => Some((Some(0), Some(u64::from(u16::MAX)))),
                    Some("uint32") => Some((Some(0), Some(u64::from(u32::MAX)))),
                    Some("uint" | "uint64" | "uint128" | "usize") => Some((Some(0), None)),
                    Some("int8") => Some((Some(i64::from(i8::MIN)), Some(i8::MAX as u64))),
                    Some("int16") => Some((Some(i64::from(i16::MIN)), Some(i16::MAX as u64))),
                    Some("int32") => Some((Some(i64::from(i32::MIN)), Some(i32::MAX as u64))),
                    Some("int" | "int64" | "int128" | "isize" | "float" | "double") => {
                        Some((None, None))
                    }
                    _ => None,
                };
            if let Some((low, high)) = bounds {
                map.remove("format");
                if let Some(low) = low {
                    let kept = map.get("minimum").and_then(serde_json::Value::as_f64);
                    if kept.is_none_or(|kept| kept < low as f64) {
                        map.insert("minimum".into(), low.into());
                    }
                }
                if let Some(high) = high {
                    let kept = map.get("maximum").and_then(serde_json::Value::as_f64);
                    if kept.is_none_or(|kept| kept > high as f64) {
                        map.insert("maximum".into(), high.into());
                    }
                }
            }
            split_nullable(map);
            for nested in map.values_mut() {
                standard_formats(nested);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(standard_formats),
        _ => {}
    }
}

/// A free-form JSON object: the schema of a `serde_json::Value` field that holds one
/// (`#[schemars(schema_with = "baton_kit::any_object")]`). Schema linters and strict function
/// dialects reject a bare `true`/`{}` schema.
pub fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "object", "additionalProperties": true })
}

/// [`any_object`], or `null`.
pub fn any_object_or_null(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "anyOf": [
        { "type": "object", "additionalProperties": true },
        { "type": "null" }
    ] })
}

/// A list of [`any_object`]s.
pub fn any_objects(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": { "type": "object", "additionalProperties": true } })
}

/// A JSON object, or the same as JSON text.
pub fn object_or_text(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "anyOf": [
        { "type": "object", "additionalProperties": true },
        { "type": "string" }
    ] })
}

/// A list of [`object_or_text`]s.
pub fn objects_or_texts(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": { "anyOf": [
        { "type": "object", "additionalProperties": true },
        { "type": "string" }
    ] } })
}
