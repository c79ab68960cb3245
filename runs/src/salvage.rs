//! Naming damaged audit records when the database itself no longer opens (sled checks its
//! own files and refuses edited ones as a whole): the records are found in the raw files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::audit::AuditRecord;
use crate::verify::{Problem, ProblemKind, VerifyReport};
use crate::{Result, RunsError};

/// What was found of one record in the raw files.
#[derive(Default)]
struct Copies {
    good: Option<String>,
    bad: Option<(ProblemKind, String)>,
}

/// Walk the audit records that the files of the store in `data_dir` still hold, without
/// opening the database: for a store whose database no longer opens ([`RunsError::Damaged`]).
/// Reports the first record of which an edited or unreadable copy exists, or the first one
/// no file holds.
pub fn salvage_audit(data_dir: &Path) -> Result<VerifyReport> {
    let mut found: BTreeMap<u64, Copies> = BTreeMap::new();
    let mut files = vec![data_dir.join("audit.wal")];
    for dir in [data_dir.join("store"), data_dir.join("store").join("blobs")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    for file in &files {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RunsError::Io {
                    path: file.clone(),
                    source,
                });
            }
        };
        let name = file
            .strip_prefix(data_dir)
            .unwrap_or(file)
            .display()
            .to_string();
        scan_raw(&bytes, &name, &mut found);
    }
    Ok(report(&found))
}

/// Every record line in `bytes` (a line holding `"args_digest":`), checked against its hash.
fn scan_raw(bytes: &[u8], file: &str, found: &mut BTreeMap<u64, Copies>) {
    const NEEDLE: &[u8] = b"{\"args_digest\":";
    let mut at = 0;
    while let Some(offset) = find(&bytes[at..], NEEDLE) {
        let start = at + offset;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .map_or(bytes.len(), |n| start + n);
        let line = &bytes[start..end];
        at = start + 1;
        let (seq, verdict) = match serde_json::from_slice::<AuditRecord>(line) {
            Ok(record) if record.digest().ok().as_deref() == Some(record.hash.as_str()) => {
                (record.seq, Ok(record.hash))
            }
            Ok(record) => (
                record.seq,
                Err((
                    ProblemKind::Edited,
                    format!(
                        "the copy of record {} in {file} (offset {start}) does not match its hash: it was edited",
                        record.seq
                    ),
                )),
            ),
            Err(_) => match shown_seq(line) {
                Some(seq) => (
                    seq,
                    Err((
                        ProblemKind::Unreadable,
                        format!(
                            "the copy of record {seq} in {file} (offset {start}) does not parse: it was edited"
                        ),
                    )),
                ),
                None => continue,
            },
        };
        let copies = found.entry(seq).or_default();
        match verdict {
            Ok(hash) => copies.good = Some(hash),
            Err(bad) => copies.bad = copies.bad.take().or(Some(bad)),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn shown_seq(line: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(line);
    let at = text.find("\"seq\":")?;
    let digits: String = text[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn report(found: &BTreeMap<u64, Copies>) -> VerifyReport {
    let bad: BTreeSet<u64> = found
        .iter()
        .filter(|(_, c)| c.bad.is_some() || c.good.is_none())
        .map(|(&seq, _)| seq)
        .collect();
    let last = found.keys().next_back().copied().unwrap_or(0);
    let missing = (1..=last).find(|seq| !found.contains_key(seq));
    let first_bad = bad.first().copied();
    let (seq, kind, detail) = match (first_bad, missing) {
        (Some(seq), missing) if missing.is_none_or(|m| seq < m) => {
            let (kind, detail) = found.get(&seq).and_then(|c| c.bad.clone()).unwrap_or((
                ProblemKind::Unreadable,
                format!("record {seq} cannot be read"),
            ));
            (seq, kind, detail)
        }
        (_, Some(seq)) => (
            seq,
            ProblemKind::Missing,
            format!("no file of the store holds record {seq} (records up to {last} were found)"),
        ),
        _ => (
            last + 1,
            ProblemKind::Unreadable,
            format!(
                "every record found (1 to {last}) verifies, but the database does not open: later records cannot be read"
            ),
        ),
    };
    let head_hash = found
        .get(&(seq.saturating_sub(1)))
        .and_then(|c| c.good.clone())
        .unwrap_or_default();
    VerifyReport {
        verified: seq.saturating_sub(1),
        head_hash,
        problem: Some(Problem {
            seq,
            kind,
            detail: format!(
                "the store's database does not open (its files were edited or damaged); {detail}"
            ),
        }),
    }
}
