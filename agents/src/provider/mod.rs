//! Model providers: any endpoint speaking OpenAI's Chat Completions or Responses API, and a
//! replay of recorded responses.

mod by_api;
mod chat_stream;
mod openai;
mod record;
mod replay;
mod responses;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use by_api::ByApi;
pub use openai::OpenAiProvider;
pub use record::RecordingProvider;
pub use replay::{Api, ReplayProvider};
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
    /// The API the asking agent wants ([`crate::Agent::api`]), for [`ByApi`] to route by;
    /// never sent.
    #[serde(skip)]
    pub api: Option<Api>,
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

/// A piece of a model's answer as it streams in, before the whole turn is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// Text the model is writing.
    Text(String),
    /// Arguments of a tool call the model is writing.
    ToolArguments {
        /// The call's id.
        call_id: String,
        /// The tool.
        name: String,
        /// The next characters of its arguments.
        delta: String,
    },
}

/// Where a streaming provider sends the [`Delta`]s of the answer it is reading.
pub type Deltas<'a> = &'a (dyn Fn(Delta) + Send + Sync);

/// Something that answers model requests.
pub trait Provider: Send + Sync {
    /// A name for logs and errors.
    fn name(&self) -> &str;
    /// Answer `request`.
    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>>;
    /// Answer `request`, sending the answer's pieces to `deltas` as they come; the whole
    /// answer is still the result. Providers that do not stream answer in one piece.
    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        deltas: Deltas<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse>> {
        let _ = deltas;
        self.complete(request)
    }
}
