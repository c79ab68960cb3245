use std::borrow::Cow;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::mpsc;
use std::thread;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::canonical::hex;
use crate::error::{corrupt, encode};
use crate::time::rfc3339;
use crate::{Result, RunsError, Store};

/// Key of the chain's head in the `meta` tree.
const HEAD_KEY: &[u8] = b"audit_head";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest batch one flush covers; beyond it the next flush takes the rest.
const MAX_BATCH: usize = 4096;
/// Under load, the shortest time from one sync's start to the next. A sync costs the same
/// whatever it carries (on this project's 2-core VM about 70 µs of CPU under load, and a
/// wake-up per waiting thread), so back-to-back syncs of a few records each spend the CPU the
/// calls need. The writer waits for this long only while fewer records are queued than the
/// previous batch held: a lone caller, or callers who all came back, are written at once.
const PACE: std::time::Duration = std::time::Duration::from_millis(1);
/// Size of the write-ahead segment. It is written full of zeros once, so that a sync after
/// each batch writes data only (a growing file also commits its new size: twice the cost).
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// The policy decision behind a call, as audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// `allow`, `needs_approval` or `forbid`.
    pub kind: Cow<'static, str>,
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
    /// `ok`, `error`, `denied` or `pending_approval`.
    pub status: Cow<'static, str>,
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
    /// Position in the log, from 1.
    pub seq: u64,
    /// When the call started (RFC 3339, UTC).
    pub time: String,
    /// Which tool.
    pub tool: String,
}

impl AuditRecord {
    /// The hash this record should carry: SHA-256 of its canonical JSON without `hash`.
    fn digest(&self) -> Result<String> {
        if self.hash.is_empty() {
            return self.digest_unhashed();
        }
        let mut unhashed = self.clone();
        unhashed.hash.clear();
        unhashed.digest_unhashed()
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
///
/// Durability comes from a write-ahead segment (`audit.wal`): each batch is written there and
/// `fdatasync`ed before anyone is answered, then indexed in the sled `audit` tree as one entry
/// per batch (key: its first sequence number; value: its records as JSON lines), which sled
/// flushes in the background. Opening the store replays what sled lacks. Measured on this
/// project's machines, a sled flush per batch cost 4–8× the CPU, and a sled key per record
/// 5.6× the CPU, of this design (docs/benchmarks.md).
pub struct AuditLog {
    sender: std::sync::RwLock<Option<mpsc::Sender<Pending>>>,
    writer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    gather: std::sync::Arc<Gather>,
    writer_thread: thread::Thread,
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
    gather: std::sync::Arc<Gather>,
    db: sled::Db,
    audit: sled::Tree,
    meta: sled::Tree,
    wal: std::fs::File,
    wal_path: std::path::PathBuf,
    offset: u64,
    head: Head,
}

fn read_head(meta: &sled::Tree) -> Result<Head> {
    match meta.get(HEAD_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt("audit head", e)),
        None => Ok(Head {
            seq: 0,
            hash: GENESIS.into(),
        }),
    }
}

fn io_error(path: &std::path::Path) -> impl Fn(std::io::Error) -> RunsError + '_ {
    move |source| RunsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The records of the write-ahead segment that extend the chain past `head`: whole lines in
/// order, up to the first line that is not one (zeros, a torn write, or an older cycle's
/// leftovers, which all lie below the head and are skipped).
fn unindexed(bytes: &[u8], head: &Head) -> Vec<(AuditRecord, Vec<u8>)> {
    let mut out = Vec::new();
    let mut tip = head.clone();
    for line in bytes.split(|&b| b == b'\n') {
        let Ok(record) = serde_json::from_slice::<AuditRecord>(line) else {
            if line.first().is_some_and(|&b| b != 0) && tip.seq > head.seq {
                break;
            }
            continue;
        };
        if record.seq <= tip.seq {
            continue;
        }
        if record.seq != tip.seq + 1 || record.prev_hash != tip.hash {
            break;
        }
        tip = Head {
            seq: record.seq,
            hash: record.hash.clone(),
        };
        out.push((record, line.to_vec()));
    }
    out
}

/// Bring sled up to date with the write-ahead segment (records a crash left only there) and
/// flush it. Returns the head.
fn recover(
    db: &sled::Db,
    audit: &sled::Tree,
    meta: &sled::Tree,
    wal_path: &std::path::Path,
) -> Result<Head> {
    let mut head = read_head(meta)?;
    let bytes = match std::fs::read(wal_path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(io_error(wal_path)(error)),
    };
    let records = unindexed(&bytes, &head);
    if let (Some((first, _)), Some((last, _))) = (records.first(), records.last()) {
        let mut chunk = Vec::new();
        for (_, line) in &records {
            chunk.extend_from_slice(line);
            chunk.push(b'\n');
        }
        audit.insert(first.seq.to_be_bytes(), chunk)?;
        head = Head {
            seq: last.seq,
            hash: last.hash.clone(),
        };
        meta.insert(
            HEAD_KEY,
            serde_json::to_vec(&head).map_err(|e| encode("audit head", e))?,
        )?;
        tracing::info!(
            records = records.len(),
            "audit records recovered from the write-ahead segment"
        );
    }
    db.flush()?;
    Ok(head)
}

/// Open the write-ahead segment, writing it full of zeros the first time.
fn open_segment(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::FileExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    if len < SEGMENT_BYTES {
        let zeros = vec![0u8; 1 << 20];
        let mut at = len;
        while at < SEGMENT_BYTES {
            file.write_all_at(&zeros, at).map_err(io_error(path))?;
            at += zeros.len() as u64;
        }
        file.sync_all().map_err(io_error(path))?;
    }
    Ok(file)
}

impl AuditLog {
    pub(crate) fn start(
        db: sled::Db,
        audit: sled::Tree,
        meta: sled::Tree,
        wal_path: std::path::PathBuf,
    ) -> Result<AuditLog> {
        let head = recover(&db, &audit, &meta, &wal_path)?;
        let wal = open_segment(&wal_path)?;
        let gather = std::sync::Arc::new(Gather {
            queued: std::sync::atomic::AtomicUsize::new(0),
            wake_at: std::sync::atomic::AtomicUsize::new(usize::MAX),
        });
        let mut writer = Writer {
            gather: gather.clone(),
            db,
            audit,
            meta,
            wal,
            wal_path,
            // sled holds everything up to `head` now: the segment starts over.
            offset: 0,
            head,
        };
        let (sender, receiver) = mpsc::channel::<Pending>();
        let thread = thread::Builder::new()
            .name("baton-audit".into())
            .spawn(move || writer.run(&receiver))
            .map_err(|source| RunsError::Io {
                path: "audit writer thread".into(),
                source,
            })?;
        Ok(AuditLog {
            sender: std::sync::RwLock::new(Some(sender)),
            writer_thread: thread.thread().clone(),
            writer: std::sync::Mutex::new(Some(thread)),
            gather,
        })
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
            return Err(RunsError::Closed);
        }
        if queued == self.gather.wake_at.load(SeqCst) {
            self.writer_thread.unpark();
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
}

impl Writer {
    fn run(&mut self, receiver: &mpsc::Receiver<Pending>) {
        // As many records as the previous batch held: the callers it answered, when they
        // come back, make a batch as large without waiting longer than `PACE` for them.
        let mut target = 1usize;
        let mut last_sync = std::time::Instant::now();
        while let Ok(first) = receiver.recv() {
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
            let (drafts, waiting): (Vec<AuditDraft>, Vec<_>) = batch
                .into_iter()
                .map(|pending| (pending.draft, pending.done))
                .unzip();
            match self.commit(drafts) {
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
        // Closing: make sled hold everything, so the next open has nothing to replay.
        if let Err(error) = self.db.flush() {
            tracing::error!(%error, "audit flush on close failed; the next open replays");
        }
    }

    fn commit(&mut self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditReceipt>> {
        use std::os::unix::fs::FileExt as _;
        let mut previous = self.head.clone();
        let mut lines = Vec::with_capacity(drafts.len() * 512);
        let mut receipts = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let mut record = AuditRecord {
                approval_id: draft.approval_id,
                args_digest: draft.args_digest,
                decision: draft.decision,
                duration_us: draft.duration_us,
                hash: String::new(),
                outcome: draft.outcome,
                prev_hash: previous.hash,
                principal: draft.principal,
                seq: previous.seq + 1,
                time: rfc3339(draft.time_ms),
                tool: draft.tool,
            };
            record.hash = record.digest_unhashed()?;
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
        if self.offset + lines.len() as u64 > SEGMENT_BYTES {
            // The segment is full: make sled durable, then reuse the segment from the start.
            self.db.flush()?;
            self.offset = 0;
        }
        // Durable first: once this returns, the batch survives a crash.
        self.wal
            .write_all_at(&lines, self.offset)
            .map_err(io_error(&self.wal_path))?;
        self.wal.sync_data().map_err(io_error(&self.wal_path))?;
        self.offset += lines.len() as u64;
        // Then indexed: the chunk, then the head — a reader never sees a head past the log.
        self.audit.insert(first.to_be_bytes(), lines)?;
        self.meta.insert(
            HEAD_KEY,
            serde_json::to_vec(&previous).map_err(|e| encode("audit head", e))?,
        )?;
        self.head = previous;
        Ok(receipts)
    }
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
        // Records in stored order, or why a line is not one.
        let mut stored: Vec<std::result::Result<(AuditRecord, String), String>> = Vec::new();
        for entry in self.inner.audit.iter() {
            let (key, value) = entry?;
            let chunk = <[u8; 8]>::try_from(key.as_ref()).map_or(0, u64::from_be_bytes);
            for (line_no, line) in value
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .enumerate()
            {
                stored.push(match serde_json::from_slice::<AuditRecord>(line) {
                    Ok(record) => {
                        let digest = record.digest()?;
                        Ok((record, digest))
                    }
                    Err(error) => Err(format!(
                        "line {} of the chunk starting at record {chunk} does not parse ({error})",
                        line_no + 1
                    )),
                });
            }
        }
        let mut expected = 1u64;
        let mut previous = GENESIS.to_owned();
        let problem = |seq: u64, kind: &str, detail: String| {
            Some(Problem {
                seq,
                kind: kind.into(),
                detail,
            })
        };
        for (position, entry) in stored.iter().enumerate() {
            let (record, digest) = match entry {
                Ok(found) => found,
                Err(why) => {
                    return Ok(self.report(
                        expected,
                        previous,
                        problem(
                            expected,
                            "unreadable",
                            format!("record {expected}: {why}: its bytes were edited"),
                        ),
                    ));
                }
            };
            if record.seq != expected {
                let later = stored[position + 1..]
                    .iter()
                    .any(|e| e.as_ref().is_ok_and(|(r, _)| r.seq == expected));
                let detail = if later {
                    format!(
                        "record {} is stored where record {expected} belongs: records were reordered",
                        record.seq
                    )
                } else if record.seq > expected {
                    format!(
                        "record {expected} is missing: the record after {} is {}",
                        expected - 1,
                        record.seq
                    )
                } else {
                    format!("record {} appears again after {}", record.seq, expected - 1)
                };
                let kind = if later { "reordered" } else { "missing" };
                return Ok(self.report(expected, previous, problem(expected, kind, detail)));
            }
            if record.prev_hash != previous {
                let detail = format!(
                    "record {expected} does not chain to record {}: a record before it was replaced or removed",
                    expected - 1
                );
                return Ok(self.report(expected, previous, problem(expected, "reordered", detail)));
            }
            if *digest != record.hash {
                let detail = format!("record {expected} does not match its hash: it was edited");
                return Ok(self.report(expected, previous, problem(expected, "edited", detail)));
            }
            previous.clone_from(&record.hash);
            expected += 1;
        }
        let head = match self.inner.meta.get(HEAD_KEY)? {
            Some(bytes) => {
                Some(serde_json::from_slice::<Head>(&bytes).map_err(|e| corrupt("audit head", e))?)
            }
            None => None,
        };
        let last = expected - 1;
        // The head is written after its records, so it may lag a record being appended right
        // now; it may never be ahead of the log.
        let truncated = match &head {
            Some(head) if head.seq > last => problem(
                last + 1,
                "truncated",
                format!(
                    "the log ends at record {last}, but its head says {}",
                    head.seq
                ),
            ),
            Some(head) if head.seq == last && head.hash != previous => problem(
                last,
                "edited",
                format!("record {last} is not the record the head names"),
            ),
            None if last > 0 => {
                problem(last, "truncated", "the log has records but no head".into())
            }
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
        self.inner.audit.iter().flat_map(|entry| {
            let records: Vec<Result<AuditRecord>> = match entry {
                Ok((_, value)) => value
                    .split(|&b| b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| {
                        serde_json::from_slice(line).map_err(|e| corrupt("audit record", e))
                    })
                    .collect(),
                Err(error) => vec![Err(error.into())],
            };
            records
        })
    }
}
