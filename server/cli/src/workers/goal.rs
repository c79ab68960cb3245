//! A goal on a worker: the run resumed from its journal in a clone of the goal's repository,
//! its calls made by the worker for the goal's requester, its progress pushed back after
//! every change, and its task on the coordination branch moved along.

use std::path::Path;
use std::sync::Arc;

use baton_agents::{Journal, JournalKey};
use baton_kit::{Effect, Invocation, Invoker, Outcome, Principal, ToolDescriptor};
use baton_runs::StoreApi as _;
use baton_sop::{Claim, Status};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::git::{checkpoint, prepare};
use super::worker::{Stop, Worker};
use crate::agents::{RepoBound, StoreJournal};
use crate::cli::Failure;
use crate::goals::{Bindings, Fence, Setup, execute, provider};

/// What a goal work item holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoalWork {
    /// The run (its setup and journal are in the store).
    pub run_id: String,
    /// The repository's remote, as workers reach it.
    pub remote: String,
    /// The commit the goal starts from.
    pub base: String,
    /// The goal's own branch, pushed back to the remote.
    pub branch: String,
}

/// The goal's lease as this worker checks it before acting.
struct LeaseCheck {
    store: baton_runs::StoreHandle,
    /// The goal's work item.
    item: String,
    worker: String,
    /// A third of a lease: the least a lease must still have left for a step to be taken.
    margin_ms: u64,
}

impl LeaseCheck {
    /// Whether this worker still holds the goal, with time to spare. A worker that takes the
    /// goal over does so only once the lease ran out, so while this holds nobody else acts on
    /// the run (with clocks apart by less than the margin).
    async fn held(&self) -> bool {
        self.store
            .work_item(self.item.clone())
            .await
            .is_ok_and(|item| {
                item.held_by(&self.worker)
                    && item.lease_until_ms > baton_runs::now_millis().saturating_add(self.margin_ms)
            })
    }
}

impl Fence for LeaseCheck {
    fn held(&self) -> BoxFuture<'_, bool> {
        Box::pin(LeaseCheck::held(self))
    }
}

/// The run's journal, written only while this worker holds the goal: a worker stalled past
/// its lease writes nothing into the run another worker now carries on.
struct Fenced {
    journal: StoreJournal,
    lease: Arc<LeaseCheck>,
}

impl Journal for Fenced {
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
    ) -> BoxFuture<'a, baton_agents::Result<Option<Value>>> {
        self.journal.recorded(run_id, key)
    }

    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
        value: &'a Value,
    ) -> BoxFuture<'a, baton_agents::Result<()>> {
        Box::pin(async move {
            if !self.lease.held().await {
                return Err(baton_agents::AgentError::Journal(format!(
                    "worker `{}` no longer holds this goal (its lease ran out)",
                    self.lease.worker
                )));
            }
            self.journal.record(run_id, key, value).await
        })
    }
}

/// The run's gate bound to the clone, with a checkpoint pushed after every call that may
/// have changed files: what a worker that dies next leaves for the one that takes over. A
/// call that may write starts only while the lease holds; its intent is journaled before, so
/// a worker that takes over later does not make it again: at most once, across machines.
struct Checkpointed {
    bound: RepoBound,
    dir: std::path::PathBuf,
    branch: String,
    lease: Arc<LeaseCheck>,
}

impl Invoker for Checkpointed {
    fn tools(&self, principal: &Principal) -> Vec<ToolDescriptor> {
        self.bound.tools(principal)
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, baton_kit::Result<Outcome>> {
        Box::pin(async move {
            let tool = invocation.tool.clone();
            let writes = self
                .bound
                .tools(&invocation.principal)
                .iter()
                .find(|d| d.name == tool)
                .is_some_and(|d| d.effect != Effect::Read);
            if writes && !self.lease.held().await {
                return Err(baton_kit::ToolError::unavailable(format!(
                    "worker `{}` no longer holds this goal (its lease ran out): `{tool}` was not made",
                    self.lease.worker
                )));
            }
            let outcome = self.bound.invoke(invocation).await;
            if writes && matches!(outcome, Ok(Outcome::Completed(_))) {
                let message = format!("baton: checkpoint after {tool}");
                checkpoint(&self.dir, &self.branch, &self.lease.worker, &message)
                    .await
                    .map_err(|failure| baton_kit::ToolError::failed(failure.message))?;
            }
            outcome
        })
    }
}

impl Worker {
    /// Run goal `work` for `requester` to its end; the item's result.
    pub(super) async fn goal(
        &self,
        item: &str,
        work: &GoalWork,
        requester: &str,
        cancel: CancellationToken,
    ) -> Result<Value, Failure> {
        let store = self.served.gate.store();
        let run = store
            .run(work.run_id.clone())
            .await
            .map_err(|e| Failure::runtime(format!("run {}: {e}", work.run_id)))?;
        let mut setup: Setup = serde_json::from_value(run.meta.clone()).map_err(|e| {
            Failure::runtime(format!("run {}: its setup is unreadable ({e})", run.id))
        })?;
        let dir = self.dir.join("runs").join(&run.id);
        prepare(&work.remote, &work.base, &work.branch, &dir).await?;
        // The hand-over, on the run's record: who took it, where from.
        store
            .append_step(
                run.id.clone(),
                "worker".into(),
                json!({"worker": self.principal, "host": super::hostname(), "item": item, "branch": work.branch}),
                baton_runs::now_millis(),
            )
            .await
            .map_err(|e| Failure::runtime(format!("run {}: {e}", run.id)))?;
        self.move_task(work, Status::InProgress, json!({})).await?;
        setup.repo = dir.clone();
        let bound = RepoBound::new(self.served.gate.clone(), dir.clone())
            .await
            .on_worker(&self.principal, requester, &run.id);
        let lease = Arc::new(LeaseCheck {
            store: store.clone(),
            item: item.to_owned(),
            worker: self.name.clone(),
            margin_ms: self.lease.as_millis() as u64 / 3,
        });
        let bindings = Bindings {
            invoker: Arc::new(Checkpointed {
                bound,
                dir: dir.clone(),
                branch: work.branch.clone(),
                lease: lease.clone(),
            }),
            journal: Arc::new(Fenced {
                journal: StoreJournal::new(store.clone()),
                lease: lease.clone(),
            }),
            fence: Some(lease.clone()),
        };
        let model = provider(&self.config, &setup)?;
        let label = Some(format!("[{} {}]", self.name, short(&run.id)));
        let result = execute(
            &self.served,
            model,
            &run.id,
            &run.agent,
            &setup,
            false,
            label,
            cancel,
            Some(bindings),
        )
        .await;
        // A lease that lapsed without the heartbeat noticing yet (the database away for a
        // while) is lost all the same: the goal is another worker's to finish.
        if self.stopped(item).is_none() && !lease.held().await {
            self.lost(item);
        }
        self.end(item, work, &run.id, &dir, result).await
    }

    /// After the run stopped: hand the goal back, or push its end, move its task and journal
    /// its outcome — nothing at all when the lease was lost.
    async fn end(
        &self,
        item: &str,
        work: &GoalWork,
        run_id: &str,
        dir: &Path,
        result: Result<Value, Failure>,
    ) -> Result<Value, Failure> {
        let store = self.served.gate.store();
        let stopped = self.stopped(item);
        match stopped {
            // Another worker has the goal: its branch and its task are that worker's now.
            Some(Stop::Lost) => return Err(Failure::runtime("the lease was lost")),
            Some(Stop::Leaving) => {
                checkpoint(dir, &work.branch, &self.name, "baton: handed back").await?;
                return Err(Failure::runtime("handed back: this worker is stopping"));
            }
            Some(Stop::Cancelled) | None => {}
        }
        let commit = checkpoint(dir, &work.branch, &self.name, "baton: the goal's end").await?;
        let (status, mut summary) = match (result, stopped) {
            (_, Some(Stop::Cancelled)) => (
                Status::Cancelled,
                json!({"state": "cancelled", "error": "cancelled"}),
            ),
            (Ok(done), _) => (Status::Done, done),
            (Err(failure), _) => (
                Status::Blocked,
                json!({"state": "failed", "error": failure.message}),
            ),
        };
        summary["branch"] = json!(work.branch);
        summary["commit"] = json!(commit);
        summary["worker"] = json!(self.principal);
        self.move_task(work, status, summary.clone()).await?;
        store
            .append_step(
                run_id.to_owned(),
                "outcome".into(),
                summary.clone(),
                baton_runs::now_millis(),
            )
            .await
            .map_err(|e| Failure::runtime(format!("run {run_id}: {e}")))?;
        match status {
            Status::Done => Ok(summary),
            _ => Err(Failure::runtime(
                summary["error"].as_str().unwrap_or("failed").to_owned(),
            )),
        }
    }

    /// Move the goal's task on the coordination branch to `status`, claimed by this worker
    /// while in progress.
    async fn move_task(
        &self,
        work: &GoalWork,
        status: Status,
        detail: Value,
    ) -> Result<(), Failure> {
        let coordination = self.coordination(&work.remote).await?;
        let until = baton_runs::rfc3339(
            baton_runs::now_millis().saturating_add(self.lease.as_millis() as u64),
        );
        let claim = (status == Status::InProgress).then(|| Claim {
            agent: self.principal.clone(),
            worktree: None,
            branch: Some(work.branch.clone()),
            lease_expires: until.clone(),
        });
        let mut metadata = serde_json::Map::new();
        metadata.insert("worker".into(), json!(self.principal));
        metadata.insert("branch".into(), json!(work.branch));
        for key in ["commit", "state", "error"] {
            if let Some(value) = detail.get(key) {
                metadata.insert(key.into(), value.clone());
            }
        }
        let message = format!("{}: {} {}", self.principal, status.as_str(), work.run_id);
        coordination
            .update(&message, |index| {
                index.move_goal(&work.run_id, status, claim.clone(), metadata.clone())
            })
            .await
            .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")))
    }
}

/// The last six characters of an id, as progress lines name runs.
fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(6)..).unwrap_or(id)
}

/// `remote` as a worker on another machine reaches it: URLs as given, a local path made
/// absolute.
pub fn remote_of(remote: &str, from: &Path) -> String {
    if remote.contains("://") || remote.contains('@') {
        return remote.to_owned();
    }
    let path = from.join(remote);
    path.canonicalize().unwrap_or(path).display().to_string()
}
