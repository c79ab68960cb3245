//! Where a run's steps are kept so a resumed run replays them instead of repeating them.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::{AgentError, Result};

/// What a journal step holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// A model's response.
    ModelCall,
    /// A tool call about to be made: written before it, so a resumed run knows it may have
    /// had its effect.
    ToolCall,
    /// The approval a tool call waits for.
    ApprovalWait,
    /// A tool call's answer.
    ToolResult,
    /// What a tool reported while it ran (a command Codex ran, a patch it applied, the tokens
    /// it used): a child step of the call, for the record; never replayed.
    ToolEvent,
}

impl StepKind {
    /// The snake_case name, as `baton runs show` lists steps.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::ModelCall => "model_call",
            StepKind::ToolCall => "tool_call",
            StepKind::ApprovalWait => "approval_wait",
            StepKind::ToolResult => "tool_result",
            StepKind::ToolEvent => "tool_event",
        }
    }
}

/// Where a step is kept in a run's journal: a key that a re-run of the same run reaches
/// again (`<agent path>/turn-<n>/model`, `…/tool/<call id>`, and that key's `/intent` and
/// `/approval`), and the kind of step it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JournalKey {
    key: String,
    kind: StepKind,
}

impl JournalKey {
    /// The model's response in `turn` of the agent at `path`.
    pub fn model(path: &str, turn: u32) -> JournalKey {
        JournalKey {
            key: format!("{path}/turn-{turn}/model"),
            kind: StepKind::ModelCall,
        }
    }

    /// The answer to tool call `call_id` in `turn` of the agent at `path`.
    pub fn tool(path: &str, turn: u32, call_id: &str) -> JournalKey {
        JournalKey {
            key: format!("{path}/turn-{turn}/tool/{call_id}"),
            kind: StepKind::ToolResult,
        }
    }

    /// The intent recorded before this tool call is made.
    pub fn intent(&self) -> JournalKey {
        JournalKey {
            key: format!("{}/intent", self.key),
            kind: StepKind::ToolCall,
        }
    }

    /// The approval this tool call waits for.
    pub fn approval(&self) -> JournalKey {
        JournalKey {
            key: format!("{}/approval", self.key),
            kind: StepKind::ApprovalWait,
        }
    }

    /// The `n`th step this tool call reported while it ran.
    pub fn event(&self, n: u32) -> JournalKey {
        JournalKey {
            key: format!("{}/event-{n}", self.key),
            kind: StepKind::ToolEvent,
        }
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// What the step holds.
    pub fn kind(&self) -> StepKind {
        self.kind
    }
}

impl std::fmt::Display for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key)
    }
}

/// A run's step journal: every model response and tool result, under a [`JournalKey`].
pub trait Journal: Send + Sync {
    /// What was recorded under `key` in run `run_id`.
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
    ) -> BoxFuture<'a, Result<Option<Value>>>;
    /// Record `value` under `key`; returns once it is durable.
    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A journal in memory: for tests and for runs that need not survive the process.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    steps: Mutex<HashMap<(String, String), Value>>,
}

impl MemoryJournal {
    /// How many steps are recorded for `run_id`.
    pub fn len(&self, run_id: &str) -> usize {
        self.steps.lock().map_or(0, |steps| {
            steps.keys().filter(|(run, _)| run == run_id).count()
        })
    }
}

impl Journal for MemoryJournal {
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
    ) -> BoxFuture<'a, Result<Option<Value>>> {
        Box::pin(async move {
            let steps = self
                .steps
                .lock()
                .map_err(|_| AgentError::Journal("poisoned".into()))?;
            Ok(steps
                .get(&(run_id.to_owned(), key.as_str().to_owned()))
                .cloned())
        })
    }

    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.steps
                .lock()
                .map_err(|_| AgentError::Journal("poisoned".into()))?
                .insert((run_id.to_owned(), key.as_str().to_owned()), value.clone());
            Ok(())
        })
    }
}

/// Where a pending approval stands, as the runner needs to know when it resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// Nobody decided yet.
    Pending,
    /// Approved: the call may be made, once.
    Approved,
    /// Rejected, with the reviewer's reason (sent back to the agent).
    Rejected(String),
    /// Expired before anyone decided.
    Expired,
}

/// Asks the store how an approval stands.
pub trait Approvals: Send + Sync {
    /// The state of approval `id`.
    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Review>>;
}
