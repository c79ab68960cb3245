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
