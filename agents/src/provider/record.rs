use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::replay::Api;
use super::{Deltas, ModelRequest, ModelResponse, Provider};
use crate::{AgentError, Result};

/// A provider that answers through another and writes each answer to a cassette as it comes,
/// in one API's wire format, for [`super::ReplayProvider`] to play back.
///
/// Each interaction is keyed by the request's last message (a replay matches the same
/// suffix, in order), and for the Responses API by the agent's instructions too, so a replay
/// follows the recorded conversation without being tied to every byte of its history or to
/// the model's name. Chat's instructions are its first message, which a key of the last
/// cannot hold: two agents handed the same text at once may be answered in either order. The model's words are kept verbatim: the cassette is
/// marked `literal`, so no `{{…}}` in them is read as a placeholder. The file is rewritten
/// whole after each answer (written beside it, then renamed over it), so a run that stops half
/// way leaves a valid cassette of the turns it had.
pub struct RecordingProvider {
    inner: Arc<dyn Provider>,
    api: Api,
    path: PathBuf,
    interactions: Mutex<Vec<Value>>,
}

/// Names the temporary files a recording is written to, unique in this process.
static PARTIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl std::fmt::Debug for RecordingProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingProvider")
            .field("inner", &self.inner.name())
            .field("api", &self.api)
            .field("path", &self.path)
            .finish()
    }
}

impl RecordingProvider {
    /// Record what `inner` answers into a new cassette at `path`, in `api`'s format. An
    /// existing file is refused, never overwritten: it may be a recording someone kept.
    pub fn create(path: &Path, api: Api, inner: Arc<dyn Provider>) -> Result<RecordingProvider> {
        let io = |source| AgentError::Io {
            path: path.to_owned(),
            source,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        let recording = RecordingProvider {
            inner,
            api,
            path: path.to_owned(),
            interactions: Mutex::new(Vec::new()),
        };
        recording.save(&[])?;
        Ok(recording)
    }

    fn save(&self, interactions: &[Value]) -> Result<()> {
        let cassette = json!({"api": self.api, "literal": true, "interactions": interactions});
        let mut text =
            serde_json::to_string_pretty(&cassette).map_err(|e| AgentError::Provider {
                provider: self.path.display().to_string(),
                message: e.to_string(),
            })?;
        text.push('\n');
        // A new file of a name no one else uses: never someone's file truncated.
        let mut partial = self.path.clone().into_os_string();
        let n = PARTIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        partial.push(format!(".{}-{n}.partial", std::process::id()));
        let partial = PathBuf::from(partial);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
            .and_then(|mut file| std::io::Write::write_all(&mut file, text.as_bytes()))
            .and_then(|()| std::fs::rename(&partial, &self.path));
        written.map_err(|source| {
            let _ = std::fs::remove_file(&partial);
            AgentError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }

    fn recorded(
        &self,
        request: &ModelRequest,
        answer: Result<ModelResponse>,
    ) -> Result<ModelResponse> {
        let response = answer?;
        let broken = |message| AgentError::Provider {
            provider: self.path.display().to_string(),
            message,
        };
        let body = self.api.body(request).map_err(broken)?;
        let messages = if body["input"].is_array() {
            "input"
        } else {
            "messages"
        };
        let last: Vec<Value> = body[messages]
            .as_array()
            .and_then(|all| all.last())
            .cloned()
            .into_iter()
            .collect();
        let mut key = json!({messages: last});
        if let Some(instructions) = body.get("instructions") {
            key["instructions"] = instructions.clone();
        }
        let interaction = json!({
            "request": key,
            "response": self.api.recorded(&response).map_err(broken)?,
        });
        // Saved under the lock: two answers at once must not write the file out of order.
        let mut kept = self.interactions.lock().map_err(|_| AgentError::Provider {
            provider: self.path.display().to_string(),
            message: "the recording's state is poisoned".into(),
        })?;
        kept.push(interaction);
        self.save(&kept)?;
        Ok(response)
    }
}

impl Provider for RecordingProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let answer = self.inner.complete(request).await;
            self.recorded(request, answer)
        })
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        deltas: Deltas<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let answer = self.inner.stream(request, deltas).await;
            self.recorded(request, answer)
        })
    }
}
