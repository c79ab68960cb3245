use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::canonical::{canonical_json, hex};
use crate::error::{corrupt, encode};
use crate::time::rfc3339;
use crate::{Result, RunsError, Store};

const HEAD_KEY: &[u8] = b"audit_head";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest batch one flush covers; beyond it the next flush takes the rest.
const MAX_BATCH: usize = 4096;

/// The policy decision behind a call, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// `allow`, `needs_approval` or `forbid`.
    pub kind: String,
    /// The rule that decided.
    pub rule: String,
    /// Why, when the rule gave a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a call ended, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRecord {
    /// `ok`, `error`, `denied` or `pending_approval`.
    pub status: String,
    /// The error's kind, for `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// A short message, for anything but `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
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
    /// How it ended.
    pub outcome: OutcomeRecord,
    /// How long it took, in microseconds.
    pub duration_us: u64,
}

/// One record of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the call started (RFC 3339, UTC).
    pub time: String,
    /// Who called.
    pub principal: String,
    /// Which tool.
    pub tool: String,
    /// SHA-256 of the canonical, redacted arguments.
    pub args_digest: String,
    /// The policy decision.
    pub decision: DecisionRecord,
    /// The approval the call used or created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    /// How it ended.
    pub outcome: OutcomeRecord,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// `hash` of the previous record (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over the canonical JSON of this record without `hash`.
    pub hash: String,
}

impl AuditRecord {
    fn digest(&self) -> Result<String> {
        let mut value = serde_json::to_value(self).map_err(|e| encode("audit record", e))?;
        if let Some(object) = value.as_object_mut() {
            object.remove("hash");
        }
        Ok(hex(&Sha256::digest(canonical_json(&value).as_bytes())))
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

struct Pending {
    draft: AuditDraft,
    done: oneshot::Sender<Result<AuditReceipt>>,
}

/// Appends to the audit log through a single writer thread that group-commits. Owned by the
/// [`Store`]; closing the store stops the writer after it has written what it was given.
pub struct AuditLog {
    sender: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    pub(crate) fn start(db: sled::Db, audit: sled::Tree, meta: sled::Tree) -> Result<AuditLog> {
        let head = match meta.get(HEAD_KEY)? {
            Some(bytes) => {
                serde_json::from_slice::<Head>(&bytes).map_err(|e| corrupt("audit head", e))?
            }
            None => Head {
                seq: 0,
                hash: GENESIS.into(),
            },
        };
        let (sender, receiver) = mpsc::channel::<Pending>();
        let writer = thread::Builder::new()
            .name("baton-audit".into())
            .spawn(move || write_loop(&db, &audit, &meta, head, &receiver))
            .map_err(|source| RunsError::Io {
                path: "audit writer thread".into(),
                source,
            })?;
        Ok(AuditLog {
            sender: std::sync::Mutex::new(Some(sender)),
            writer: std::sync::Mutex::new(Some(writer)),
        })
    }

    /// Append `draft`; returns once the record is on disk.
    pub async fn append(&self, draft: AuditDraft) -> Result<AuditReceipt> {
        let (done, wait) = oneshot::channel();
        {
            let sender = self.sender.lock().map_err(|_| RunsError::Closed)?;
            sender
                .as_ref()
                .ok_or(RunsError::Closed)?
                .send(Pending { draft, done })
                .map_err(|_| RunsError::Closed)?;
        }
        wait.await.map_err(|_| RunsError::Closed)?
    }

    /// Stop accepting records, let the writer finish what it has, and wait for it.
    pub(crate) fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut writer| writer.take());
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the audit writer thread panicked");
        }
    }
}

fn write_loop(
    db: &sled::Db,
    audit: &sled::Tree,
    meta: &sled::Tree,
    mut head: Head,
    receiver: &mpsc::Receiver<Pending>,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        match commit(db, audit, meta, &head, &batch) {
            Ok(receipts) => {
                if let Some(last) = receipts.last() {
                    head = Head {
                        seq: last.seq,
                        hash: last.hash.clone(),
                    };
                }
                for (pending, receipt) in batch.into_iter().zip(receipts) {
                    let _ = pending.done.send(Ok(receipt));
                }
            }
            Err(error) => {
                tracing::error!(%error, records = batch.len(), "audit batch not written");
                let message = error.to_string();
                for pending in batch {
                    let _ = pending.done.send(Err(RunsError::Corrupt {
                        what: "audit batch",
                        detail: message.clone(),
                    }));
                }
            }
        }
    }
}

fn commit(
    db: &sled::Db,
    audit: &sled::Tree,
    meta: &sled::Tree,
    head: &Head,
    batch: &[Pending],
) -> Result<Vec<AuditReceipt>> {
    let mut previous = head.clone();
    let mut encoded = Vec::with_capacity(batch.len());
    let mut receipts = Vec::with_capacity(batch.len());
    for pending in batch {
        let draft = &pending.draft;
        let mut record = AuditRecord {
            seq: previous.seq + 1,
            time: rfc3339(draft.time_ms),
            principal: draft.principal.clone(),
            tool: draft.tool.clone(),
            args_digest: draft.args_digest.clone(),
            decision: draft.decision.clone(),
            approval_id: draft.approval_id.clone(),
            outcome: draft.outcome.clone(),
            duration_us: draft.duration_us,
            prev_hash: previous.hash.clone(),
            hash: String::new(),
        };
        record.hash = record.digest()?;
        let bytes = serde_json::to_vec(&record).map_err(|e| encode("audit record", e))?;
        encoded.push((record.seq.to_be_bytes(), bytes));
        receipts.push(AuditReceipt {
            seq: record.seq,
            hash: record.hash.clone(),
        });
        previous = Head {
            seq: record.seq,
            hash: record.hash,
        };
    }
    let head_bytes = serde_json::to_vec(&previous).map_err(|e| encode("audit head", e))?;
    // Records and the head move together, or not at all.
    let mut records = sled::Batch::default();
    for (key, value) in encoded {
        records.insert(&key, value);
    }
    let mut head_batch = sled::Batch::default();
    head_batch.insert(HEAD_KEY, head_bytes);
    use sled::Transactional as _;
    (audit, meta)
        .transaction(|(audit, meta)| {
            audit.apply_batch(&records)?;
            meta.apply_batch(&head_batch)?;
            Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
        })
        .map_err(|error| match error {
            sled::transaction::TransactionError::Storage(error) => RunsError::Sled(error),
            sled::transaction::TransactionError::Abort(()) => RunsError::Closed,
        })?;
    db.flush()?;
    Ok(receipts)
}

/// What is wrong with the log, at the first record where something is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The first bad record's sequence number.
    pub seq: u64,
    /// `edited`, `missing`, `reordered`, `unreadable` or `truncated`.
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records that verified before the first problem (all of them when there is none).
    pub verified: u64,
    /// The hash of the last verified record.
    pub head_hash: String,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Store {
    /// Append to the audit log (group-committed; returns once on disk).
    pub async fn append_audit(&self, draft: AuditDraft) -> Result<AuditReceipt> {
        self.inner.audit_log.append(draft).await
    }

    /// Walk the chain from the first record and report the first one that was edited,
    /// dropped or reordered.
    pub fn verify_audit(&self) -> Result<VerifyReport> {
        let mut expected = 1u64;
        let mut previous = GENESIS.to_owned();
        let problem = |seq: u64, kind: &str, detail: String| Problem {
            seq,
            kind: kind.into(),
            detail,
        };
        for entry in self.inner.audit.iter() {
            let (key, value) = entry?;
            let Ok(key) = <[u8; 8]>::try_from(key.as_ref()) else {
                return Ok(self.report(
                    expected,
                    previous,
                    Some(problem(
                        expected,
                        "unreadable",
                        "a key that is not a sequence number".into(),
                    )),
                ));
            };
            let key = u64::from_be_bytes(key);
            if key != expected {
                let detail = if key > expected {
                    format!(
                        "record {expected} is missing: the record after {} is {key}",
                        expected - 1
                    )
                } else {
                    format!("record {key} appears again after {}", expected - 1)
                };
                return Ok(self.report(
                    expected,
                    previous,
                    Some(problem(expected, "missing", detail)),
                ));
            }
            let record: AuditRecord = match serde_json::from_slice(&value) {
                Ok(record) => record,
                Err(error) => {
                    let detail =
                        format!("record {key} does not parse ({error}): its bytes were edited");
                    return Ok(self.report(
                        expected,
                        previous,
                        Some(problem(key, "unreadable", detail)),
                    ));
                }
            };
            if record.seq != key {
                let detail = format!(
                    "position {key} holds record {}: records were reordered",
                    record.seq
                );
                return Ok(self.report(
                    expected,
                    previous,
                    Some(problem(key, "reordered", detail)),
                ));
            }
            if record.prev_hash != previous {
                let detail = format!(
                    "record {key} does not chain to record {}: a record before it was replaced or removed",
                    key - 1
                );
                return Ok(self.report(
                    expected,
                    previous,
                    Some(problem(key, "reordered", detail)),
                ));
            }
            if record.digest()? != record.hash {
                let detail = format!("record {key} does not match its hash: it was edited");
                return Ok(self.report(expected, previous, Some(problem(key, "edited", detail))));
            }
            previous = record.hash;
            expected += 1;
        }
        let head = match self.inner.meta.get(HEAD_KEY)? {
            Some(bytes) => {
                Some(serde_json::from_slice::<Head>(&bytes).map_err(|e| corrupt("audit head", e))?)
            }
            None => None,
        };
        let last = expected - 1;
        let truncated = match &head {
            Some(head) if head.seq != last || head.hash != previous => Some(problem(
                last + 1,
                "truncated",
                format!(
                    "the log ends at record {last}, but its head says {}",
                    head.seq
                ),
            )),
            None if last > 0 => Some(problem(
                last,
                "truncated",
                "the log has records but no head".into(),
            )),
            Some(_) | None => None,
        };
        Ok(self.report(expected, previous, truncated))
    }

    fn report(&self, expected: u64, head_hash: String, problem: Option<Problem>) -> VerifyReport {
        VerifyReport {
            verified: expected - 1,
            head_hash,
            problem,
        }
    }

    /// Every audit record, in order.
    pub fn audit_records(&self) -> impl Iterator<Item = Result<AuditRecord>> + '_ {
        self.inner.audit.iter().map(|entry| {
            let (_, value) = entry?;
            serde_json::from_slice(&value).map_err(|e| corrupt("audit record", e))
        })
    }
}
