use std::sync::Arc;

use futures::future::BoxFuture;

use super::replay::Api;
use super::{Deltas, ModelRequest, ModelResponse, Provider};
use crate::Result;

/// One endpoint through both APIs: each request goes to the provider of the API its agent
/// asks for ([`ModelRequest::api`]), or of the configured one when the agent names none.
/// Lets a team keep Chat Completions and give one agent a model served only by the
/// Responses API.
pub struct ByApi {
    default: Api,
    chat: Arc<dyn Provider>,
    responses: Arc<dyn Provider>,
}

impl std::fmt::Debug for ByApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByApi")
            .field("default", &self.default)
            .field("chat", &self.chat.name())
            .field("responses", &self.responses.name())
            .finish()
    }
}

impl ByApi {
    /// `chat` and `responses` for the agents asking for each, `default`'s for the rest.
    pub fn new(default: Api, chat: Arc<dyn Provider>, responses: Arc<dyn Provider>) -> ByApi {
        ByApi {
            default,
            chat,
            responses,
        }
    }

    fn pick(&self, api: Option<Api>) -> &dyn Provider {
        match api.unwrap_or(self.default) {
            Api::Chat => self.chat.as_ref(),
            Api::Responses => self.responses.as_ref(),
        }
    }
}

impl Provider for ByApi {
    fn name(&self) -> &str {
        self.pick(None).name()
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        self.pick(request.api).complete(request)
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        deltas: Deltas<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse>> {
        self.pick(request.api).stream(request, deltas)
    }
}
