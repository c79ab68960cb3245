//! The conversation as OpenAI's Chat Completions wire format has it, which every
//! OpenAI-compatible endpoint (and so the replay cassettes) speaks.

use serde::{Deserialize, Serialize};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// The agent's instructions.
    System {
        /// Text.
        content: String,
    },
    /// What the agent is asked.
    User {
        /// Text.
        content: String,
    },
    /// What the model said: text, tool calls, or both.
    Assistant {
        /// Text, when any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// Tools it wants called.
        #[serde(
            default,
            skip_serializing_if = "Vec::is_empty",
            deserialize_with = "null_as_empty"
        )]
        tool_calls: Vec<ToolCall>,
        /// Why the model declined to answer in the asked-for shape (structured outputs).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        /// The turn's output items as a Responses API server gave them, kept when they hold
        /// reasoning: the server takes reasoning back only with the items that followed it,
        /// ids and order intact, so a whole conversation sends these in place of the fields
        /// above. Chat Completions never sees them (a name no Chat server sends, so a Chat
        /// reply's own `reasoning` text is never mistaken for them).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        responses_output: Vec<serde_json::Value>,
    },
    /// A tool's result, answering one tool call.
    Tool {
        /// The call it answers.
        tool_call_id: String,
        /// The result (JSON text, or an error message).
        content: String,
    },
}

/// A tool call the model asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Its id, echoed in the result.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function")]
    pub kind: String,
    /// Which function, with which arguments.
    pub function: FunctionCall,
}

/// Endpoints send `"tool_calls": null` as often as they leave it out.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ToolCall>, D::Error> {
    Ok(Option::<Vec<ToolCall>>::deserialize(d)?.unwrap_or_default())
}

fn function() -> String {
    "function".into()
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text (as the model wrote them; they may not parse).
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionSpec,
}

/// A function's name, description and JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// Name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: serde_json::Value,
}

impl ToolSpec {
    /// A function tool.
    pub fn function(name: &str, description: &str, parameters: serde_json::Value) -> ToolSpec {
        ToolSpec {
            kind: "function".into(),
            function: FunctionSpec {
                name: name.into(),
                description: description.into(),
                parameters,
            },
        }
    }
}
