//! Baton's store: runs and their step journal, approvals, artifacts, and the hash-chained
//! audit log — its API ([`StoreApi`]) declared once, the embedded sled backend, and the sharing
//! of that backend with other local processes over a socket ([`StoreHandle`]).
//!
//! Every client goes through [`StoreApi`]; a second backend (PostgreSQL, for teams) is a
//! second implementation of that trait, not a second set of call sites.
//!
//! The key design choice: audit records are written by one writer thread with group commit.
//! Every caller waits until its record is flushed to disk, but all records that arrive while a
//! flush is running share the next flush — durability costs one fsync per batch, not per call.
//! Each record carries the SHA-256 of its predecessor, and the chain's head is stored with every
//! batch, so `verify` names the first record that was edited, dropped or reordered.

mod api;
mod approvals;
mod artifacts;
mod audit;
mod canonical;
mod checkpoint;
mod error;
mod id;
mod local;
mod postgres;
mod query;
mod queue;
mod runs;
mod salvage;
mod shared;
mod stats;
mod store;
mod tasks;
mod time;
mod verify;
mod wal;
mod work;

pub use api::{Blob, StoreApi, StoreError, StoreFuture, StoreResult};
pub use approvals::{Approval, ApprovalDraft, ApprovalState, Verdict, Withdrawal};
pub use artifacts::{ArtifactGc, ArtifactRef, KeptArtifact};
pub use audit::{
    AuditDraft, AuditLog, AuditReceipt, AuditRecord, DEFAULT_MAX_ARTIFACT_BYTES, DecisionKind,
    DecisionRecord, OutcomeRecord, OutcomeStatus, StoreOptions,
};
pub use canonical::{args_digest, call_digest, canonical_json, redact};
pub use checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointKey, CheckpointReport, parse_public_key,
};
pub use ed25519_dalek::VerifyingKey;
pub use error::{Result, RunsError};
pub use id::new_id;
pub use postgres::{CopyReport, PgStore};
pub use query::{AuditQuery, AuditSlice};
pub use runs::{AgentTokens, Run, RunState, Step, TokenUsage, agent_of_key};
pub use salvage::salvage_audit;
pub use shared::{Ownership, StoreHandle, WAIT, answer_taken};
pub use stats::{HistogramSnapshot, StoreStats};
pub use store::Store;
pub use time::{now_millis, rfc3339};
pub use verify::{Problem, ProblemKind, VerifyReport};
pub use work::{
    Heartbeat, Lease, MAX_ATTEMPTS, OpenItem, WorkDraft, WorkItem, WorkKind, WorkState, WorkerInfo,
    pick,
};
