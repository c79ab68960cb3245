//! Model providers: any endpoint speaking OpenAI's Chat Completions or Responses API, and a
//! replay of recorded responses.

mod openai;
mod replay;
mod responses;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use openai::OpenAiProvider;
pub use replay::ReplayProvider;
pub use responses::ResponsesProvider;

use crate::{Message, ResponseFormat, Result, ToolSpec};

/// A Chat Completions request, as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// Model name.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The shape the final answer must have, for an agent with an output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

/// The model's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResponse {
    /// The assistant message (text and/or tool calls).
    pub message: Message,
    /// Why it stopped (`stop`, `tool_calls`, `length`…).
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Tokens used, when the endpoint says.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// Something that answers model requests.
pub trait Provider: Send + Sync {
    /// A name for logs and errors.
    fn name(&self) -> &str;
    /// Answer `request`.
    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>>;
}
