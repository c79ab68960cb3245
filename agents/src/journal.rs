//! Where a run's steps are kept so a resumed run replays them instead of repeating them.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::{AgentError, Result};

/// A run's step journal: every model response and tool result, by a key that a re-run of the
/// same run reaches again (`<agent path>/turn-<n>/model`, `…/tool/<call id>`).
pub trait Journal: Send + Sync {
    /// What was recorded under `key` in run `run_id`.
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>>>;
    /// Record `value` under `key`; returns once it is durable.
    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
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
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Value>>> {
        Box::pin(async move {
            let steps = self
                .steps
                .lock()
                .map_err(|_| AgentError::Journal("poisoned".into()))?;
            Ok(steps.get(&(run_id.to_owned(), key.to_owned())).cloned())
        })
    }

    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a str,
        value: &'a Value,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.steps
                .lock()
                .map_err(|_| AgentError::Journal("poisoned".into()))?
                .insert((run_id.to_owned(), key.to_owned()), value.clone());
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
