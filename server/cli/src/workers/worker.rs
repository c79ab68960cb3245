//! The worker's loop: claim what its free slots allow, run each item, beat while they run,
//! finish each once — and stop an item the moment its lease is lost or its cancel is asked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_kit::{Invocation, Outcome, Principal, Role, ToolContext};
use baton_mcp::Served;
use baton_runs::{StoreApi as _, WorkItem, WorkKind, WorkState, WorkerInfo, now_millis};
use baton_sop::Coordination;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::goal::GoalWork;
use crate::cli::Failure;
use crate::config::Config;
use crate::goals::say;

/// Why an item stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Its lease was lost: another worker has it now; write nothing more.
    Lost,
    /// Someone cancelled it.
    Cancelled,
    /// This worker is stopping: hand the item back.
    Leaving,
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    stop: Option<Stop>,
}

/// A worker process: its identity, its gate, and the items it runs.
#[derive(Debug)]
pub struct Worker {
    pub(super) name: String,
    /// `worker:<name>`.
    pub(super) principal: String,
    pub(super) served: Arc<Served>,
    pub(super) config: Config,
    /// Where its clones and scratch repositories live.
    pub(super) dir: PathBuf,
    pub(super) lease: Duration,
    capacity: u32,
    kinds: Vec<WorkKind>,
    started_ms: u64,
    running: Mutex<HashMap<String, Running>>,
    coordinations: tokio::sync::Mutex<HashMap<String, Arc<Coordination>>>,
    /// Woken when a slot frees.
    freed: tokio::sync::Notify,
}

/// How a worker is set up.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Its name among the store's workers.
    pub name: String,
    /// Most items at once.
    pub capacity: u32,
    /// The kinds it takes.
    pub kinds: Vec<WorkKind>,
    /// Where its clones live.
    pub dir: PathBuf,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
}

impl Worker {
    /// A worker with `settings`, running items through `served`'s gate.
    pub fn new(served: Arc<Served>, config: Config, settings: WorkerSettings) -> Arc<Worker> {
        Arc::new(Worker {
            principal: format!("worker:{}", settings.name),
            name: settings.name,
            served,
            config,
            dir: settings.dir,
            lease: settings.lease,
            capacity: settings.capacity,
            kinds: settings.kinds,
            started_ms: now_millis(),
            running: Mutex::new(HashMap::new()),
            coordinations: tokio::sync::Mutex::new(HashMap::new()),
            freed: tokio::sync::Notify::new(),
        })
    }

    fn info(&self, stopped: bool) -> WorkerInfo {
        WorkerInfo {
            name: self.name.clone(),
            host: hostname(),
            pid: std::process::id(),
            capacity: self.capacity,
            kinds: self.kinds.clone(),
            started_ms: self.started_ms,
            heartbeat_ms: 0,
            running: self.ids(),
            stopped,
        }
    }

    fn ids(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stop item `id` for `why` (the first reason given stays).
    fn stop(&self, id: &str, why: Stop) {
        if let Ok(mut running) = self.running.lock()
            && let Some(item) = running.get_mut(id)
        {
            item.stop.get_or_insert(why);
            item.cancel.cancel();
        }
    }

    /// Stop item `id`: its lease is no longer this worker's.
    pub(super) fn lost(&self, id: &str) {
        self.stop(id, Stop::Lost);
    }

    /// Why item `id` was stopped, if it was.
    pub(super) fn stopped(&self, id: &str) -> Option<Stop> {
        self.running
            .lock()
            .ok()
            .and_then(|running| running.get(id).and_then(|r| r.stop))
    }

    /// The shared index of the repository at `remote`.
    pub(super) async fn coordination(&self, remote: &str) -> Result<Arc<Coordination>, Failure> {
        let mut known = self.coordinations.lock().await;
        if let Some(found) = known.get(remote) {
            return Ok(found.clone());
        }
        let scratch = self.dir.join("coordination").join(
            baton_runs::args_digest(&json!(remote))
                .get(..16)
                .unwrap_or("remote"),
        );
        let opened = Arc::new(
            Coordination::open(remote, &scratch)
                .await
                .map_err(|e| Failure::runtime(format!("the coordination branch: {e}")))?,
        );
        known.insert(remote.to_owned(), opened.clone());
        Ok(opened)
    }

    /// Beat every third of a lease until `stop`; stop the items the store says were lost or
    /// cancelled.
    async fn beat(self: Arc<Self>, stop: CancellationToken) {
        let every = self.lease / 3;
        loop {
            let store = self.served.gate.store();
            let lease_ms = self.lease.as_millis() as u64;
            match store
                .heartbeat(self.info(false), lease_ms, now_millis())
                .await
            {
                Ok(beat) => {
                    for id in &beat.lost {
                        tracing::warn!(item = %id, "lease lost: another worker has the item");
                        self.stop(id, Stop::Lost);
                    }
                    for id in &beat.cancel {
                        self.stop(id, Stop::Cancelled);
                    }
                }
                Err(error) => tracing::warn!(%error, "heartbeat not recorded"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Refuse to start while another live worker has this name: two workers under one name
    /// would share each other's leases.
    async fn alone(&self) -> Result<(), Failure> {
        let store = self.served.gate.store();
        let workers = store
            .workers()
            .await
            .map_err(|e| Failure::runtime(format!("the store: {e}")))?;
        let now = now_millis();
        let lease_ms = self.lease.as_millis() as u64;
        match workers.iter().find(|w| {
            w.name == self.name
                && !w.stopped
                && now.saturating_sub(w.heartbeat_ms) < lease_ms
                && (w.host != hostname() || w.pid != std::process::id())
        }) {
            Some(other) => Err(Failure::usage(format!(
                "a worker named `{}` runs on {} (pid {}, heartbeat {} ms ago): give this one another --name",
                other.name,
                other.host,
                other.pid,
                now.saturating_sub(other.heartbeat_ms)
            ))),
            None => Ok(()),
        }
    }

    /// Take and run work until `stop`; then hand back what runs and say goodbye.
    pub async fn serve(self: Arc<Self>, stop: CancellationToken) -> Result<(), Failure> {
        self.alone().await?;
        let store = self.served.gate.store().clone();
        // The heartbeat goes on until every item is handed back, so none is lost meanwhile.
        let beat_stop = CancellationToken::new();
        let beating = tokio::spawn(self.clone().beat(beat_stop.clone()));
        say(&format!(
            "worker {} ({}) takes {} at most {} at a time\n",
            self.name,
            self.principal,
            self.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            self.capacity
        ));
        let mut seen = 0;
        while !stop.is_cancelled() {
            let free = self.capacity.saturating_sub(self.ids().len() as u32);
            if free > 0 {
                let lease_ms = self.lease.as_millis() as u64;
                match store
                    .claim_work(
                        self.name.clone(),
                        self.kinds.clone(),
                        free,
                        lease_ms,
                        now_millis(),
                    )
                    .await
                {
                    Ok(items) => {
                        for item in items {
                            self.start(item);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot claim work"),
                }
            }
            let wait = self.lease / 2;
            tokio::select! {
                changed = store.changes(seen, wait.as_millis() as u64) => {
                    seen = changed.unwrap_or(seen);
                }
                () = self.freed.notified() => {}
                () = stop.cancelled() => {}
            }
        }
        for id in self.ids() {
            self.stop(&id, Stop::Leaving);
        }
        while !self.ids().is_empty() {
            self.freed.notified().await;
        }
        beat_stop.cancel();
        let _ = beating.await;
        let _ = store.heartbeat(self.info(true), 0, now_millis()).await;
        Ok(())
    }

    fn start(self: &Arc<Self>, item: WorkItem) {
        let cancel = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            // Its own lease ran out while it still ran the item (the database was away longer
            // than a lease), and it claimed it again: the run in progress goes on, once.
            if running.contains_key(&item.id) {
                tracing::warn!(item = %item.id, "claimed again an item this worker runs");
                return;
            }
            running.insert(
                item.id.clone(),
                Running {
                    cancel: cancel.clone(),
                    stop: None,
                },
            );
        }
        let this = self.clone();
        tokio::spawn(async move {
            let handed_over = item.leases.len() > 1;
            say(&format!(
                "{} took {} {}{}\n",
                this.name,
                item.kind.as_str(),
                item.id,
                if handed_over { " (handed over)" } else { "" }
            ));
            let result = this.execute(&item, cancel).await;
            this.finish(&item, result).await;
        });
    }

    async fn execute(&self, item: &WorkItem, cancel: CancellationToken) -> Result<Value, Failure> {
        match item.kind {
            WorkKind::Goal => {
                let work: GoalWork = serde_json::from_value(item.payload.clone()).map_err(|e| {
                    Failure::runtime(format!("work item {}: not a goal ({e})", item.id))
                })?;
                self.goal(&item.id, &work, &item.requester, cancel).await
            }
            WorkKind::Call => self.call(item, cancel).await,
        }
    }

    /// One tool call through the gate, by this worker for the item's requester. A batch's
    /// items are decided as the batch's caller (whose call, through a gate, queued them: its
    /// id and roles travel in the item); other calls as this worker, an agent.
    async fn call(&self, item: &WorkItem, cancel: CancellationToken) -> Result<Value, Failure> {
        let tool = item.payload["tool"].as_str().unwrap_or_default().to_owned();
        let principal = match item.payload.get("principal") {
            Some(caller) => serde_json::from_value::<Principal>(caller.clone()).map_err(|e| {
                Failure::runtime(format!(
                    "work item {}: its caller does not read ({e})",
                    item.id
                ))
            })?,
            None => Principal::new(self.principal.clone(), [Role::Agent]),
        }
        .acting(&self.principal, &item.requester);
        let outcome = self
            .served
            .gate
            .call(Invocation {
                principal: Arc::new(principal),
                tool: tool.clone(),
                args: item.payload["args"].clone(),
                approval_id: item.payload["approval_id"].as_str().map(str::to_owned),
                context: ToolContext::new(cancel),
            })
            .await;
        match outcome {
            Ok(Outcome::Completed(output)) => Ok(output.structured),
            // Nobody waits on a batch item: a call that needs a reviewer fails, naming the
            // rule, and the batch reports it.
            Ok(Outcome::PendingApproval(pending)) => Err(Failure::runtime(format!(
                "`{tool}` needs a reviewer's approval ({}) and a batch item cannot wait for one: allow it for this caller with a policy rule",
                pending.reason
            ))),
            Err(error) => Err(Failure::runtime(format!("`{tool}`: {error}"))),
        }
    }

    /// Record how `item` ended, unless its lease was lost (then it is another worker's).
    async fn finish(&self, item: &WorkItem, result: Result<Value, Failure>) {
        let stop = self
            .running
            .lock()
            .ok()
            .and_then(|mut running| running.remove(&item.id))
            .and_then(|r| r.stop);
        let (state, value) = match (stop, result) {
            (Some(Stop::Lost), _) => {
                self.freed.notify_one();
                return;
            }
            (Some(Stop::Leaving), _) => (WorkState::Queued, None),
            (Some(Stop::Cancelled), _) => {
                (WorkState::Cancelled, Some(json!({"error": "cancelled"})))
            }
            (None, Ok(value)) => (WorkState::Done, Some(value)),
            (None, Err(failure)) => (WorkState::Failed, Some(json!({"error": failure.message}))),
        };
        let store = self.served.gate.store();
        if let Err(error) = store
            .finish_work(
                item.id.clone(),
                self.name.clone(),
                state,
                value,
                now_millis(),
            )
            .await
        {
            tracing::warn!(%error, item = %item.id, "the item's end was not recorded");
        }
        say(&format!("{} {} {}\n", self.name, state.as_str(), item.id));
        self.freed.notify_one();
    }
}

/// This machine's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
