//! The agent runtime's ties to this server: a journal and approval states kept in the store,
//! so runs survive the process and reviewers decide from anywhere.

use baton_runs::StoreApi as _;
use std::collections::HashMap;
use std::sync::Mutex;

use baton_agents::{AgentError, Approvals, Journal, JournalKey, Review};
use baton_runs::now_millis;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use baton_runs::StoreHandle;

/// A run's journal in the store's `journal` tree: each entry `{key, value}`, appended and
/// flushed before the runner goes on. Read once per run, then kept in memory.
#[derive(Debug)]
pub struct StoreJournal {
    store: StoreHandle,
    loaded: Mutex<HashMap<String, HashMap<String, Value>>>,
}

impl StoreJournal {
    /// A journal in `store`.
    pub fn new(store: StoreHandle) -> StoreJournal {
        StoreJournal {
            store,
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

fn journal_error(error: impl std::fmt::Display) -> AgentError {
    AgentError::Journal(error.to_string())
}

impl Journal for StoreJournal {
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
    ) -> BoxFuture<'a, baton_agents::Result<Option<Value>>> {
        Box::pin(async move {
            let cached = self
                .loaded
                .lock()
                .map_err(journal_error)?
                .get(run_id)
                .map(|steps| steps.get(key.as_str()).cloned());
            if let Some(found) = cached {
                return Ok(found);
            }
            let steps = self
                .store
                .steps(run_id.to_owned())
                .await
                .map_err(journal_error)?;
            let mut map = HashMap::new();
            for step in steps {
                if let (Some(Value::String(key)), Some(value)) =
                    (step.data.get("key"), step.data.get("value"))
                {
                    map.insert(key.clone(), value.clone());
                }
            }
            let found = map.get(key.as_str()).cloned();
            self.loaded
                .lock()
                .map_err(journal_error)?
                .insert(run_id.to_owned(), map);
            Ok(found)
        })
    }

    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
        value: &'a Value,
    ) -> BoxFuture<'a, baton_agents::Result<()>> {
        Box::pin(async move {
            self.store
                .append_step(
                    run_id.to_owned(),
                    key.kind().as_str().to_owned(),
                    json!({"key": key.as_str(), "value": value}),
                    now_millis(),
                )
                .await
                .map_err(journal_error)?;
            self.loaded
                .lock()
                .map_err(journal_error)?
                .entry(run_id.to_owned())
                .or_default()
                .insert(key.as_str().to_owned(), value.clone());
            Ok(())
        })
    }
}

/// Approval states from the store.
#[derive(Debug, Clone)]
pub struct StoreApprovals(pub StoreHandle);

/// Longest single wait for the store to change while a run waits for a reviewer.
const WAIT_MS: u64 = 30_000;
/// Pause before asking again when the store could not be reached.
const RETRY: std::time::Duration = std::time::Duration::from_millis(250);

impl StoreApprovals {
    /// Return once approval `id` is no longer pending: woken by the store's change feed the
    /// moment anything decides it (a console, the CLI, a tool, the expiry sweep), in this
    /// process or another.
    pub async fn wait(&self, id: &str) {
        // Read the counter, then the state, then wait for a change after that counter: a
        // decision between the read and the wait is never missed.
        let store = &self.0;
        let mut seen = store.changes(0, 0).await.unwrap_or(0);
        loop {
            match self.state(id).await {
                Ok(Review::Pending) => match store.changes(seen, WAIT_MS).await {
                    Ok(now) => seen = now,
                    Err(error) => {
                        tracing::warn!(%error, "store unavailable while waiting; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                },
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, "approval state unavailable; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

impl Approvals for StoreApprovals {
    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, baton_agents::Result<Review>> {
        Box::pin(async move {
            let approval = self
                .0
                .approval(id.to_owned())
                .await
                .map_err(journal_error)?;
            Ok(match approval.state_at(now_millis()) {
                baton_runs::ApprovalState::Pending => Review::Pending,
                baton_runs::ApprovalState::Approved | baton_runs::ApprovalState::Consumed => {
                    Review::Approved
                }
                baton_runs::ApprovalState::Rejected => Review::Rejected(
                    approval
                        .note
                        .clone()
                        .unwrap_or_else(|| "no reason given".into()),
                ),
                baton_runs::ApprovalState::Expired => Review::Expired,
                state @ (baton_runs::ApprovalState::Declined
                | baton_runs::ApprovalState::Cancelled) => Review::Rejected(format!(
                    "{} by {}{}",
                    state.as_str(),
                    approval.decider.as_deref().unwrap_or("the client"),
                    approval
                        .note
                        .as_deref()
                        .map(|note| format!(": {note}"))
                        .unwrap_or_default()
                )),
            })
        })
    }
}
