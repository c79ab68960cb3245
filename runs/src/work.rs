//! The work queue workers take from: agent goals and batch items, leased to one worker at a
//! time.
//!
//! Both backends keep the same [`WorkItem`] records and make the same decisions through the
//! functions here — which items a worker gets next ([`pick`]: fair across requesters), what
//! a claim, a heartbeat, a finish and a cancel do to an item — so a queue on sled (one
//! machine) and one on PostgreSQL (many) behave alike. PostgreSQL adds the cross-machine part:
//! rows locked `FOR UPDATE SKIP LOCKED`, so two workers claiming at once never get one item.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Result, RunsError};

/// Times an item's worker may be lost (its lease ran out) before the item is given up as
/// failed: an item whose workers keep dying (a photo that crashes its decoder) must not take
/// worker after worker down forever.
pub const MAX_ATTEMPTS: u32 = 3;

/// What a work item asks a worker to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    /// Run (or resume) an agent run on its goal: `payload` names the run.
    Goal,
    /// One tool call through the worker's gate (an image of a batch): `payload` holds the
    /// tool and its arguments.
    Call,
}

impl WorkKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Goal => "goal",
            WorkKind::Call => "call",
        }
    }
}

/// Where a work item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it while its lease lives.
    Leased,
    /// Finished; `result` holds what it produced.
    Done,
    /// Finished without success; `result` says why.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl WorkState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Queued => "queued",
            WorkState::Leased => "leased",
            WorkState::Done => "done",
            WorkState::Failed => "failed",
            WorkState::Cancelled => "cancelled",
        }
    }

    /// Whether nothing more will happen to the item.
    pub fn is_final(self) -> bool {
        match self {
            WorkState::Done | WorkState::Failed | WorkState::Cancelled => true,
            WorkState::Queued | WorkState::Leased => false,
        }
    }
}

/// Work to queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkDraft {
    /// What kind of work.
    pub kind: WorkKind,
    /// On whose behalf: the principal the worker acts for, and the unit of fairness.
    pub requester: String,
    /// The batch or goals file it belongs to, to follow and cancel them together.
    #[serde(default)]
    pub group: Option<String>,
    /// What to do, shaped by the kind.
    pub payload: Value,
}

/// One lease of an item: who held it, from when. An item's leases are its hand-over history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker.
    pub worker: String,
    /// When it claimed the item, ms since the epoch.
    pub from_ms: u64,
}

/// A queued piece of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Time-ordered id.
    pub id: String,
    /// What kind of work.
    pub kind: WorkKind,
    /// On whose behalf.
    pub requester: String,
    /// The batch or goals file it belongs to.
    #[serde(default)]
    pub group: Option<String>,
    /// What to do.
    pub payload: Value,
    /// Where it stands.
    pub state: WorkState,
    /// The worker holding it (or that last held it).
    #[serde(default)]
    pub worker: Option<String>,
    /// While leased: when the lease ends unless renewed, ms since the epoch.
    #[serde(default)]
    pub lease_until_ms: u64,
    /// Every lease it had, oldest first.
    #[serde(default)]
    pub leases: Vec<Lease>,
    /// Times a worker's lease on it ran out (its worker died or went silent); a clean hand
    /// back does not count.
    #[serde(default)]
    pub lost: u32,
    /// Cancel was asked for while a worker held it; the worker stops it at its next heartbeat.
    #[serde(default)]
    pub cancel_requested: bool,
    /// What it produced (done) or why it did not (failed, cancelled).
    #[serde(default)]
    pub result: Option<Value>,
    /// Queued, ms since the epoch.
    pub created_ms: u64,
    /// Last changed, ms since the epoch.
    pub updated_ms: u64,
}

/// A worker as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its name, unique among the store's workers (`worker:<name>` is its principal).
    pub name: String,
    /// The machine it runs on.
    pub host: String,
    /// Its process id there.
    pub pid: u32,
    /// Most items it runs at once.
    pub capacity: u32,
    /// The kinds of work it takes.
    pub kinds: Vec<WorkKind>,
    /// When it started, ms since the epoch.
    pub started_ms: u64,
    /// Its last heartbeat, ms since the epoch.
    #[serde(default)]
    pub heartbeat_ms: u64,
    /// The items it runs now.
    #[serde(default)]
    pub running: Vec<String>,
    /// Whether it said goodbye (stopped cleanly).
    #[serde(default)]
    pub stopped: bool,
}

/// What a heartbeat tells its worker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Items it believes it runs that are no longer its own (the lease ran out and another
    /// worker took them, or they were finished elsewhere): stop them, write nothing more.
    pub lost: Vec<String>,
    /// Items someone asked to cancel: stop them and finish them as cancelled.
    pub cancel: Vec<String>,
}

fn lease_error(id: &str, reason: impl Into<String>) -> RunsError {
    RunsError::Lease {
        id: id.to_owned(),
        reason: reason.into(),
    }
}

impl WorkItem {
    /// A queued item from `draft`.
    pub fn new(id: String, draft: WorkDraft, now_ms: u64) -> WorkItem {
        WorkItem {
            id,
            kind: draft.kind,
            requester: draft.requester,
            group: draft.group,
            payload: draft.payload,
            state: WorkState::Queued,
            worker: None,
            lease_until_ms: 0,
            leases: Vec::new(),
            lost: 0,
            cancel_requested: false,
            result: None,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }

    /// Whether a worker taking `kinds` may claim it at `now_ms`: queued, or leased to a
    /// worker whose lease ran out.
    pub fn claimable(&self, kinds: &[WorkKind], now_ms: u64) -> bool {
        kinds.contains(&self.kind)
            && match self.state {
                WorkState::Queued => true,
                WorkState::Leased => self.lease_until_ms < now_ms,
                WorkState::Done | WorkState::Failed | WorkState::Cancelled => false,
            }
    }

    /// Whether it is leased to a worker whose lease lives at `now_ms`.
    pub fn running_at(&self, now_ms: u64) -> bool {
        self.state == WorkState::Leased && self.lease_until_ms >= now_ms
    }

    /// The item claimed by `worker` until `now_ms + lease_ms`; once its workers were lost
    /// [`MAX_ATTEMPTS`] times it is failed instead (check the state).
    pub fn claimed(&self, worker: &str, lease_ms: u64, now_ms: u64) -> WorkItem {
        let mut item = self.clone();
        item.updated_ms = now_ms;
        if item.state == WorkState::Leased {
            item.lost = item.lost.saturating_add(1);
        }
        if item.lost >= MAX_ATTEMPTS || item.cancel_requested {
            item.state = if item.cancel_requested {
                WorkState::Cancelled
            } else {
                WorkState::Failed
            };
            item.result = Some(serde_json::json!({
                "error": if item.cancel_requested {
                    "cancelled while its worker was lost".to_owned()
                } else {
                    format!("its worker was lost {MAX_ATTEMPTS} times; given up")
                }
            }));
            return item;
        }
        item.state = WorkState::Leased;
        item.worker = Some(worker.to_owned());
        item.lease_until_ms = now_ms.saturating_add(lease_ms);
        item.leases.push(Lease {
            worker: worker.to_owned(),
            from_ms: now_ms,
        });
        item
    }

    /// Whether `worker` holds it now.
    pub fn held_by(&self, worker: &str) -> bool {
        self.state == WorkState::Leased && self.worker.as_deref() == Some(worker)
    }

    /// The item with its lease renewed by `worker`, or `None` if the lease is no longer its
    /// own. A lease that ran out but that nobody took yet is still renewed: only another
    /// worker's claim ends it.
    pub fn renewed(&self, worker: &str, lease_ms: u64, now_ms: u64) -> Option<WorkItem> {
        if !self.held_by(worker) {
            return None;
        }
        let mut item = self.clone();
        item.lease_until_ms = now_ms.saturating_add(lease_ms);
        item.updated_ms = now_ms;
        Some(item)
    }

    /// The item finished by `worker` as `state` with `result` — or, with
    /// [`WorkState::Queued`], handed back to the queue (a worker stopping cleanly). Refused
    /// when `worker` does not hold it: what a worker that lost its lease reports is dropped,
    /// so an item is finished once.
    pub fn finished(
        &self,
        worker: &str,
        state: WorkState,
        result: Option<Value>,
        now_ms: u64,
    ) -> Result<WorkItem> {
        if !self.held_by(worker) {
            return Err(lease_error(
                &self.id,
                format!(
                    "not leased to `{worker}` (it is {}{})",
                    self.state.as_str(),
                    self.worker
                        .as_deref()
                        .map(|w| format!(", last held by `{w}`"))
                        .unwrap_or_default()
                ),
            ));
        }
        if state == WorkState::Leased {
            return Err(lease_error(&self.id, "a finish cannot leave it leased"));
        }
        let mut item = self.clone();
        item.state = state;
        item.result = result;
        item.lease_until_ms = 0;
        item.updated_ms = now_ms;
        Ok(item)
    }

    /// The item after a cancel asked by someone: a queued one is cancelled at once; a leased
    /// one is marked, for its worker to stop; a finished one is left alone (`None`).
    pub fn cancelled(&self, by: &str, now_ms: u64) -> Option<WorkItem> {
        let mut item = self.clone();
        match self.state {
            WorkState::Queued => {
                item.state = WorkState::Cancelled;
                item.result = Some(serde_json::json!({"error": format!("cancelled by {by}")}));
            }
            WorkState::Leased if !self.cancel_requested => item.cancel_requested = true,
            WorkState::Leased | WorkState::Done | WorkState::Failed | WorkState::Cancelled => {
                return None;
            }
        }
        item.updated_ms = now_ms;
        Some(item)
    }
}

/// What [`pick`] needs of an open item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenItem {
    /// Its id (time-ordered: older first).
    pub id: String,
    /// Its requester.
    pub requester: String,
    /// Whether it may be claimed now.
    pub claimable: bool,
    /// Whether a worker runs it now (counts against its requester's share).
    pub running: bool,
}

/// Up to `want` claimable items, in the order a fair queue hands them out: round-robin over
/// requesters, each requester's own items oldest first; among requesters level on that, the
/// one with fewer items running, then the one served longest ago (`served`: requester → the
/// turn, counting up across claims, in which a worker last claimed one of its items) goes
/// first. So one requester's ten thousand photos
/// take turns with another's single goal rather than going before it: the goal is the next
/// item a free worker claims.
pub fn pick(open: &[OpenItem], served: &HashMap<String, u64>, want: usize) -> Vec<String> {
    let mut running: HashMap<&str, usize> = HashMap::new();
    for item in open.iter().filter(|i| i.running) {
        *running.entry(item.requester.as_str()).or_default() += 1;
    }
    let mut rank: HashMap<&str, usize> = HashMap::new();
    let mut ranked: Vec<(usize, usize, u64, &str)> = Vec::new();
    let mut sorted: Vec<&OpenItem> = open.iter().filter(|i| i.claimable).collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    for item in sorted {
        let who = item.requester.as_str();
        let busy = running.get(who).copied().unwrap_or(0);
        let nth = rank.entry(who).or_default();
        *nth += 1;
        let last = served.get(who).copied().unwrap_or(0);
        ranked.push((busy + *nth, busy, last, item.id.as_str()));
    }
    ranked.sort();
    ranked
        .into_iter()
        .take(want)
        .map(|(_, _, _, id)| id.to_owned())
        .collect()
}
