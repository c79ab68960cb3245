use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use futures::future::BoxFuture;
use serde::Deserialize;

use super::{ModelRequest, ModelResponse, Provider, Usage};
use crate::{AgentError, Message, Result};

/// Any OpenAI-compatible Chat Completions endpoint, through `async-openai`.
///
/// Retries are async-openai's own: 429 (except `insufficient_quota`, which is permanent), 5xx
/// and failed connections are retried 3 times, waiting 100 ms, 200 ms, 400 ms (or what a
/// `Retry-After` header says). Retrying again on top would multiply the attempts.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: Client<OpenAIConfig>,
    base: String,
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
        }
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
            let completion: Completion =
                self.client
                    .chat()
                    .create_byot(request)
                    .await
                    .map_err(|error| {
                        if retried(&error) {
                            failed(format!("{error} (gave up after {ATTEMPTS} attempts)"))
                        } else {
                            failed(error.to_string())
                        }
                    })?;
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
}
