//! The store's API, declared once.
//!
//! [`store_api!`] lists every operation a single time. From that list come the
//! [`StoreApi`] trait (what a backend implements: the embedded sled store today, PostgreSQL
//! next), the request enum that travels over the owner's socket, the owner's dispatcher, and
//! the two clients ([`StoreHandle`](crate::StoreHandle) and the socket connection). Adding an
//! operation is one line in the list plus its implementation in each backend.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{
    Approval, ApprovalDraft, ArtifactGc, ArtifactRef, AuditDraft, AuditQuery, AuditReceipt,
    AuditRecord, AuditSlice, CheckpointReport, Heartbeat, KeptArtifact, Run, RunState, RunsError,
    Step, Verdict, VerifyReport, Withdrawal, WorkDraft, WorkItem, WorkKind, WorkState, WorkerInfo,
};

/// A store operation that failed, as every client sees it — locally or across the socket,
/// from any backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreError {
    /// No record with this id (or id prefix).
    #[error("{message}")]
    NotFound {
        /// What was asked for, for people.
        message: String,
    },
    /// An id prefix matches several records.
    #[error("{message}")]
    Ambiguous {
        /// Which records, for people.
        message: String,
    },
    /// An approval cannot make this transition (already decided, expired, not the requester's).
    #[error("{message}")]
    Approval {
        /// Why not, for the person who tried.
        message: String,
    },
    /// The store could not be had in time: held by a process that does not serve it, or its
    /// owner keeps going away.
    #[error("{message}")]
    Busy {
        /// What held it.
        message: String,
    },
    /// The store's files are damaged and do not open; the audit log can still be salvaged.
    #[error("{message}")]
    Damaged {
        /// What sled reported.
        message: String,
    },
    /// The audit log refuses records until an operator recovers it.
    #[error("{message}")]
    AuditRefused {
        /// The damage it found.
        message: String,
    },
    /// An upload would take its principal past its quota.
    #[error("{message}")]
    Quota {
        /// Whose, and by how much.
        message: String,
    },
    /// A work item is not (or no longer) leased to the worker acting on it.
    #[error("{message}")]
    Lease {
        /// Which item, and whose it is now.
        message: String,
    },
    /// Bytes larger than the store keeps (an artifact past `[store] max_artifact_mb`).
    #[error("{message}")]
    TooLarge {
        /// How large, and the limit.
        message: String,
    },
    /// The request cannot be carried out as asked (nothing to recover, a bad key).
    #[error("{message}")]
    Invalid {
        /// What was wrong with it.
        message: String,
    },
    /// Reading or writing the store failed, or a stored value does not decode.
    #[error("{message}")]
    Storage {
        /// What failed.
        message: String,
    },
    /// The socket carried something that is not the store's protocol.
    #[error("{message}")]
    Protocol {
        /// What did not decode.
        message: String,
    },
}

/// `Result` with [`StoreError`]: what every [`StoreApi`] operation returns.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// The future of one store operation.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

impl StoreError {
    pub(crate) fn busy(message: impl Into<String>) -> StoreError {
        StoreError::Busy {
            message: message.into(),
        }
    }

    pub(crate) fn storage(message: impl Into<String>) -> StoreError {
        StoreError::Storage {
            message: message.into(),
        }
    }

    pub(crate) fn protocol(message: impl Into<String>) -> StoreError {
        StoreError::Protocol {
            message: message.into(),
        }
    }
}

impl From<RunsError> for StoreError {
    fn from(error: RunsError) -> Self {
        let message = error.to_string();
        match error {
            RunsError::NotFound { .. } => StoreError::NotFound { message },
            RunsError::Ambiguous { .. } => StoreError::Ambiguous { message },
            RunsError::Approval { .. } => StoreError::Approval { message },
            RunsError::Locked(_) => StoreError::Busy { message },
            RunsError::Quota { .. } => StoreError::Quota { message },
            RunsError::Damaged { .. } => StoreError::Damaged { message },
            RunsError::AuditRefused(_) => StoreError::AuditRefused { message },
            RunsError::AuditIntact
            | RunsError::CheckpointKey { .. }
            | RunsError::StoreUrl { .. } => StoreError::Invalid { message },
            RunsError::TooLarge { .. } => StoreError::TooLarge { message },
            RunsError::Lease { .. } => StoreError::Lease { message },
            RunsError::Sled(_)
            | RunsError::Postgres(_)
            | RunsError::Pool(_)
            | RunsError::SchemaTooNew { .. }
            | RunsError::AuditUnwritten { .. }
            | RunsError::Io { .. }
            | RunsError::Corrupt { .. }
            | RunsError::Encode { .. }
            | RunsError::Closed => StoreError::Storage { message },
        }
    }
}

/// Bytes that travel base64-encoded (standard alphabet, padded) rather than as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Blob, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64
            .decode(text.as_bytes())
            .map(Blob)
            .map_err(serde::de::Error::custom)
    }
}

pub(crate) fn encode<T: Serialize>(value: T) -> StoreResult<Value> {
    serde_json::to_value(value)
        .map_err(|e| StoreError::protocol(format!("cannot encode a store answer: {e}")))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(value: Value) -> StoreResult<T> {
    serde_json::from_value(value)
        .map_err(|e| StoreError::protocol(format!("store answer does not decode: {e}")))
}

/// Declares the store's operations once; see the module documentation for what it generates.
macro_rules! store_api {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $out:ty;
    )*) => {
        /// What a store backend does. Every client — a server, a short-lived command, an
        /// agent — uses the store through this trait, whichever backend is behind it.
        pub trait StoreApi: Send + Sync {
            $(
                $(#[doc = $doc])*
                fn $name(&self, $($arg: $ty),*) -> StoreFuture<'_, $out>;
            )*
        }

        /// One operation as it travels over the owner's socket: `{"op": "<name>", …args}`.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "op")]
        #[allow(non_camel_case_types)]
        pub(crate) enum Request {
            $( $name { $($arg: $ty),* }, )*
        }

        impl Request {
            /// Carry the operation out on `store` and encode its answer.
            pub(crate) async fn apply(self, store: &dyn StoreApi) -> StoreResult<Value> {
                match self {
                    $( Request::$name { $($arg),* } => encode(store.$name($($arg),*).await?), )*
                }
            }
        }

        impl StoreApi for crate::shared::Client {
            $(
                fn $name(&self, $($arg: $ty),*) -> StoreFuture<'_, $out> {
                    Box::pin(async move {
                        match self.round_trip(&Request::$name { $($arg),* }).await {
                            Ok(answer) => decode(answer?),
                            Err(lost) => Err(StoreError::busy(lost.to_string())),
                        }
                    })
                }
            )*
        }

        impl StoreApi for crate::StoreHandle {
            $(
                fn $name(&self, $($arg: $ty),*) -> StoreFuture<'_, $out> {
                    Box::pin(async move {
                        match self.direct().await? {
                            Some(crate::shared::Direct::Sled(store)) => {
                                StoreApi::$name(&store, $($arg),*).await
                            }
                            Some(crate::shared::Direct::Postgres(store)) => {
                                StoreApi::$name(&store, $($arg),*).await
                            }
                            None => decode(self.remote(Request::$name { $($arg),* }).await?),
                        }
                    })
                }
            )*
        }
    };
}

store_api! {
    /// Append an audit record; returns once it is on disk (the owner's disk when remote).
    fn append_audit(draft: AuditDraft) -> AuditReceipt;
    /// Walk the audit chain.
    fn verify_audit() -> VerifyReport;
    /// Check a checkpoint file against the chain and the signer's public key (64 hex digits).
    fn verify_checkpoints(file: PathBuf, public_key: String) -> CheckpointReport;
    /// Accept the loss the audit log refuses over, on the record.
    fn recover_audit(reason: String, operator: String) -> AuditReceipt;
    /// Audit records with `seq > after`, at most `limit`.
    fn audit_records(after: u64, limit: usize) -> Vec<AuditRecord>;
    /// Audit records newest first, filtered, one page at a time.
    fn query_audit(query: AuditQuery) -> AuditSlice;
    /// Record a pending approval.
    fn create_approval(draft: ApprovalDraft, now_ms: u64) -> Approval;
    /// One approval by id or unique prefix.
    fn approval(id: String) -> Approval;
    /// All approvals, newest first.
    fn approvals() -> Vec<Approval>;
    /// Decide an approval as `decider`; a rejection writes its call's closing audit record.
    fn decide_approval(
        id: String,
        decider: String,
        decision: Verdict,
        note: Option<String>,
        now_ms: u64,
    ) -> Approval;
    /// Withdraw a pending approval on the requester's side (declined in the client, or the
    /// client cancelled or went away); its call's closing audit record is written.
    fn withdraw_approval(
        id: String,
        by: String,
        how: Withdrawal,
        note: Option<String>,
        now_ms: u64,
    ) -> Approval;
    /// Expire every approval whose time ran out, each with its closing audit record; those
    /// expired now.
    fn expire_approvals(now_ms: u64) -> Vec<Approval>;
    /// Wait until approvals or runs change after counter `seen` (at most `timeout_ms`, capped
    /// at a minute); the counter then. A waiter reads what it watches, then waits with the
    /// counter it had before reading.
    fn changes(seen: u64, timeout_ms: u64) -> u64;
    /// Use an approval for the call it approved: same requester, tool and argument digest.
    fn consume_approval(
        id: String,
        requester: String,
        tool: String,
        args_digest: String,
        now_ms: u64,
    ) -> Approval;
    /// All runs, newest first.
    fn runs() -> Vec<Run>;
    /// One run by id or unique prefix.
    fn run(id: String) -> Run;
    /// The journal of a run.
    fn steps(id: String) -> Vec<Step>;
    /// Start a run.
    fn create_run(goal: String, agent: String, meta: Value, now_ms: u64) -> Run;
    /// Change a run's state.
    fn set_run_state(id: String, state: RunState, now_ms: u64) -> Run;
    /// Journal a step of a run.
    fn append_step(id: String, kind: String, data: Value, now_ms: u64) -> Step;
    /// Keep an MCP task's record (JSON, shaped by the MCP face) under its id.
    fn save_task(id: String, record: Value) -> ();
    /// An MCP task's record.
    fn task(id: String) -> Value;
    /// Every MCP task's id and record.
    fn tasks() -> Vec<(String, Value)>;
    /// Keep bytes as an artifact (content-addressed: the same bytes are kept once).
    fn put_artifact(bytes: Blob, media_type: String) -> ArtifactRef;
    /// An artifact and its bytes.
    fn artifact(sha256: String) -> (ArtifactRef, Blob);
    /// Keep bytes `principal` uploads, counted against its `quota` (bytes of uploads it
    /// keeps; 0 for none): refused with [`StoreError::Quota`] past it.
    fn put_upload(bytes: Blob, media_type: String, principal: String, quota: u64) -> ArtifactRef;
    /// Delete every artifact last kept before `before_ms`; what went.
    fn gc_artifacts(before_ms: u64) -> ArtifactGc;
    /// Every artifact kept, without its bytes (what `baton store copy` carries over).
    fn kept_artifacts() -> Vec<KeptArtifact>;
    /// Claim the notice `key` (an event about an approval) for this process to send: true
    /// once, for the first claimant of any process sharing the store, so every server's watch
    /// may see the event and the webhooks still hear it once.
    fn claim_notice(key: String, now_ms: u64) -> bool;
    /// Queue work for workers; the items, in order.
    fn enqueue_work(drafts: Vec<WorkDraft>, now_ms: u64) -> Vec<WorkItem>;
    /// Claim up to `max` items of `kinds` for `worker`, leased for `lease_ms`: fair across
    /// requesters (see [`crate::pick`]); none that another worker holds.
    fn claim_work(
        worker: String,
        kinds: Vec<WorkKind>,
        max: u32,
        lease_ms: u64,
        now_ms: u64,
    ) -> Vec<WorkItem>;
    /// Record a worker's heartbeat and renew the leases it still holds; which items it lost
    /// and which it is asked to cancel.
    fn heartbeat(worker: WorkerInfo, lease_ms: u64, now_ms: u64) -> Heartbeat;
    /// Finish an item as the worker holding it (or hand it back with `queued`).
    fn finish_work(
        id: String,
        worker: String,
        state: WorkState,
        result: Option<Value>,
        now_ms: u64,
    ) -> WorkItem;
    /// Cancel an item, or every item of a group, as `by`: queued ones at once, running ones
    /// by their worker at its next heartbeat; the items changed.
    fn cancel_work(selector: String, by: String, now_ms: u64) -> Vec<WorkItem>;
    /// One work item by id or unique prefix.
    fn work_item(id: String) -> WorkItem;
    /// Every work item, or a group's, oldest first.
    fn work_items(group: Option<String>) -> Vec<WorkItem>;
    /// Every worker that reported.
    fn workers() -> Vec<WorkerInfo>;
    /// What an operator watches: size, runs by state, pending approvals, how the audit
    /// writer keeps up.
    fn stats() -> crate::StoreStats;
}
