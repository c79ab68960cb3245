use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ModelRequest, ModelResponse, Provider};
use crate::{AgentError, Result};

/// A cassette: recorded responses, each with (part of) the request body it answers, in the
/// wire format of one API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cassette {
    /// Which API's bodies the interactions hold (default `chat`).
    #[serde(default)]
    api: Api,
    /// The cassette holds the model's words verbatim (a recording): `{{…}}` in its
    /// responses is text, not a placeholder, and `*` ending a request's string is a star.
    #[serde(default)]
    literal: bool,
    interactions: Vec<Interaction>,
}

/// The model APIs a cassette can hold, and a recording be written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Chat Completions: requests as `POST /chat/completions` bodies; responses as
    /// `{message, finish_reason, usage}`.
    #[default]
    Chat,
    /// The Responses API: requests as `POST /responses` bodies; responses as `{output,
    /// usage}` (the `response` of `response.completed`).
    Responses,
}

impl Api {
    /// `request` as this API's request body.
    pub(crate) fn body(self, request: &ModelRequest) -> Result<Value, String> {
        match self {
            Api::Chat => super::openai::chat_body(request).map_err(|e| e.to_string()),
            Api::Responses => Ok(super::responses::body(request)),
        }
    }

    /// `response` as this API's wire format keeps it in a cassette.
    pub(crate) fn recorded(self, response: &ModelResponse) -> Result<Value, String> {
        match self {
            Api::Chat => serde_json::to_value(response).map_err(|e| e.to_string()),
            Api::Responses => Ok(super::responses::wire(response)),
        }
    }

    /// The response a recorded body (already filled in) holds.
    pub(crate) fn response(self, recorded: Value) -> Result<ModelResponse, String> {
        match self {
            Api::Chat => serde_json::from_value(recorded).map_err(|e| e.to_string()),
            Api::Responses => {
                let items = recorded["output"]
                    .as_array()
                    .ok_or("a recorded response has no `output` array")?;
                super::responses::parse(&recorded, items)
            }
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interaction {
    /// What the request must contain: every member of an object must match, an array
    /// matches the same number of last elements of the request's array (so `messages` can
    /// name just the latest ones), and a string ending in `*` matches any string it begins.
    request: Value,
    /// The response to give, in the cassette's API.
    response: Value,
    /// Wait this long before answering (a slow model, for demos and crash tests).
    #[serde(default)]
    delay_ms: u64,
}

/// Plays recorded model responses: tests, demos and evals with no key and no network. Each
/// request is answered by the first unused interaction whose `request` matches its body, so
/// concurrent agents may ask in any order.
#[derive(Debug)]
pub struct ReplayProvider {
    name: String,
    api: Api,
    literal: bool,
    interactions: Vec<Interaction>,
    used: Mutex<Vec<bool>>,
}

/// Whether `pattern` is contained in `actual`, as [`Interaction::request`] says; in a
/// `literal` cassette a string ending in `*` is only itself.
fn matches(pattern: &Value, actual: &Value, literal: bool) -> bool {
    match (pattern, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|v| matches(value, v, literal))),
        (Value::Array(want), Value::Array(have)) => {
            want.len() <= have.len()
                && want
                    .iter()
                    .zip(&have[have.len() - want.len()..])
                    .all(|(w, h)| matches(w, h, literal))
        }
        (Value::String(want), Value::String(have)) => match want.strip_suffix('*') {
            Some(prefix) if !literal => have.starts_with(prefix),
            Some(_) | None => want == have,
        },
        (want, have) => want == have,
    }
}

impl ReplayProvider {
    /// Load the cassette at `path`.
    pub fn load(path: &Path) -> Result<ReplayProvider> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::Io {
            path: path.to_owned(),
            source,
        })?;
        let cassette: Cassette =
            serde_json::from_str(&text).map_err(|e| AgentError::Definition {
                agent: path.display().to_string(),
                message: format!("not a cassette: {e}"),
            })?;
        let used = Mutex::new(vec![false; cassette.interactions.len()]);
        Ok(ReplayProvider {
            name: path.display().to_string(),
            api: cassette.api,
            literal: cassette.literal,
            interactions: cassette.interactions,
            used,
        })
    }

    /// Interactions not played yet (a finished scenario should leave none).
    pub fn unused(&self) -> usize {
        self.used
            .lock()
            .map_or(0, |used| used.iter().filter(|u| !**u).count())
    }

    /// The cassette's path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.name)
    }
}

impl ReplayProvider {
    fn broken(&self, error: impl std::fmt::Display) -> AgentError {
        AgentError::Definition {
            agent: self.name.clone(),
            message: error.to_string(),
        }
    }
}

/// Fill the `{{…}}` placeholders of a recorded response from the request it answers:
/// `{{user}}` is the latest user message; `{{CALL_ID:/json/pointer}}` is a value from the
/// result of tool call `CALL_ID` in the conversation (ids and paths only known at run time,
/// such as a task's alias or a worktree's path).
fn fill(value: &Value, request: &ModelRequest) -> std::result::Result<Value, String> {
    Ok(match value {
        Value::String(text) => Value::String(fill_text(text, request)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| fill(v, request))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| fill(v, request).map(|v| (k.clone(), v)))
                .collect::<std::result::Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn fill_text(text: &str, request: &ModelRequest) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed `{{{{` in `{text}`"))?;
        out.push_str(&resolve(&after[..end], request)?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(placeholder: &str, request: &ModelRequest) -> std::result::Result<String, String> {
    use crate::Message;
    if placeholder == "user" {
        return request
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User { content } => Some(content.clone()),
                Message::System { .. } | Message::Assistant { .. } | Message::Tool { .. } => None,
            })
            .ok_or_else(|| "`{{user}}`: the request has no user message".to_owned());
    }
    let (call, pointer) = placeholder.split_once(':').ok_or_else(|| {
        format!("`{{{{{placeholder}}}}}` is neither `user` nor `CALL_ID:/pointer`")
    })?;
    let content = request
        .messages
        .iter()
        .find_map(|m| match m {
            Message::Tool {
                tool_call_id,
                content,
            } if tool_call_id == call => Some(content),
            Message::System { .. }
            | Message::User { .. }
            | Message::Assistant { .. }
            | Message::Tool { .. } => None,
        })
        .ok_or_else(|| {
            format!("`{{{{{placeholder}}}}}`: no result of tool call `{call}` in the request")
        })?;
    let parsed: Value = serde_json::from_str(content).map_err(|_| {
        format!("`{{{{{placeholder}}}}}`: the result of `{call}` is not JSON: {content}")
    })?;
    match parsed.pointer(pointer) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!(
            "`{{{{{placeholder}}}}}`: the result of `{call}` has nothing at `{pointer}`: {content}"
        )),
    }
}

impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let body = self
                .api
                .body(request)
                .map_err(|message| AgentError::Provider {
                    provider: self.name.clone(),
                    message,
                })?;
            let found = {
                let mut used = self.used.lock().map_err(|_| AgentError::Provider {
                    provider: self.name.clone(),
                    message: "the cassette's state is poisoned".into(),
                })?;
                let found = self
                    .interactions
                    .iter()
                    .enumerate()
                    .find(|(at, interaction)| {
                        !used[*at] && matches(&interaction.request, &body, self.literal)
                    });
                if let Some((at, _)) = found {
                    used[at] = true;
                }
                found.map(|(_, interaction)| (interaction.response.clone(), interaction.delay_ms))
            };
            let Some((response, delay_ms)) = found else {
                let last = request
                    .messages
                    .last()
                    .and_then(|m| serde_json::to_string(m).ok())
                    .unwrap_or_default();
                return Err(AgentError::NoRecording {
                    cassette: self.name.clone(),
                    detail: format!(
                        "model `{}`, {} message(s), the last: {}",
                        request.model,
                        request.messages.len(),
                        last.chars().take(300).collect::<String>()
                    ),
                });
            };
            let response = if self.literal {
                response
            } else {
                fill(&response, request).map_err(|e| self.broken(e))?
            };
            let response = self.api.response(response).map_err(|e| self.broken(e))?;
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            Ok(response)
        })
    }
}
