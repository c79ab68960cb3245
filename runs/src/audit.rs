use std::borrow::Cow;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use std::path::PathBuf;
use std::sync::Arc;

use crate::canonical::hex;
use crate::checkpoint::{CheckpointConfig, Checkpointer};
use crate::error::{corrupt, encode};
use crate::time::rfc3339;
use crate::verify::{self, Problem, ProblemKind};
use crate::wal::{self, Marker};
use crate::{Result, RunsError, Store};

/// Key of the chain's head in the `meta` tree.
pub(crate) const HEAD_KEY: &[u8] = b"audit_head";
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest batch one flush covers; beyond it the next flush takes the rest.
pub(crate) const MAX_BATCH: usize = 4096;
/// Under load, the shortest time from one sync's start to the next. A sync costs the same
/// whatever it carries (on this project's 2-core VM about 70 µs of CPU under load, and a
/// wake-up per waiting thread), so back-to-back syncs of a few records each spend the CPU the
/// calls need. The writer waits for this long only while fewer records are queued than the
/// previous batch held: a lone caller, or callers who all came back, are written at once.
const PACE: std::time::Duration = std::time::Duration::from_millis(1);

/// What the policy decided about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The call may run.
    Allow,
    /// The call waits for a reviewer.
    NeedsApproval,
    /// The call is refused.
    Forbid,
}

impl DecisionKind {
    /// The snake_case name, as records and metrics carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allow => "allow",
            DecisionKind::NeedsApproval => "needs_approval",
            DecisionKind::Forbid => "forbid",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// It ran and succeeded.
    Ok,
    /// It ran, or tried to, and failed.
    Error,
    /// It was refused before running.
    Denied,
    /// It waits for a reviewer's decision.
    PendingApproval,
    /// A reviewer rejected it: it never ran.
    Rejected,
    /// The person at the client declined the approval form: it never ran.
    Declined,
    /// The request was withdrawn — the client cancelled it or went away: it never ran.
    Cancelled,
    /// Nobody decided, or nobody used the approval, before it expired: it never ran.
    Expired,
}

impl OutcomeStatus {
    /// The snake_case name, as records and metrics carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Ok => "ok",
            OutcomeStatus::Error => "error",
            OutcomeStatus::Denied => "denied",
            OutcomeStatus::PendingApproval => "pending_approval",
            OutcomeStatus::Rejected => "rejected",
            OutcomeStatus::Declined => "declined",
            OutcomeStatus::Cancelled => "cancelled",
            OutcomeStatus::Expired => "expired",
        }
    }
}

/// The policy decision behind a call, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// What was decided.
    pub kind: DecisionKind,
    /// Why, when the rule gave a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The rule that decided.
    pub rule: Cow<'static, str>,
}

/// How a call ended, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// The error's kind, for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<Cow<'static, str>>,
    /// A short message, for anything but `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How it ended.
    pub status: OutcomeStatus,
}

/// What a caller hands the audit log; the log adds `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDraft {
    /// When the call started, milliseconds since the epoch.
    pub time_ms: u64,
    /// Who called.
    pub principal: String,
    /// Which tool.
    pub tool: String,
    /// SHA-256 of the canonical, redacted arguments.
    pub args_digest: String,
    /// The policy decision.
    pub decision: DecisionRecord,
    /// The approval the call used or created.
    pub approval_id: Option<String>,
    /// Who closed the call's approval without it running (a reviewer's rejection, a client's
    /// decline); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// How it ended.
    pub outcome: OutcomeRecord,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// How the call was confined while it ran (sandbox mode, writable roots, network, the
    /// command backend); absent for reads and for records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// One record of the hash-chained audit log.
///
/// Fields are declared in alphabetical order, as are those of the nested records: serde then
/// writes canonical JSON (sorted keys, no whitespace) directly, which is what the hash covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The approval the call used or created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// SHA-256 of the canonical, redacted arguments.
    pub args_digest: String,
    /// Who closed the call's approval without it running; absent otherwise (and in records
    /// written before it existed, so their hashes still verify).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The policy decision.
    pub decision: DecisionRecord,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// SHA-256 over the canonical JSON of this record without `hash`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// How it ended.
    pub outcome: OutcomeRecord,
    /// `hash` of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// Who called.
    pub principal: String,
    /// How the call was confined while it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the call started (RFC 3339, UTC).
    pub time: String,
    /// Which tool.
    pub tool: String,
}

impl AuditRecord {
    /// The hash this record should carry: SHA-256 of its canonical JSON without `hash`.
    pub(crate) fn digest(&self) -> Result<String> {
        if self.hash.is_empty() {
            return self.digest_unhashed();
        }
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        unhashed.digest_unhashed()
    }

    /// The record `draft` becomes after `previous`: numbered, chained and hashed. Every
    /// backend links records here, so a record's hash does not depend on where it is stored.
    pub(crate) fn link(draft: AuditDraft, previous: &Head) -> Result<AuditRecord> {
        let mut record = AuditRecord {
            approval_id: draft.approval_id,
            args_digest: draft.args_digest,
            decided_by: draft.decided_by,
            decision: draft.decision,
            duration_us: draft.duration_us,
            hash: String::new(),
            outcome: draft.outcome,
            prev_hash: previous.hash.clone(),
            principal: draft.principal,
            sandbox: draft.sandbox,
            seq: previous.seq + 1,
            time: rfc3339(draft.time_ms),
            tool: draft.tool,
        };
        record.hash = record.digest_unhashed()?;
        Ok(record)
    }

    /// [`AuditRecord::digest`] of a record whose `hash` is still empty (no copy needed: an
    /// empty hash is not serialized).
    fn digest_unhashed(&self) -> Result<String> {
        let bytes = serde_json::to_vec(self).map_err(|e| encode("audit record", e))?;
        Ok(hex(&Sha256::digest(&bytes)))
    }
}

/// Where an appended record landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReceipt {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

/// The chain's last record: its sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub seq: u64,
    pub hash: String,
}

/// A record waiting for the writer, and its caller.
pub(crate) struct Pending {
    pub(crate) draft: AuditDraft,
    pub(crate) done: oneshot::Sender<Result<AuditReceipt>>,
}

/// What the audit log works on: the store's database and trees, the segment's path, and the
/// checkpoint signer if one is configured.
#[derive(Clone)]
pub(crate) struct Parts {
    pub db: sled::Db,
    pub audit: sled::Tree,
    pub meta: sled::Tree,
    pub wal_path: PathBuf,
    pub checkpoints: Option<CheckpointConfig>,
}

/// Appends to the audit log through a single writer thread that group-commits. Owned by the
/// [`Store`]; closing the store stops the writer after it has written what it was given.
///
/// Durability comes from a write-ahead segment (`audit.wal`, see `wal.rs`): each batch is
/// written there and `fdatasync`ed before anyone is answered, then indexed in the sled `audit`
/// tree as one entry per batch (key: its first sequence number; value: its records as JSON
/// lines), which sled flushes in the background. Opening the store replays what sled lacks and
/// checks the chain. Measured on this project's machines, a sled flush per batch cost 4–8× the
/// CPU, and a sled key per record 5.6× the CPU, of this design (docs/benchmarks.md).
///
/// When opening finds the log damaged — answered records lost with the segment, a damaged
/// segment record, a chain that does not verify — the log *refuses*: appends fail with
/// [`RunsError::AuditRefused`] until an operator accepts the loss with
/// [`Store::recover_audit`], which records that it did.
pub struct AuditLog {
    sender: std::sync::RwLock<Option<mpsc::Sender<Pending>>>,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    gather: Arc<Gather>,
    writer_thread: std::sync::OnceLock<thread::Thread>,
    refused: std::sync::Mutex<Option<Problem>>,
    parts: Parts,
    /// How the writer keeps up (`/metrics`).
    stats: Arc<crate::stats::WriterStats>,
}

/// How callers tell the writer that the batch it waits for has gathered: one wake-up per
/// batch, not one per record.
#[derive(Debug)]
struct Gather {
    /// Records sent and not yet taken by the writer.
    queued: std::sync::atomic::AtomicUsize,
    /// The count at which the sender that reaches it wakes the writer (`usize::MAX`: none).
    wake_at: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

struct Writer {
    gather: Arc<Gather>,
    parts: Parts,
    wal: std::fs::File,
    offset: u64,
    head: Head,
    marker: Marker,
    checkpointer: Option<Checkpointer>,
    stats: Arc<crate::stats::WriterStats>,
}

/// A log ready to append to.
struct Ready {
    head: Head,
    wal: std::fs::File,
    offset: u64,
    marker: Marker,
}

pub(crate) fn read_head(meta: &sled::Tree) -> Result<Head> {
    match meta.get(HEAD_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt("audit head", e)),
        None => Ok(Head {
            seq: 0,
            hash: GENESIS.into(),
        }),
    }
}

/// Index `records` (which extend `head`) in sled as one chunk and move the head. Returns it.
fn index(parts: &Parts, records: &[(AuditRecord, Vec<u8>)], mut head: Head) -> Result<Head> {
    let (Some((first, _)), Some((last, _))) = (records.first(), records.last()) else {
        return Ok(head);
    };
    let mut chunk = Vec::new();
    for (_, line) in records {
        chunk.extend_from_slice(line);
        chunk.push(b'\n');
    }
    parts.audit.insert(first.seq.to_be_bytes(), chunk)?;
    head = Head {
        seq: last.seq,
        hash: last.hash.clone(),
    };
    parts.meta.insert(
        HEAD_KEY,
        serde_json::to_vec(&head).map_err(|e| encode("audit head", e))?,
    )?;
    tracing::info!(
        records = records.len(),
        "audit records recovered from the write-ahead segment"
    );
    Ok(head)
}

/// Bring sled up to date with the segment, and check that nothing answered was lost: `Ok(Err)`
/// names what was. `Ok(Ok)` is a segment to continue, with the head.
fn replay(parts: &Parts) -> Result<std::result::Result<Ready, Problem>> {
    let head = match read_head(&parts.meta) {
        Ok(head) => head,
        Err(RunsError::Corrupt { detail, .. }) => {
            return Ok(Err(Problem {
                seq: 1,
                kind: ProblemKind::Unreadable,
                detail: format!("the stored head of the log does not decode ({detail})"),
            }));
        }
        Err(error) => return Err(error),
    };
    let marker = wal::read_marker(&parts.meta)?;
    let unclean = marker.as_ref().filter(|m| !m.clean);
    let trusted_from = marker.as_ref().map_or(0, |m| m.trusted_from);
    let path = &parts.wal_path;
    let bytes = wal::read_segment(path)?;
    let header = bytes.as_deref().and_then(wal::header_id);
    let lost = |what: &str| Problem {
        seq: head.seq + 1,
        kind: ProblemKind::WalMissing,
        detail: format!(
            "audit.wal {what} after an unclean stop: records after {} (the last the store flushed) may be lost; after checking, run `baton audit recover --accept-loss --reason TEXT`",
            head.seq
        ),
    };
    let fresh = |head: Head| -> Result<Ready> {
        let (wal, id) = wal::create_segment(path)?;
        let marker = new_marker(id, &head, trusted_from);
        Ok(Ready {
            head,
            wal,
            offset: wal::HEADER_BYTES as u64,
            marker,
        })
    };
    match (bytes, header, unclean) {
        (None, _, Some(_)) => Ok(Err(lost("is missing"))),
        (None, _, None) => fresh(head).map(Ok),
        (Some(_), None, Some(_)) => Ok(Err(Problem {
            seq: head.seq + 1,
            kind: ProblemKind::WalDamaged,
            detail: "the header of audit.wal was damaged after an unclean stop: the records after it cannot be trusted".into(),
        })),
        (Some(bytes), None, None) => {
            // A segment from before headers existed: replay it, then start a new one.
            let records = wal::legacy_records(&bytes, &head);
            let head = index(parts, &records, head)?;
            fresh(head).map(Ok)
        }
        (Some(_), Some(id), Some(marker)) if id != marker.id => Ok(Err(lost(&format!(
            "is another segment (id {id}, not {})",
            marker.id
        )))),
        (Some(bytes), Some(id), _) => continue_segment(parts, &bytes, id, head, trusted_from),
    }
}

fn new_marker(id: String, head: &Head, trusted_from: u64) -> Marker {
    Marker {
        id,
        clean: false,
        head_at_open: head.seq,
        trusted_from,
        checked: None,
    }
}

/// Replay a segment with a header; continue it after its last record.
fn continue_segment(
    parts: &Parts,
    bytes: &[u8],
    id: String,
    head: Head,
    trusted_from: u64,
) -> Result<std::result::Result<Ready, Problem>> {
    let scan = wal::scan(bytes, &head);
    if scan.flushed > head.seq {
        return Ok(Err(lost_flushed(parts, &head, scan.flushed)));
    }
    // What precedes damage is sound: keep it, so the refusal names the first lost record.
    let head = index(parts, &scan.records, head)?;
    if let Some(problem) = scan.damage {
        parts.db.flush()?;
        return Ok(Err(problem));
    }
    let path = &parts.wal_path;
    let wal = wal::open_segment(path)?;
    if let Some(torn_end) = scan.torn_end {
        wal::zero(&wal, path, scan.end as u64, torn_end as u64)?;
        wal.sync_data().map_err(wal::io_error(path))?;
    }
    Ok(Ok(Ready {
        marker: new_marker(id, &head, trusted_from),
        head,
        wal,
        offset: scan.end as u64,
    }))
}

/// The store's head is below what it had flushed: sled dropped records (its files were edited
/// or damaged — sled treats a bad checksum as the end of its log). Name the first record of
/// which the raw files hold a damaged copy, else the first one dropped.
fn lost_flushed(parts: &Parts, head: &Head, flushed: u64) -> Problem {
    let damaged = parts
        .wal_path
        .parent()
        .and_then(|dir| crate::salvage::salvage_audit(dir).ok())
        .and_then(|report| report.problem)
        .filter(|p| {
            p.seq <= flushed && matches!(p.kind, ProblemKind::Edited | ProblemKind::Unreadable)
        });
    let dropped = format!(
        "the store holds records up to {} only, but had flushed records up to {flushed}: its files were edited or damaged (audit.wal still holds the records)",
        head.seq
    );
    match damaged {
        Some(problem) => Problem {
            seq: problem.seq,
            kind: problem.kind,
            detail: format!("{dropped}; {}", problem.detail),
        },
        None => Problem {
            seq: head.seq + 1,
            kind: ProblemKind::Truncated,
            detail: dropped,
        },
    }
}

impl AuditLog {
    /// Open the log: replay the segment, check the chain, and start the writer — or refuse.
    pub(crate) fn start(parts: Parts) -> Result<AuditLog> {
        let log = AuditLog {
            sender: std::sync::RwLock::new(None),
            writer: std::sync::Mutex::new(None),
            gather: Arc::new(Gather {
                queued: std::sync::atomic::AtomicUsize::new(0),
                wake_at: std::sync::atomic::AtomicUsize::new(usize::MAX),
            }),
            writer_thread: std::sync::OnceLock::new(),
            refused: std::sync::Mutex::new(None),
            parts,
            stats: Arc::default(),
        };
        // Where the previous open's check ended: only what came since is walked again.
        let checked_before = wal::read_marker(&log.parts.meta)
            .ok()
            .flatten()
            .and_then(|marker| marker.checked);
        let problem = match replay(&log.parts)? {
            Ok(mut ready) => {
                parts_flush(&log.parts)?;
                let trusted = ready.marker.trusted_from;
                let (from, previous) = match checked_before {
                    Some(checked) if checked.seq + 1 > trusted => {
                        (checked.seq + 1, Some(checked.hash))
                    }
                    _ => (trusted, None),
                };
                let report = verify::walk(&log.parts.audit, &log.parts.meta, from, previous);
                match report.problem {
                    None => {
                        ready.marker.checked = Some(ready.head.clone());
                        log.spawn(ready)?;
                        return Ok(log);
                    }
                    Some(problem) => problem,
                }
            }
            Err(problem) => problem,
        };
        tracing::error!(%problem, "the audit log refuses new records until an operator recovers it");
        if let Ok(mut refused) = log.refused.lock() {
            *refused = Some(problem);
        }
        Ok(log)
    }

    /// Mark the segment in use (flushed), then start the writer thread on it.
    fn spawn(&self, ready: Ready) -> Result<()> {
        wal::write_marker(&self.parts.db, &self.parts.meta, &ready.marker)?;
        let mut writer = Writer {
            gather: self.gather.clone(),
            parts: self.parts.clone(),
            wal: ready.wal,
            offset: ready.offset,
            head: ready.head,
            marker: ready.marker,
            checkpointer: self.parts.checkpoints.clone().map(Checkpointer::new),
            stats: self.stats.clone(),
        };
        writer.note_flushed()?;
        let (sender, receiver) = mpsc::channel::<Pending>();
        let thread = thread::Builder::new()
            .name("baton-audit".into())
            .spawn(move || writer.run(&receiver))
            .map_err(|source| RunsError::Io {
                path: "audit writer thread".into(),
                source,
            })?;
        let _ = self.writer_thread.set(thread.thread().clone());
        if let Ok(mut slot) = self.writer.lock() {
            *slot = Some(thread);
        }
        if let Ok(mut slot) = self.sender.write() {
            *slot = Some(sender);
        }
        Ok(())
    }

    /// How the writer keeps up: records per batch, seconds per batch.
    pub(crate) fn writer_stats(
        &self,
    ) -> (
        crate::stats::HistogramSnapshot,
        crate::stats::HistogramSnapshot,
    ) {
        self.stats.snapshot()
    }

    /// Why the log refuses new records, if it does.
    pub fn refusal(&self) -> Option<Problem> {
        self.refused.lock().ok().and_then(|problem| problem.clone())
    }

    /// Append `draft`; returns once the record is on disk.
    pub async fn append(&self, draft: AuditDraft) -> Result<AuditReceipt> {
        let (done, wait) = oneshot::channel();
        // Counted before it is sent, so the writer never takes more than the count says.
        let queued = self.gather.queued.fetch_add(1, SeqCst) + 1;
        let sent = match self.sender.read() {
            Ok(sender) => sender
                .as_ref()
                .is_some_and(|sender| sender.send(Pending { draft, done }).is_ok()),
            Err(_) => false,
        };
        if !sent {
            self.gather.queued.fetch_sub(1, SeqCst);
            return Err(match self.refusal() {
                Some(problem) => RunsError::AuditRefused(Box::new(problem)),
                None => RunsError::Closed,
            });
        }
        if queued == self.gather.wake_at.load(SeqCst)
            && let Some(thread) = self.writer_thread.get()
        {
            thread.unpark();
        }
        wait.await.map_err(|_| RunsError::Closed)?
    }

    /// Stop accepting records, let the writer finish what it has, and wait for it.
    pub(crate) fn close(&self) {
        if let Ok(mut sender) = self.sender.write() {
            sender.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }

    /// Accept what a refusal named as lost: set the damaged segment aside, start a new one,
    /// and append a record that says what was accepted, by whom and why.
    fn recover(&self, reason: &str, operator: &str) -> Result<AuditReceipt> {
        let Some(problem) = self.refusal() else {
            return Err(RunsError::AuditIntact);
        };
        let path = &self.parts.wal_path;
        if path.exists() {
            let aside = path.with_extension(format!("wal.damaged-{}", crate::now_millis()));
            std::fs::rename(path, &aside).map_err(wal::io_error(path))?;
            tracing::warn!(kept = %aside.display(), "the damaged audit segment was set aside");
        }
        let head = read_head(&self.parts.meta)?;
        let (wal, id) = wal::create_segment(path)?;
        let mut writer = Writer {
            gather: self.gather.clone(),
            parts: self.parts.clone(),
            wal,
            offset: wal::HEADER_BYTES as u64,
            marker: new_marker(id, &head, head.seq + 1),
            head,
            checkpointer: self.parts.checkpoints.clone().map(Checkpointer::new),
            stats: self.stats.clone(),
        };
        wal::write_marker(&self.parts.db, &self.parts.meta, &writer.marker)?;
        let draft = recovery_draft(reason, operator, &problem);
        let receipt = writer.commit(vec![draft])?.pop().ok_or(RunsError::Closed)?;
        self.parts.db.flush()?;
        if let Some(checkpointer) = &mut writer.checkpointer {
            checkpointer.maybe_sign(&writer.head, true);
        }
        let ready = Ready {
            head: writer.head.clone(),
            wal: writer.wal,
            offset: writer.offset,
            marker: writer.marker,
        };
        if let Ok(mut refused) = self.refused.lock() {
            *refused = None;
        }
        self.spawn(ready)?;
        tracing::warn!(seq = receipt.seq, %problem, reason, operator, "audit loss accepted");
        Ok(receipt)
    }
}

fn parts_flush(parts: &Parts) -> Result<()> {
    parts.db.flush()?;
    Ok(())
}

/// The record of an operator's recovery.
pub(crate) fn recovery_draft(reason: &str, operator: &str, problem: &Problem) -> AuditDraft {
    AuditDraft {
        time_ms: crate::now_millis(),
        principal: operator.to_owned(),
        tool: "audit_recover".into(),
        args_digest: crate::args_digest(&serde_json::json!({
            "accept_loss": true,
            "reason": reason,
        })),
        decision: DecisionRecord {
            kind: DecisionKind::Allow,
            reason: Some(reason.to_owned()),
            rule: "operator.accept_loss".into(),
        },
        approval_id: None,
        decided_by: None,
        outcome: OutcomeRecord {
            error_kind: Some(problem.kind.as_str().into()),
            message: Some(format!("loss accepted: {problem}")),
            status: OutcomeStatus::Ok,
        },
        duration_us: 0,
        sandbox: None,
    }
}

impl Writer {
    /// The next record to write, waiting no longer than a due checkpoint allows; `None` once
    /// the log is closed.
    fn next(&mut self, receiver: &mpsc::Receiver<Pending>) -> Option<Pending> {
        loop {
            let due = self
                .checkpointer
                .as_ref()
                .and_then(|c| c.due_in(&self.head));
            let Some(wait) = due else {
                return receiver.recv().ok();
            };
            match receiver.recv_timeout(wait) {
                Ok(pending) => return Some(pending),
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(checkpointer) = &mut self.checkpointer {
                        checkpointer.maybe_sign(&self.head, false);
                    }
                }
            }
        }
    }

    fn run(&mut self, receiver: &mpsc::Receiver<Pending>) {
        // As many records as the previous batch held: the callers it answered, when they
        // come back, make a batch as large without waiting longer than `PACE` for them.
        let mut target = 1usize;
        let mut last_sync = std::time::Instant::now();
        while let Some(first) = self.next(receiver) {
            if target > 1 {
                let deadline = last_sync + PACE;
                self.gather.wake_at.store(target, SeqCst);
                while self.gather.queued.load(SeqCst) < target {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    thread::park_timeout(left);
                }
                self.gather.wake_at.store(usize::MAX, SeqCst);
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            self.gather.queued.fetch_sub(batch.len(), SeqCst);
            target = batch.len();
            last_sync = std::time::Instant::now();
            self.write_batch(batch);
            // After the callers are answered: signing is off their path.
            if let Some(checkpointer) = &mut self.checkpointer {
                checkpointer.maybe_sign(&self.head, false);
            }
        }
        self.stop();
    }

    fn write_batch(&mut self, batch: Vec<Pending>) {
        let (drafts, waiting): (Vec<AuditDraft>, Vec<_>) = batch
            .into_iter()
            .map(|pending| (pending.draft, pending.done))
            .unzip();
        let started = std::time::Instant::now();
        let records = drafts.len();
        let committed = self.commit(drafts);
        self.stats.batch(records, started.elapsed());
        match committed {
            Ok(receipts) => {
                for (done, receipt) in waiting.into_iter().zip(receipts) {
                    let _ = done.send(Ok(receipt));
                }
            }
            Err(error) => {
                tracing::error!(%error, records = waiting.len(), "audit batch not written");
                let message = error.to_string();
                for done in waiting {
                    let _ = done.send(Err(RunsError::Corrupt {
                        what: "audit batch",
                        detail: message.clone(),
                    }));
                }
            }
        }
    }

    /// Closing: sign the head, make sled hold everything, then mark the stop clean — the next
    /// open has nothing to replay and nothing to fear from a missing segment.
    fn stop(&mut self) {
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer.maybe_sign(&self.head, true);
        }
        if let Err(error) = self
            .parts
            .db
            .flush()
            .map_err(RunsError::from)
            .and_then(|_| self.note_flushed())
        {
            tracing::error!(%error, "audit flush on close failed; the next open replays");
            return;
        }
        self.marker.clean = true;
        if let Err(error) = wal::write_marker(&self.parts.db, &self.parts.meta, &self.marker) {
            tracing::error!(%error, "the audit segment could not be marked closed");
        }
    }

    /// Record in the segment that sled holds everything up to the head (synced).
    fn note_flushed(&mut self) -> Result<()> {
        use std::os::unix::fs::FileExt as _;
        let path = &self.parts.wal_path;
        let line = wal::flushed_line(self.head.seq);
        self.wal
            .write_all_at(&line, self.offset)
            .map_err(wal::io_error(path))?;
        self.wal.sync_data().map_err(wal::io_error(path))?;
        self.offset += line.len() as u64;
        Ok(())
    }

    fn commit(&mut self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditReceipt>> {
        use std::os::unix::fs::FileExt as _;
        let mut previous = self.head.clone();
        let mut lines = Vec::with_capacity(drafts.len() * 512);
        let mut receipts = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let record = AuditRecord::link(draft, &previous)?;
            serde_json::to_writer(&mut lines, &record).map_err(|e| encode("audit record", e))?;
            lines.push(b'\n');
            receipts.push(AuditReceipt {
                seq: record.seq,
                hash: record.hash.clone(),
            });
            previous = Head {
                seq: record.seq,
                hash: record.hash,
            };
        }
        let first = self.head.seq + 1;
        if self.offset + lines.len() as u64 + 32 > wal::SEGMENT_BYTES {
            // The segment is full: make sled durable, zero the segment (so no older record can
            // be mistaken for damage), then reuse it from the start.
            self.parts.db.flush()?;
            let path = &self.parts.wal_path;
            wal::zero(&self.wal, path, wal::HEADER_BYTES as u64, self.offset)?;
            self.wal.sync_data().map_err(wal::io_error(path))?;
            self.offset = wal::HEADER_BYTES as u64;
            self.note_flushed()?;
        }
        let path = &self.parts.wal_path;
        // Durable first: once this returns, the batch survives a crash.
        self.wal
            .write_all_at(&lines, self.offset)
            .map_err(wal::io_error(path))?;
        self.wal.sync_data().map_err(wal::io_error(path))?;
        self.offset += lines.len() as u64;
        // Then indexed: the chunk, then the head — a reader never sees a head past the log.
        self.parts.audit.insert(first.to_be_bytes(), lines)?;
        self.parts.meta.insert(
            HEAD_KEY,
            serde_json::to_vec(&previous).map_err(|e| encode("audit head", e))?,
        )?;
        self.head = previous;
        Ok(receipts)
    }
}

/// How an [`Store`] is opened.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Sign checkpoints of the audit chain's head (off when `None`).
    pub checkpoints: Option<CheckpointConfig>,
    /// The store on PostgreSQL (`postgres://…`) rather than sled in the data folder.
    pub url: Option<String>,
    /// Largest artifact kept in PostgreSQL, in bytes (0: [`DEFAULT_MAX_ARTIFACT_BYTES`]).
    pub max_artifact_bytes: u64,
}

/// Largest artifact kept in PostgreSQL unless configured otherwise: 64 MiB.
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 64 << 20;

impl Store {
    /// Append to the audit log (group-committed; returns once on disk). Fails with
    /// [`RunsError::AuditRefused`] while the log is damaged and not yet recovered.
    pub async fn append_audit(&self, draft: AuditDraft) -> Result<AuditReceipt> {
        self.inner.audit_log.append(draft).await
    }

    /// Why the audit log refuses new records (found at open), if it does.
    pub fn audit_refusal(&self) -> Option<Problem> {
        self.inner.audit_log.refusal()
    }

    /// An operator accepts the loss a refusal named: the damaged segment is set aside (as
    /// `audit.wal.damaged-<ms>`), a record of the recovery (tool `audit_recover`, by
    /// `operator`, with `reason` and the problem) is appended, and the log takes records again.
    /// `verify_audit` goes on naming damage inside the chain: the evidence stays.
    pub fn recover_audit(&self, reason: &str, operator: &str) -> Result<AuditReceipt> {
        self.inner.audit_log.recover(reason, operator)
    }
}
