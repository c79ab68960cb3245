//! Baton's embedded store (`sled`): runs and their step journal, approvals, artifacts, and the
//! hash-chained audit log.
//!
//! The key design choice: audit records are written by one writer thread with group commit.
//! Every caller waits until its record is flushed to disk, but all records that arrive while a
//! flush is running share the next flush — durability costs one fsync per batch, not per call.
//! Each record carries the SHA-256 of its predecessor, and the chain's head is stored with every
//! batch, so `verify` names the first record that was edited, dropped or reordered.

mod approvals;
mod artifacts;
mod audit;
mod canonical;
mod checkpoint;
mod error;
mod id;
mod runs;
mod salvage;
mod store;
mod time;
mod verify;
mod wal;

pub use approvals::{Approval, ApprovalDraft, ApprovalState, Decision as ApprovalDecision};
pub use artifacts::ArtifactRef;
pub use audit::{
    AuditDraft, AuditLog, AuditReceipt, AuditRecord, DecisionRecord, OutcomeRecord, StoreOptions,
};
pub use canonical::{args_digest, canonical_json, redact};
pub use checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointKey, CheckpointReport, parse_public_key,
};
pub use ed25519_dalek::VerifyingKey;
pub use error::{Result, RunsError};
pub use id::new_id;
pub use runs::{Run, RunState, Step};
pub use salvage::salvage_audit;
pub use store::Store;
pub use time::{now_millis, rfc3339};
pub use verify::{Problem, ProblemKind, VerifyReport};
