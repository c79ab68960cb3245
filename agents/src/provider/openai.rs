use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::chat_stream::Assembly;
use super::{Deltas, ModelRequest, ModelResponse, Provider, Usage};
use crate::{AgentError, Message, Result};

/// Any OpenAI-compatible Chat Completions endpoint, through `async-openai`.
///
/// Retries are async-openai's own: 429 (except `insufficient_quota`, which is permanent), 5xx
/// and failed connections are retried 3 times, waiting 100 ms, 200 ms, 400 ms (or what a
/// `Retry-After` header says). Retrying again on top would multiply the attempts.
///
/// Streaming ([`OpenAiProvider::streaming`]) asks for server-sent chunks with
/// `stream_options.include_usage`, so a streamed turn still reports its tokens.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    base: String,
    streaming: bool,
}

/// Attempts async-openai makes for one request: the first and its 3 retries.
pub(super) const ATTEMPTS: u32 = 4;

impl OpenAiProvider {
    /// An endpoint at `base_url` (e.g. `https://api.openai.com/v1`) with `api_key`.
    pub fn new(base_url: &str, api_key: &str) -> OpenAiProvider {
        let config = OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(api_key);
        OpenAiProvider {
            client: Client::with_config(config),
            base: base_url.to_owned(),
            streaming: false,
        }
    }

    /// Whether [`Provider::stream`] asks for the answer streamed (`stream: true`); without,
    /// it asks for the whole answer at once, for servers that cannot stream.
    #[must_use]
    pub fn streaming(mut self, on: bool) -> OpenAiProvider {
        self.streaming = on;
        self
    }

    fn failed(&self, error: &OpenAIError) -> AgentError {
        let message = if retried(error) {
            format!("{error} (gave up after {ATTEMPTS} attempts)")
        } else {
            error.to_string()
        };
        AgentError::Provider {
            provider: self.base.clone(),
            message,
        }
    }

    async fn read_stream(
        &self,
        request: &ModelRequest,
        deltas: Deltas<'_>,
    ) -> Result<ModelResponse> {
        let broken = |message: String| AgentError::Provider {
            provider: self.base.clone(),
            message,
        };
        let mut body = chat_body(request).map_err(|e| broken(e.to_string()))?;
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let mut chunks = self
            .client
            .chat()
            .create_stream_byot::<Value, Value>(body)
            .await
            .map_err(|e| self.failed(&e))?;
        let mut assembly = Assembly::default();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| self.failed(&e))?;
            assembly.take(&chunk, deltas).map_err(broken)?;
        }
        assembly.finish().map_err(broken)
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// The Chat Completions body for `request`. A turn's Responses API output items (its
/// reasoning) have no place in Chat, so they stay out.
pub(crate) fn chat_body(request: &ModelRequest) -> serde_json::Result<Value> {
    let mut body = serde_json::to_value(request)?;
    for message in body["messages"].as_array_mut().into_iter().flatten() {
        if let Some(fields) = message.as_object_mut() {
            fields.remove("responses_output");
        }
    }
    Ok(body)
}

/// Whether async-openai already retried this error before giving it to us.
pub(super) fn retried(error: &OpenAIError) -> bool {
    match error {
        OpenAIError::ApiError(api) => {
            api.status_code.is_server_error()
                || (api.status_code.as_u16() == 429
                    && api.api_error.r#type.as_deref() != Some("insufficient_quota"))
        }
        OpenAIError::Reqwest(e) => e.is_connect(),
        _ => false,
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.base
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let failed = |message: String| AgentError::Provider {
                provider: self.base.clone(),
                message,
            };
            let body = chat_body(request).map_err(|e| failed(e.to_string()))?;
            let completion: Completion = self
                .client
                .chat()
                .create_byot(body)
                .await
                .map_err(|e| self.failed(&e))?;
            let Some(choice) = completion.choices.into_iter().next() else {
                return Err(failed("the response has no choices".into()));
            };
            if !matches!(choice.message, Message::Assistant { .. }) {
                return Err(failed(
                    "the response's message is not from the assistant".into(),
                ));
            }
            Ok(ModelResponse {
                message: choice.message,
                finish_reason: choice.finish_reason,
                usage: completion.usage,
            })
        })
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        deltas: Deltas<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse>> {
        if !self.streaming {
            return self.complete(request);
        }
        Box::pin(self.read_stream(request, deltas))
    }
}
