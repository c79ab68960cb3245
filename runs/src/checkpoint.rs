//! Signed checkpoints of the audit chain's head, after Certificate Transparency's signed tree
//! heads: every so many records or seconds, the writer signs `(seq, hash, time)` with an
//! ed25519 key kept outside the data folder and appends the signature to a file an operator can
//! ship elsewhere. Whoever can write the store can rewrite the chain consistently, but cannot
//! sign: [`Store::verify_checkpoints`] then finds a checkpointed record whose hash changed.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::audit::Head;
use crate::canonical::hex;
use crate::verify::{Problem, ProblemKind};
use crate::{Result, RunsError, Store};

/// The checkpoint key: an ed25519 signing key and its id.
#[derive(Clone)]
pub struct CheckpointKey {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

fn key_error(path: &Path, reason: impl Into<String>) -> RunsError {
    RunsError::CheckpointKey {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Decode 32 bytes given raw or as 64 hex digits (surrounding whitespace ignored).
fn key_bytes(bytes: &[u8]) -> Option<[u8; 32]> {
    if let Ok(raw) = <[u8; 32]>::try_from(bytes) {
        return Some(raw);
    }
    let text = std::str::from_utf8(bytes).ok()?.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * index..2 * index + 2)?, 16).ok()?;
    }
    Some(out)
}

impl CheckpointKey {
    /// The key whose 32-byte seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> CheckpointKey {
        CheckpointKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<CheckpointKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| key_error(Path::new("(new key)"), format!("no OS randomness: {e}")))?;
        Ok(CheckpointKey::from_seed(seed))
    }

    /// Load the seed in `path` (32 raw bytes, or 64 hex digits). A key inside `data_dir` is
    /// refused: whoever can write the store could then sign a rewritten chain.
    pub fn load(path: &Path, data_dir: &Path) -> Result<CheckpointKey> {
        let file = path
            .canonicalize()
            .map_err(|e| key_error(path, format!("cannot read it: {e}")))?;
        if let Ok(data) = data_dir.canonicalize()
            && file.starts_with(&data)
        {
            return Err(key_error(
                path,
                format!(
                    "it is inside the data folder `{}`; whoever can write the store could sign a rewritten log with it: keep the key elsewhere",
                    data.display()
                ),
            ));
        }
        let bytes =
            std::fs::read(&file).map_err(|e| key_error(path, format!("cannot read it: {e}")))?;
        let seed = key_bytes(&bytes)
            .ok_or_else(|| key_error(path, "not a 32-byte seed (raw, or 64 hex digits)"))?;
        Ok(CheckpointKey::from_seed(seed))
    }

    /// The seed, as 64 hex digits (what `load` reads).
    pub fn seed_hex(&self) -> String {
        hex(self.key.as_bytes())
    }

    /// The public key, as 64 hex digits.
    pub fn public_key_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// First 16 hex digits of the SHA-256 of the public key.
    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    fn sign(&self, head: &Head, time: &str) -> Checkpoint {
        let signature = self
            .key
            .sign(message(head.seq, &head.hash, time).as_bytes());
        Checkpoint {
            hash: head.hash.clone(),
            key_id: self.key_id(),
            seq: head.seq,
            signature: hex(&signature.to_bytes()),
            time: time.to_owned(),
        }
    }
}

fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes()))[..16].to_owned()
}

/// Parse a public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey> {
    let bad = |reason: &str| key_error(Path::new("(public key)"), reason);
    let bytes = key_bytes(text.trim().as_bytes()).ok_or_else(|| bad("not 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not an ed25519 public key"))
}

/// The message a checkpoint signs.
fn message(seq: u64, hash: &str, time: &str) -> String {
    format!("baton-audit-checkpoint:v1:{seq}:{hash}:{time}")
}

/// One signed checkpoint, one JSON line of the checkpoint file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The hash of record `seq`.
    pub hash: String,
    /// Which key signed (first 16 hex digits of the SHA-256 of its public key).
    pub key_id: String,
    /// The record signed for.
    pub seq: u64,
    /// ed25519 over `baton-audit-checkpoint:v1:<seq>:<hash>:<time>`, hex.
    pub signature: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
}

/// When and where the audit writer signs checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The signing key.
    pub key: CheckpointKey,
    /// Sign after at most this many records.
    pub every: u64,
    /// Sign at least this often while records are appended.
    pub interval: Duration,
    /// The file checkpoints are appended to (JSON lines).
    pub file: PathBuf,
}

/// The writer's side: signs when due, off the callers' path (after a batch is answered).
pub(crate) struct Checkpointer {
    config: CheckpointConfig,
    file: Option<std::fs::File>,
    last_seq: u64,
    last_time: Instant,
}

impl Checkpointer {
    pub(crate) fn new(config: CheckpointConfig) -> Checkpointer {
        let last_seq = last_checkpoint(&config.file).map_or(0, |c| c.seq);
        Checkpointer {
            config,
            file: None,
            last_seq,
            last_time: Instant::now(),
        }
    }

    /// How long the writer may wait for records before a checkpoint of `head` is due.
    pub(crate) fn due_in(&self, head: &Head) -> Option<Duration> {
        (head.seq > self.last_seq).then(|| {
            self.config
                .interval
                .saturating_sub(self.last_time.elapsed())
        })
    }

    /// Sign `head` if enough records or time have passed (or `force`, on close).
    pub(crate) fn maybe_sign(&mut self, head: &Head, force: bool) {
        if head.seq <= self.last_seq {
            return;
        }
        let due = force
            || head.seq - self.last_seq >= self.config.every
            || self.last_time.elapsed() >= self.config.interval;
        if !due {
            return;
        }
        match self.sign(head) {
            Ok(()) => {
                self.last_seq = head.seq;
                self.last_time = Instant::now();
            }
            Err(error) => tracing::error!(%error, seq = head.seq, "audit checkpoint not written"),
        }
    }

    fn sign(&mut self, head: &Head) -> Result<()> {
        let path = &self.config.file;
        let io = crate::wal::io_error(path);
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(&io)?,
            ),
        };
        let time = crate::time::rfc3339(crate::time::now_millis());
        let checkpoint = self.config.key.sign(head, &time);
        let mut line = serde_json::to_vec(&checkpoint)
            .map_err(|e| crate::error::encode("audit checkpoint", e))?;
        line.push(b'\n');
        file.write_all(&line).map_err(&io)?;
        file.sync_data().map_err(&io)?;
        Ok(())
    }
}

/// The last checkpoint in `file`, if any parses.
fn last_checkpoint(file: &Path) -> Option<Checkpoint> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(file).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    tail.split(|&b| b == b'\n')
        .rev()
        .find_map(|line| serde_json::from_slice(line).ok())
}

/// The result of checking a checkpoint file against the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// Checkpoints whose signature and record verified before the first problem.
    pub verified: u64,
    /// The last record a verified checkpoint covers: the log up to it was not rewritten.
    pub covered_seq: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// The checkpoints of `text` whose signatures verify, up to the first that does not (named).
fn signed(text: &str, key: &VerifyingKey) -> (Vec<Checkpoint>, Option<Problem>) {
    let id = key_id(key);
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match check_line(line, index + 1, key, &id) {
            Ok(checkpoint) => out.push(checkpoint),
            Err(problem) => return (out, Some(problem)),
        }
    }
    (out, None)
}

fn check_line(
    line: &str,
    line_no: usize,
    key: &VerifyingKey,
    id: &str,
) -> std::result::Result<Checkpoint, Problem> {
    let bad = |seq: u64, why: String| Problem {
        seq,
        kind: ProblemKind::BadSignature,
        detail: format!("checkpoint line {line_no} (record {seq}): {why}"),
    };
    let checkpoint: Checkpoint =
        serde_json::from_str(line).map_err(|e| bad(0, format!("does not parse ({e})")))?;
    let seq = checkpoint.seq;
    if checkpoint.key_id != id {
        let why = format!("signed by key {}, not {id}", checkpoint.key_id);
        return Err(bad(seq, why));
    }
    let signature = key_bytes_64(&checkpoint.signature)
        .map(|bytes| Signature::from_bytes(&bytes))
        .ok_or_else(|| bad(seq, "the signature is not 128 hex digits".into()))?;
    let signed = message(seq, &checkpoint.hash, &checkpoint.time);
    if key.verify_strict(signed.as_bytes(), &signature).is_err() {
        let why = "the signature does not verify: the line was forged or edited".into();
        return Err(bad(seq, why));
    }
    Ok(checkpoint)
}

fn key_bytes_64(text: &str) -> Option<[u8; 64]> {
    let (a, b) = (text.get(..64)?, text.get(64..)?);
    let (a, b) = (key_bytes(a.as_bytes())?, key_bytes(b.as_bytes())?);
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&a);
    out[32..].copy_from_slice(&b);
    Some(out)
}

/// The checkpoints of a file whose signatures verify, by the record each signs, and the first
/// line that did not verify. Every backend checks its chain against them through
/// [`SignedCheckpoints::judge`].
pub(crate) struct SignedCheckpoints {
    wanted: BTreeMap<u64, Vec<Checkpoint>>,
    problem: Option<Problem>,
}

impl SignedCheckpoints {
    /// Read `file` and check its signatures with `public_key`.
    pub(crate) fn read(file: &Path, public_key: &VerifyingKey) -> Result<SignedCheckpoints> {
        let text = std::fs::read_to_string(file).map_err(crate::wal::io_error(file))?;
        let (checkpoints, problem) = signed(&text, public_key);
        let mut wanted: BTreeMap<u64, Vec<Checkpoint>> = BTreeMap::new();
        for checkpoint in checkpoints {
            wanted.entry(checkpoint.seq).or_default().push(checkpoint);
        }
        Ok(SignedCheckpoints { wanted, problem })
    }

    /// The records the checkpoints sign, ascending.
    pub(crate) fn seqs(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        self.wanted.keys().copied()
    }

    /// Check them against the chain, given its hashes at [`SignedCheckpoints::seqs`] (those
    /// that exist) and its last sequence number: record `seq` must still have the signed hash.
    /// Names the first checkpoint that fails; a consistent rewrite of the chain fails at the
    /// first checkpoint after it.
    pub(crate) fn judge(self, hashes: &BTreeMap<u64, String>, last: u64) -> CheckpointReport {
        let mut report = CheckpointReport {
            verified: 0,
            covered_seq: 0,
            problem: None,
        };
        for (seq, signed) in self.wanted {
            let Some(hash) = hashes.get(&seq) else {
                report.problem = Some(Problem {
                    seq,
                    kind: ProblemKind::Truncated,
                    detail: format!(
                        "a checkpoint signed record {seq}, but the log ends at record {last}: records were removed"
                    ),
                });
                return report;
            };
            for checkpoint in signed {
                if checkpoint.hash != *hash {
                    report.problem = Some(Problem {
                        seq,
                        kind: ProblemKind::CheckpointMismatch,
                        detail: format!(
                            "record {seq} has hash {hash}, but the checkpoint signed at {} says {}: the log up to record {seq} was rewritten",
                            checkpoint.time, checkpoint.hash
                        ),
                    });
                    return report;
                }
                report.verified += 1;
                report.covered_seq = seq;
            }
        }
        report.problem = self.problem;
        report
    }
}

impl Store {
    /// Check the checkpoints in `file` against this store's chain (see
    /// [`SignedCheckpoints::judge`]).
    pub fn verify_checkpoints(
        &self,
        file: &Path,
        public_key: &VerifyingKey,
    ) -> Result<CheckpointReport> {
        let signed = SignedCheckpoints::read(file, public_key)?;
        let mut hashes = BTreeMap::new();
        let mut last = 0;
        if let Some(highest) = signed.seqs().next_back() {
            for record in self.audit_records() {
                let record = record?;
                last = record.seq;
                if signed.wanted.contains_key(&record.seq) {
                    hashes.insert(record.seq, record.hash);
                }
                if record.seq >= highest {
                    break;
                }
            }
        }
        Ok(signed.judge(&hashes, last))
    }
}
