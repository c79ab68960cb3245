//! Reading the audit log newest first, filtered: what a reviewer's audit page needs without
//! reading the whole chain.

use serde::{Deserialize, Serialize};

use crate::{AuditRecord, OutcomeStatus, Result, Store};

/// Which audit records to show, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only records before this sequence number (the next page); `None`: from the newest.
    pub before: Option<u64>,
    /// Only this principal's calls.
    pub principal: Option<String>,
    /// Only calls of this tool.
    pub tool: Option<String>,
    /// Only calls that ended this way.
    pub outcome: Option<OutcomeStatus>,
    /// Only records at or after this time (RFC 3339, UTC; a prefix such as `2026-12-05` works).
    pub since: Option<String>,
    /// Only records before this time (RFC 3339, UTC, or a prefix of one).
    pub until: Option<String>,
    /// At most this many records.
    pub limit: usize,
    /// Look at no more than this many records: a filter that matches little stops here and
    /// says where to continue, so one page never reads the whole chain.
    pub scan: usize,
}

/// One page of [`AuditQuery`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSlice {
    /// The matching records, newest first.
    pub records: Vec<AuditRecord>,
    /// The newest record looked at (without `before`: the log's newest; 0: nothing there).
    pub newest: u64,
    /// Where the next page starts (`before`), or `None` when the oldest record was reached.
    pub next_before: Option<u64>,
}

/// Whether the audited principal `audited` is `wanted`: the principal itself, or — for a call a
/// worker made (`agent:builder (worker:w1 for alice)`) — the principal, the worker or the
/// requester it acted for.
fn names(audited: &str, wanted: &str) -> bool {
    if audited == wanted {
        return true;
    }
    let Some((id, acting)) = audited.split_once(" (") else {
        return false;
    };
    let acting = acting.trim_end_matches(')');
    let (worker, requester) = acting.split_once(" for ").unwrap_or((acting, ""));
    [id, worker, requester].contains(&wanted)
}

impl AuditQuery {
    /// Whether `record` passes the filters (`before`, `limit` and `scan` aside).
    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.principal
            .as_ref()
            .is_none_or(|p| names(&record.principal, p))
            && self.tool.as_ref().is_none_or(|t| *t == record.tool)
            && self.outcome.is_none_or(|o| o == record.outcome.status)
            && self
                .since
                .as_ref()
                .is_none_or(|s| record.time.as_str() >= s.as_str())
            && self
                .until
                .as_ref()
                .is_none_or(|u| record.time.as_str() < u.as_str())
    }
}

impl Store {
    /// The records `query` asks for, newest first. Chunks are read from the newest back, so
    /// the cost is what is shown (and at most `query.scan` records), not the chain's length.
    pub fn query_audit(&self, query: &AuditQuery) -> Result<AuditSlice> {
        let audit = &self.inner.audit;
        let range = match query.before {
            Some(before) => audit.range(..before.to_be_bytes()),
            None => audit.range::<&[u8], _>(..),
        };
        let mut slice = AuditSlice {
            records: Vec::new(),
            newest: 0,
            next_before: None,
        };
        let mut scanned = 0usize;
        for chunk in range.rev() {
            let (_, value) = chunk?;
            let mut records = value
                .split(|&b| b == b'\n')
                .filter(|line| !line.is_empty())
                .map(|line| {
                    serde_json::from_slice::<AuditRecord>(line)
                        .map_err(|e| crate::error::corrupt("audit record", e))
                })
                .collect::<Result<Vec<_>>>()?;
            records.reverse();
            for record in records {
                if query.before.is_some_and(|before| record.seq >= before) {
                    continue;
                }
                slice.newest = slice.newest.max(record.seq);
                if scanned >= query.scan || slice.records.len() >= query.limit {
                    slice.next_before = Some(record.seq + 1);
                    return Ok(slice);
                }
                scanned += 1;
                if query.matches(&record) {
                    slice.records.push(record);
                }
            }
        }
        Ok(slice)
    }
}
