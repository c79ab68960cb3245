//! Walking the audit chain: the first record that was edited, dropped, reordered or cannot be
//! read, named by its sequence number whatever was damaged.

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, GENESIS, HEAD_KEY, Head};
use crate::{Result, Store};

/// What kind of damage a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A record's bytes were changed: it does not match its hash.
    Edited,
    /// A record is absent where the chain needs it.
    Missing,
    /// Records are out of order, or a record does not chain to the one before it.
    Reordered,
    /// The stored bytes where a record belongs cannot be read or parsed.
    Unreadable,
    /// The log ends before records it is known to have had.
    Truncated,
    /// The write-ahead segment is gone (or replaced) after an unclean stop.
    WalMissing,
    /// A record in the write-ahead segment was damaged.
    WalDamaged,
    /// A signed checkpoint names a hash the chain no longer has there: it was rewritten.
    CheckpointMismatch,
    /// A checkpoint's signature does not verify with the given key.
    BadSignature,
}

impl ProblemKind {
    /// The snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Missing => "missing",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::Truncated => "truncated",
            ProblemKind::WalMissing => "wal_missing",
            ProblemKind::WalDamaged => "wal_damaged",
            ProblemKind::CheckpointMismatch => "checkpoint_mismatch",
            ProblemKind::BadSignature => "bad_signature",
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with the log, at the first record where something is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The first bad record's sequence number.
    pub seq: u64,
    /// What kind of damage.
    pub kind: ProblemKind,
    /// In words.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {} ({}): {}", self.seq, self.kind, self.detail)
    }
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

/// One stored line: the chunk it is in (its key, the chunk's first sequence number), and the
/// record or why there is none.
type Line = (u64, std::result::Result<AuditRecord, String>);

/// The stored lines from the chunk holding record `from` on (from the first when `from` ≤ 1).
/// A chunk sled cannot read ends the walk with an `Err` naming what was read last.
fn lines(audit: &sled::Tree, from: u64) -> impl Iterator<Item = std::result::Result<Line, String>> {
    let start = if from > 1 {
        match audit.range(..=from.to_be_bytes()).next_back() {
            Some(Ok((key, _))) => key.to_vec(),
            _ => Vec::new(),
        }
    } else {
        Vec::new()
    };
    audit.range(start..).flat_map(|entry| {
        let (key, value) = match entry {
            Ok(found) => found,
            Err(error) => return vec![Err(error.to_string())],
        };
        let chunk = <[u8; 8]>::try_from(key.as_ref()).map_or(0, u64::from_be_bytes);
        value
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(line_no, line)| {
                let record = serde_json::from_slice::<AuditRecord>(line).map_err(|error| {
                    format!(
                        "line {} of the chunk starting at record {chunk} does not parse ({error})",
                        line_no + 1
                    )
                });
                Ok((chunk, record))
            })
            .collect::<Vec<_>>()
    })
}

/// Walk the chain in `audit` from record `from` (1: from the genesis) and compare its end with
/// the head in `meta`. `previous` is the hash record `from` must chain to; `None` takes it as
/// given.
pub(crate) fn walk(
    audit: &sled::Tree,
    meta: &sled::Tree,
    from: u64,
    previous: Option<String>,
) -> VerifyReport {
    let from = from.max(1);
    let mut expected = from;
    let mut previous = previous.or_else(|| (from == 1).then(|| GENESIS.to_owned()));
    let report = |expected: u64, previous: Option<String>, kind, detail: String| VerifyReport {
        verified: expected - 1,
        head_hash: previous.unwrap_or_default(),
        problem: Some(Problem {
            seq: expected,
            kind,
            detail,
        }),
    };
    for line in lines(audit, from) {
        let (chunk, record) = match line {
            Ok(line) => line,
            Err(error) => {
                let detail = format!(
                    "the store cannot read the records from {expected} on ({error}): its files were damaged"
                );
                return report(expected, previous, ProblemKind::Unreadable, detail);
            }
        };
        let record = match record {
            Ok(record) => record,
            Err(why) => {
                let detail = format!("record {expected}: {why}: its bytes were edited");
                return report(expected, previous, ProblemKind::Unreadable, detail);
            }
        };
        if record.seq < from && expected == from {
            continue;
        }
        if record.seq != expected {
            let (kind, detail) = out_of_place(audit, &record, expected, chunk);
            return report(expected, previous, kind, detail);
        }
        if let Some((kind, detail)) = broken_link(&record, previous.as_deref()) {
            return report(expected, previous, kind, detail);
        }
        previous = Some(record.hash);
        expected += 1;
    }
    let head_hash = previous.unwrap_or_default();
    let problem = compare_head(meta, expected - 1, &head_hash);
    VerifyReport {
        verified: expected - 1,
        head_hash,
        problem,
    }
}

/// What is wrong with `record`, in its place, as the successor of the record whose hash is
/// `previous` (`None`: taken as given): it does not chain, or does not match its own hash.
pub(crate) fn broken_link(
    record: &AuditRecord,
    previous: Option<&str>,
) -> Option<(ProblemKind, String)> {
    let seq = record.seq;
    if previous.is_some_and(|p| p != record.prev_hash) {
        let detail = format!(
            "record {seq} does not chain to record {}: a record before it was replaced or removed",
            seq.saturating_sub(1)
        );
        return Some((ProblemKind::Reordered, detail));
    }
    if record.digest().ok().as_deref() != Some(record.hash.as_str()) {
        let detail = format!("record {seq} does not match its hash: it was edited");
        return Some((ProblemKind::Edited, detail));
    }
    None
}

/// Why `record` is where record `expected` belongs.
fn out_of_place(
    audit: &sled::Tree,
    record: &AuditRecord,
    expected: u64,
    chunk: u64,
) -> (ProblemKind, String) {
    // Is the expected record stored later? A second, rarely needed pass.
    let later = lines(audit, chunk).any(|line| {
        line.is_ok_and(|(_, r)| r.is_ok_and(|r| r.seq == expected && r.seq != record.seq))
    });
    if later {
        let detail = format!(
            "record {} is stored where record {expected} belongs: records were reordered",
            record.seq
        );
        (ProblemKind::Reordered, detail)
    } else if record.seq > expected {
        let detail = format!(
            "record {expected} is missing: the record after {} is {}",
            expected - 1,
            record.seq
        );
        (ProblemKind::Missing, detail)
    } else {
        let detail = format!("record {} appears again after {}", record.seq, expected - 1);
        (ProblemKind::Reordered, detail)
    }
}

/// The head is written after its records, so it may lag a record being appended right now; it
/// may never be ahead of the log.
fn compare_head(meta: &sled::Tree, last: u64, hash: &str) -> Option<Problem> {
    let problem = |seq, kind, detail: String| Some(Problem { seq, kind, detail });
    let head = match meta.get(HEAD_KEY) {
        Ok(Some(bytes)) => match serde_json::from_slice::<Head>(&bytes) {
            Ok(head) => Some(head),
            Err(error) => {
                let detail = format!("the stored head of the log does not decode ({error})");
                return problem(last + 1, ProblemKind::Unreadable, detail);
            }
        },
        Ok(None) => None,
        Err(error) => {
            let detail = format!("the store cannot read the head of the log ({error})");
            return problem(last + 1, ProblemKind::Unreadable, detail);
        }
    };
    head_problem(head.as_ref(), last, hash)
}

/// What is wrong with a chain that verified up to record `last` (hash `hash`) and whose stored
/// head is `head`. The head is written with its records, so it may never be ahead of the log.
pub(crate) fn head_problem(head: Option<&Head>, last: u64, hash: &str) -> Option<Problem> {
    let problem = |seq, kind, detail: String| Some(Problem { seq, kind, detail });
    match head {
        Some(head) if head.seq > last => problem(
            last + 1,
            ProblemKind::Truncated,
            format!(
                "the log ends at record {last}, but its head says {}",
                head.seq
            ),
        ),
        Some(head) if head.seq == last && head.hash != hash => problem(
            last,
            ProblemKind::Edited,
            format!("record {last} is not the record the head names"),
        ),
        None if last > 0 => problem(
            last,
            ProblemKind::Truncated,
            "the log has records but no head".into(),
        ),
        Some(_) | None => None,
    }
}

impl Store {
    /// Walk the chain from the first record and report the first one that was edited,
    /// dropped, reordered or cannot be read; then, if the chain is whole, what the audit log
    /// found wrong with its write-ahead segment at open (records answered but lost).
    pub fn verify_audit(&self) -> Result<VerifyReport> {
        let mut report = walk(&self.inner.audit, &self.inner.meta, 1, None);
        if report.problem.is_none() {
            report.problem = self.inner.audit_log.refusal();
        }
        Ok(report)
    }

    /// Every audit record, in order.
    pub fn audit_records(&self) -> impl Iterator<Item = Result<AuditRecord>> + '_ {
        lines(&self.inner.audit, 1).map(|line| match line {
            Ok((_, Ok(record))) => Ok(record),
            Ok((_, Err(why))) => Err(crate::error::corrupt("audit record", why)),
            Err(why) => Err(crate::error::corrupt("audit chunk", why)),
        })
    }
}
