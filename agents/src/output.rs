//! An agent's output schema: asked of the model natively (structured outputs), then checked in
//! full against the answer, whatever the model or the server claims to have enforced.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The answer's shape, as asked of the model (Chat Completions' `response_format`; the
/// Responses API's `text.format` carries the same three fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// Always `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The schema.
    pub json_schema: JsonSchemaFormat,
}

/// A named JSON Schema the model's answer must fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// `<agent>_output`.
    pub name: String,
    /// The agent's output schema.
    pub schema: Value,
    /// Whether the server is asked to enforce it exactly (OpenAI's strict mode); only for
    /// schemas strict mode accepts, see [`strict_allowed`].
    pub strict: bool,
}

impl ResponseFormat {
    /// The format asking for agent `agent`'s `schema`.
    pub fn for_agent(agent: &str, schema: &Value) -> ResponseFormat {
        ResponseFormat {
            kind: "json_schema".into(),
            json_schema: JsonSchemaFormat {
                // Names are `^[a-zA-Z0-9_-]{1,64}$`; agent names are a subset.
                name: format!("{}_output", agent.chars().take(57).collect::<String>()),
                schema: schema.clone(),
                strict: strict_allowed(schema),
            },
        }
    }
}

/// Keywords OpenAI's strict mode accepts; a schema using any other is sent non-strict (and
/// still checked in full when the answer comes).
const STRICT_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "description",
    "title",
    "$defs",
    "$ref",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
];

/// Whether strict mode can take `schema`: only the keywords it knows, and every object closed
/// (`additionalProperties: false`) with all its properties required.
pub fn strict_allowed(schema: &Value) -> bool {
    let Some(node) = schema.as_object() else {
        return schema.is_boolean();
    };
    if node.keys().any(|k| !STRICT_KEYWORDS.contains(&k.as_str())) {
        return false;
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = node
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if node.get("additionalProperties") != Some(&Value::Bool(false))
            || properties.keys().any(|k| !required.contains(&k.as_str()))
            || !properties.values().all(strict_allowed)
        {
            return false;
        }
    } else if node.get("type").and_then(Value::as_str) == Some("object") {
        return false;
    }
    let items = match node.get("items") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(item) => vec![item],
        None => Vec::new(),
    };
    let any_of = node
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let defs = node
        .get("$defs")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|d| d.values());
    items
        .into_iter()
        .chain(any_of)
        .chain(defs)
        .all(strict_allowed)
}

/// `schema` compiled, or what is wrong with it.
pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema)
        .map_err(|e| format!("output_schema is not a JSON Schema: {e}"))
}

/// Check `text` (the final answer) against `schema`: the JSON object it holds, or every place
/// it breaks the schema, each with its JSON pointer (at most 5).
pub(crate) fn check(schema: &Value, text: &str) -> Result<Value, String> {
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let value: Value = serde_json::from_str(trimmed).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".into());
    }
    let validator = compile(schema)?;
    let problems: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|error| {
            let at = error.instance_path().to_string();
            format!("at `{}`: {error}", if at.is_empty() { "/" } else { &at })
        })
        .collect();
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems.join("; "))
    }
}
