use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::{ModelRequest, ModelResponse, Provider};
use crate::{AgentError, Result};

/// A cassette: recorded responses, each with (part of) the request body it answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cassette {
    interactions: Vec<Interaction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Interaction {
    /// What the request must contain: every member of an object must match, an array
    /// matches the same number of last elements of the request's array (so `messages` can
    /// name just the latest ones), and a string ending in `*` matches any string it begins.
    request: Value,
    /// The response to give.
    response: ModelResponse,
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
    interactions: Vec<Interaction>,
    used: Mutex<Vec<bool>>,
}

/// Whether `pattern` is contained in `actual`, as [`Interaction::request`] says.
fn matches(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|v| matches(value, v))),
        (Value::Array(want), Value::Array(have)) => {
            want.len() <= have.len()
                && want
                    .iter()
                    .zip(&have[have.len() - want.len()..])
                    .all(|(w, h)| matches(w, h))
        }
        (Value::String(want), Value::String(have)) => match want.strip_suffix('*') {
            Some(prefix) => have.starts_with(prefix),
            None => want == have,
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

impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let body = serde_json::to_value(request).map_err(|e| AgentError::Provider {
                provider: self.name.clone(),
                message: e.to_string(),
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
                    .find(|(at, interaction)| !used[*at] && matches(&interaction.request, &body));
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
            if delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
            }
            Ok(response)
        })
    }
}
