//! The audit log's write-ahead segment (`audit.wal`) and the marker that ties it to the store.
//!
//! The segment is a fixed-size file, written full of zeros once. Its first [`HEADER_BYTES`]
//! bytes are a header line naming the segment (`{"baton_wal":1,"id":"…"}`, padded with spaces);
//! after it, batches of records as JSON lines, contiguous, then zeros. Everything past the
//! header is bytes the writer wrote in the current cycle: the torn tail of a crash is zeroed at
//! open and the segment is zeroed before it is reused from the start, so a complete line that
//! is not a record, or bytes after the zeros, can only be damage.
//!
//! The marker (sled `meta` key `audit_wal`) holds the segment's id and whether the writer
//! stopped in order. It is flushed when a writer starts and when it stops: at the next open, an
//! unclean stop with the segment missing or replaced means answered records may be lost.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audit::{AuditRecord, Head};
use crate::error::{corrupt, encode};
use crate::verify::{Problem, ProblemKind};
use crate::{Result, RunsError};

/// Size of the write-ahead segment. It is written full of zeros once, so that a sync after
/// each batch writes data only (a growing file also commits its new size: twice the cost).
pub(crate) const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
/// The header line's length, newline included.
pub(crate) const HEADER_BYTES: usize = 128;
/// Key of the marker in the `meta` tree.
const MARKER_KEY: &[u8] = b"audit_wal";

/// The segment the store last wrote to, and how the writer stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// The segment's id (its header's).
    pub id: String,
    /// Whether the last writer stopped in order (sled then held every record).
    pub clean: bool,
    /// The head when that writer started.
    pub head_at_open: u64,
    /// Records before this one were accepted as they are by an operator's recovery: the check
    /// at open starts here (0: from the first record).
    #[serde(default)]
    pub trusted_from: u64,
    /// The head as the check at open found it whole: the next open walks only what follows.
    /// Older records are guarded by sled's own checksums (an edit there fails the open or
    /// drops records, which the segment's `flushed` lines catch), by `verify`, which walks
    /// everything, and by signed checkpoints.
    #[serde(default)]
    pub checked: Option<Head>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    baton_wal: u32,
    id: String,
}

pub(crate) fn read_marker(meta: &sled::Tree) -> Result<Option<Marker>> {
    match meta.get(MARKER_KEY)? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt("audit segment marker", e)),
        None => Ok(None),
    }
}

/// Write the marker and flush sled, so it survives whatever happens next.
pub(crate) fn write_marker(db: &sled::Db, meta: &sled::Tree, marker: &Marker) -> Result<()> {
    let bytes = serde_json::to_vec(marker).map_err(|e| encode("audit segment marker", e))?;
    meta.insert(MARKER_KEY, bytes)?;
    db.flush()?;
    Ok(())
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> RunsError + '_ {
    move |source| RunsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The segment's bytes, `None` when there is no segment.
pub(crate) fn read_segment(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error(path)(error)),
    }
}

/// The id in the segment's header; `None` when the segment starts with something else (a
/// segment written before headers existed, or a damaged header).
pub(crate) fn header_id(bytes: &[u8]) -> Option<String> {
    let line = bytes.get(..HEADER_BYTES)?;
    let header: Header = serde_json::from_slice(line.trim_ascii()).ok()?;
    (header.baton_wal == 1).then_some(header.id)
}

/// Create a new segment (replacing any file there): header, then zeros, synced. Returns it and
/// its id.
pub(crate) fn create_segment(path: &Path) -> Result<(std::fs::File, String)> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| RunsError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!("no OS randomness for the segment id: {e}")),
    })?;
    let id = crate::canonical::hex(&random);
    let tmp = path.with_extension("wal.new");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    let mut header = serde_json::to_vec(&Header {
        baton_wal: 1,
        id: id.clone(),
    })
    .map_err(|e| encode("audit segment header", e))?;
    header.resize(HEADER_BYTES - 1, b' ');
    header.push(b'\n');
    file.write_all_at(&header, 0).map_err(io_error(&tmp))?;
    zero(&file, &tmp, HEADER_BYTES as u64, SEGMENT_BYTES)?;
    file.sync_all().map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error(dir))?;
    }
    Ok((file, id))
}

/// Open an existing segment for writing.
pub(crate) fn open_segment(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_error(path))
}

/// Write zeros over `from..to`.
pub(crate) fn zero(file: &std::fs::File, path: &Path, from: u64, to: u64) -> Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let len = (to - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..len], at)
            .map_err(io_error(path))?;
        at += len as u64;
    }
    Ok(())
}

/// What the segment holds past the header.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Records past `head` that extend it, in order, with their lines.
    pub records: Vec<(AuditRecord, Vec<u8>)>,
    /// Where the records end: the next batch goes here.
    pub end: usize,
    /// Where a torn write (an incomplete last line, never answered) ends; zeroed at open.
    pub torn_end: Option<usize>,
    /// The first damage found.
    pub damage: Option<Problem>,
    /// The highest head the segment says sled had flushed (see [`flushed_line`]).
    pub flushed: u64,
}

/// A line saying sled was flushed with the head at `seq`: written when a writer starts, when
/// the segment wraps and when the writer stops. A store whose head is below it at the next
/// open lost records it had flushed: its files were edited or damaged.
#[derive(Debug, Serialize, Deserialize)]
struct Flushed {
    flushed: u64,
}

/// The line recording that sled holds everything up to `seq`.
pub(crate) fn flushed_line(seq: u64) -> Vec<u8> {
    let mut line = format!("{{\"flushed\":{seq}}}").into_bytes();
    line.push(b'\n');
    line
}

/// Read the records of a segment written with a header. `head` is what sled holds.
pub(crate) fn scan(bytes: &[u8], head: &Head) -> Scan {
    let start = HEADER_BYTES.min(bytes.len());
    let mut out = Scan {
        end: start,
        ..Scan::default()
    };
    // Records are contiguous from the header on; the first zero ends them.
    let data_end = bytes[start..]
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes.len(), |n| start + n);
    let mut tip: Option<Head> = None;
    let mut pos = start;
    let expected = |tip: &Option<Head>| tip.as_ref().map_or(head.seq + 1, |tip| tip.seq + 1);
    while pos < data_end {
        let Some(newline) = bytes[pos..data_end].iter().position(|&b| b == b'\n') else {
            // An incomplete last line: a torn write, if only zeros follow.
            out.torn_end = Some(data_end);
            break;
        };
        let line = &bytes[pos..pos + newline];
        if let Ok(Flushed { flushed }) = serde_json::from_slice::<Flushed>(line) {
            out.flushed = out.flushed.max(flushed);
        } else if let Err(problem) = take(line, head, &mut tip, &mut out.records, pos) {
            out.damage = Some(problem);
            return out;
        }
        pos += newline + 1;
        out.end = pos;
    }
    if let Some(at) = bytes[data_end..].iter().position(|&b| b != 0) {
        let seq = expected(&tip);
        out.torn_end = None;
        out.damage = Some(if pos < data_end {
            damaged(seq, &bytes[pos..data_end], pos, "is cut short by zeros")
        } else {
            Problem {
                seq,
                kind: ProblemKind::WalDamaged,
                detail: format!(
                    "audit.wal has bytes at offset {} after the end of its records at {pos}: record {seq} or a later one was zeroed or damaged",
                    data_end + at
                ),
            }
        });
    } else if out.torn_end.is_some() {
        tracing::warn!(
            offset = pos,
            "audit.wal ends in a torn write (a batch that was never answered)"
        );
    }
    out
}

/// Check one complete line and keep it if it extends `head`.
fn take(
    line: &[u8],
    head: &Head,
    tip: &mut Option<Head>,
    records: &mut Vec<(AuditRecord, Vec<u8>)>,
    offset: usize,
) -> std::result::Result<(), Problem> {
    let expected = tip.as_ref().map_or(head.seq + 1, |tip| tip.seq + 1);
    let Ok(record) = serde_json::from_slice::<AuditRecord>(line) else {
        return Err(damaged(expected, line, offset, "does not parse"));
    };
    let wal_damaged = |seq: u64, detail: String| Problem {
        seq,
        kind: ProblemKind::WalDamaged,
        detail,
    };
    if record.digest().ok().as_deref() != Some(record.hash.as_str()) {
        return Err(wal_damaged(
            record.seq,
            format!(
                "record {} in audit.wal (offset {offset}) does not match its hash: it was damaged",
                record.seq
            ),
        ));
    }
    let chains = match tip.as_ref() {
        Some(tip) => record.seq == tip.seq + 1 && record.prev_hash == tip.hash,
        None if record.seq > head.seq + 1 => {
            return Err(Problem {
                seq: head.seq + 1,
                kind: ProblemKind::Missing,
                detail: format!(
                    "records {} to {} are neither in the store nor in audit.wal, which starts at record {}",
                    head.seq + 1,
                    record.seq - 1,
                    record.seq
                ),
            });
        }
        None => true,
    };
    let continues_head = record.seq != head.seq + 1 || record.prev_hash == head.hash;
    if !chains || !continues_head {
        return Err(wal_damaged(
            expected,
            format!(
                "record {} in audit.wal (offset {offset}) does not continue the chain where record {expected} belongs",
                record.seq
            ),
        ));
    }
    *tip = Some(Head {
        seq: record.seq,
        hash: record.hash.clone(),
    });
    if record.seq > head.seq {
        records.push((record, line.to_vec()));
    }
    Ok(())
}

/// A damaged line, named by the sequence number it still shows, else by the one expected.
fn damaged(expected: u64, bytes: &[u8], offset: usize, what: &str) -> Problem {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let shown = text.find("\"seq\":").and_then(|at| {
        let digits: String = text[at + 6..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<u64>().ok()
    });
    let seq = shown.unwrap_or(expected);
    Problem {
        seq,
        kind: ProblemKind::WalDamaged,
        detail: format!(
            "the line at offset {offset} of audit.wal, where record {expected} belongs, {what}: record {seq} was damaged"
        ),
    }
}

/// Records of a segment written before headers existed: whole lines that extend `head`, up to
/// the first that does not (leftovers of older cycles are below the head and skipped).
pub(crate) fn legacy_records(bytes: &[u8], head: &Head) -> Vec<(AuditRecord, Vec<u8>)> {
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
