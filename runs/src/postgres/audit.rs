//! The audit chain on PostgreSQL: one writer task per process, group commit, one chain for
//! every process. A batch is one transaction: lock the head row, link the records after it,
//! insert them, move the head, commit — then its callers are answered. Writers in other
//! processes wait on the head row's lock, so their batches follow in one line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use crate::audit::{GENESIS, Head, MAX_BATCH, Pending, recovery_draft};
use crate::checkpoint::{Checkpointer, SignedCheckpoints};
use crate::verify::{Problem, ProblemKind, VerifyReport, broken_link, head_problem};
use crate::{
    AuditDraft, AuditReceipt, AuditRecord, CheckpointConfig, CheckpointReport, Result, RunsError,
};

/// Records read per page when walking the chain.
const PAGE: i64 = 10_000;
/// Longest a batch's transaction may take before its callers are told it failed.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The audit log's writer side for one process.
pub(crate) struct PgAudit {
    sender: mpsc::UnboundedSender<Pending>,
    refused: Arc<Mutex<Option<Problem>>>,
    /// How this process's writer keeps up (`/metrics`).
    pub(crate) stats: Arc<crate::stats::WriterStats>,
}

impl PgAudit {
    /// Start the writer on `pool`, refusing records while `refused` names damage.
    pub(crate) fn start(
        pool: Pool,
        checkpoints: Option<CheckpointConfig>,
        refused: Option<Problem>,
    ) -> PgAudit {
        let (sender, receiver) = mpsc::unbounded_channel();
        let stats = Arc::<crate::stats::WriterStats>::default();
        tokio::spawn(write(
            pool,
            receiver,
            checkpoints.map(Checkpointer::new),
            stats.clone(),
        ));
        PgAudit {
            sender,
            refused: Arc::new(Mutex::new(refused)),
            stats,
        }
    }

    /// Why the log refuses records, if it does.
    pub(crate) fn refusal(&self) -> Option<Problem> {
        self.refused.lock().ok().and_then(|problem| problem.clone())
    }

    /// Append `draft`; returns once its transaction committed.
    pub(crate) async fn append(&self, draft: AuditDraft) -> Result<AuditReceipt> {
        if let Some(problem) = self.refusal() {
            return Err(RunsError::AuditRefused(Box::new(problem)));
        }
        let (done, wait) = oneshot::channel();
        self.sender
            .send(Pending { draft, done })
            .map_err(|_| RunsError::Closed)?;
        wait.await.map_err(|_| RunsError::Closed)?
    }

    /// Accept the loss a refusal named: the head is set back on the last stored record and a
    /// record of the recovery is appended.
    pub(crate) async fn recover(
        &self,
        pool: &Pool,
        reason: &str,
        operator: &str,
    ) -> Result<AuditReceipt> {
        let Some(problem) = self.refusal() else {
            return Err(RunsError::AuditIntact);
        };
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        // A deleted head row is put back before it is locked.
        tx.execute(
            "INSERT INTO baton_audit_head VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING",
            &[&GENESIS],
        )
        .await?;
        tx.query_one(
            "SELECT seq FROM baton_audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
        let head = match last_record(&tx).await? {
            Some(Ok(record)) => Head {
                seq: record.seq,
                hash: record.hash,
            },
            Some(Err((seq, _))) => {
                return Err(RunsError::Corrupt {
                    what: "audit record",
                    detail: format!(
                        "the last stored record ({seq}) does not parse; nothing can be chained to it"
                    ),
                });
            }
            None => Head {
                seq: 0,
                hash: GENESIS.into(),
            },
        };
        tx.execute(
            "UPDATE baton_audit_head SET seq = $1, hash = $2 WHERE id = 1",
            &[&to_i64(head.seq), &head.hash],
        )
        .await?;
        tx.commit().await?;
        if let Ok(mut refused) = self.refused.lock() {
            *refused = None;
        }
        let receipt = self
            .append(recovery_draft(reason, operator, &problem))
            .await?;
        tracing::warn!(seq = receipt.seq, %problem, reason, operator, "audit loss accepted");
        Ok(receipt)
    }
}

async fn write(
    pool: Pool,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
    mut checkpointer: Option<Checkpointer>,
    stats: Arc<crate::stats::WriterStats>,
) {
    let mut head = None;
    loop {
        let due = checkpointer
            .as_ref()
            .zip(head.as_ref())
            .and_then(|(c, h)| c.due_in(h));
        let first = match due {
            None => receiver.recv().await,
            Some(wait) => match tokio::time::timeout(wait, receiver.recv()).await {
                Ok(first) => first,
                Err(_) => {
                    checkpointer = sign(checkpointer, head.clone(), false).await;
                    continue;
                }
            },
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let (drafts, waiting): (Vec<AuditDraft>, Vec<_>) = batch
            .into_iter()
            .map(|pending| (pending.draft, pending.done))
            .unzip();
        let started = std::time::Instant::now();
        let records = drafts.len();
        let committed = commit(&pool, drafts).await;
        stats.batch(records, started.elapsed());
        match committed {
            Ok((receipts, last)) => {
                for (done, receipt) in waiting.into_iter().zip(receipts) {
                    let _ = done.send(Ok(receipt));
                }
                head = Some(last);
                checkpointer = sign(checkpointer, head.clone(), false).await;
            }
            Err(error) => {
                tracing::error!(%error, records = waiting.len(), "audit batch not written");
                let detail = error.to_string();
                for done in waiting {
                    let _ = done.send(Err(RunsError::AuditUnwritten {
                        detail: detail.clone(),
                    }));
                }
            }
        }
    }
    sign(checkpointer, head, true).await;
}

/// Sign `head` if a checkpoint is due (off the async workers: it syncs a file).
async fn sign(
    checkpointer: Option<Checkpointer>,
    head: Option<Head>,
    force: bool,
) -> Option<Checkpointer> {
    let (mut checkpointer, head) = match (checkpointer, head) {
        (Some(checkpointer), Some(head)) => (checkpointer, head),
        (checkpointer, None) => return checkpointer,
        (None, Some(_)) => return None,
    };
    tokio::task::spawn_blocking(move || {
        checkpointer.maybe_sign(&head, force);
        checkpointer
    })
    .await
    .ok()
}

/// One batch, one transaction, after whatever any process committed last. A database that
/// does not answer within [`COMMIT_WAIT`] fails the batch: its callers get an error (the
/// records may still land — a record without an answer is allowed; an answer without its
/// record never is).
async fn commit(pool: &Pool, drafts: Vec<AuditDraft>) -> Result<(Vec<AuditReceipt>, Head)> {
    let work = async {
        let mut client = pool.get().await?;
        let tx = client.transaction().await?;
        let done = append_in(&tx, drafts).await?;
        tx.commit().await?;
        Ok(done)
    };
    tokio::time::timeout(COMMIT_WAIT, work)
        .await
        .map_err(|_| RunsError::AuditUnwritten {
            detail: format!(
                "PostgreSQL did not commit the batch within {} s",
                COMMIT_WAIT.as_secs()
            ),
        })?
}

/// Link `drafts` after the chain's head and insert them in `tx`, holding the head row's lock
/// until `tx` ends: how every record enters the chain, a batch of the writer's or an
/// approval's closing record in the transaction that closed it.
pub(crate) async fn append_in(
    tx: &deadpool_postgres::Transaction<'_>,
    drafts: Vec<AuditDraft>,
) -> Result<(Vec<AuditReceipt>, Head)> {
    let row = tx
        .query_opt(
            "SELECT seq, hash FROM baton_audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?
        .ok_or_else(|| RunsError::AuditRefused(Box::new(missing_head())))?;
    let mut head = Head {
        seq: to_u64(row.get(0)),
        hash: row.get(1),
    };
    let mut seqs = Vec::with_capacity(drafts.len());
    let mut lines = Vec::with_capacity(drafts.len());
    let mut receipts = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let record = AuditRecord::link(draft, &head)?;
        lines.push(
            serde_json::to_string(&record).map_err(|e| crate::error::encode("audit record", e))?,
        );
        seqs.push(to_i64(record.seq));
        receipts.push(AuditReceipt {
            seq: record.seq,
            hash: record.hash.clone(),
        });
        head = Head {
            seq: record.seq,
            hash: record.hash,
        };
    }
    tx.execute(
        "INSERT INTO baton_audit (seq, line) SELECT * FROM unnest($1::BIGINT[], $2::TEXT[])",
        &[&seqs, &lines],
    )
    .await?;
    tx.execute(
        "UPDATE baton_audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&to_i64(head.seq), &head.hash],
    )
    .await?;
    Ok((receipts, head))
}

fn missing_head() -> Problem {
    Problem {
        seq: 1,
        kind: ProblemKind::Unreadable,
        detail: "the chain's head row (baton_audit_head) is missing: it was deleted outside Baton"
            .into(),
    }
}

pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

type Parsed = std::result::Result<AuditRecord, (u64, String)>;

fn parse(seq: i64, line: &str) -> Parsed {
    serde_json::from_str(line).map_err(|error| (to_u64(seq), error.to_string()))
}

async fn last_record(client: &impl deadpool_postgres::GenericClient) -> Result<Option<Parsed>> {
    let row = client
        .query_opt(
            "SELECT seq, line FROM baton_audit ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map(|row| parse(row.get(0), row.get(1))))
}

/// The stored head (`None`: its row is gone) and the last stored record, read in one
/// statement — one snapshot, so a batch another process commits meanwhile is seen whole or not
/// at all.
async fn head_and_last(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<(Option<Head>, Option<Parsed>)> {
    let row = client
        .query_one(
            "SELECT h.seq, h.hash, a.seq, a.line
             FROM (SELECT 1) AS one
             LEFT JOIN baton_audit_head h ON h.id = 1
             LEFT JOIN LATERAL (SELECT seq, line FROM baton_audit ORDER BY seq DESC LIMIT 1) a ON true",
            &[],
        )
        .await?;
    let head = row.get::<_, Option<i64>>(0).map(|seq| Head {
        seq: to_u64(seq),
        hash: row.get::<_, Option<String>>(1).unwrap_or_default(),
    });
    let last = row
        .get::<_, Option<i64>>(2)
        .map(|seq| parse(seq, row.get::<_, Option<&str>>(3).unwrap_or_default()));
    Ok((head, last))
}

/// What is wrong between the stored head and the last stored record, if anything.
fn head_versus_last(head: Option<&Head>, last: Option<&Parsed>) -> Option<Problem> {
    let Some(head) = head else {
        return Some(missing_head());
    };
    match last {
        None => head_problem(Some(head), 0, GENESIS),
        Some(Ok(record)) if record.seq > head.seq => Some(Problem {
            seq: head.seq + 1,
            kind: ProblemKind::Reordered,
            detail: format!(
                "the log holds records up to {}, past its head at {}: records were added outside Baton",
                record.seq, head.seq
            ),
        }),
        Some(Ok(record)) => head_problem(Some(head), record.seq, &record.hash),
        Some(Err((seq, why))) => Some(Problem {
            seq: *seq,
            kind: ProblemKind::Unreadable,
            detail: format!("record {seq} does not parse ({why}): its bytes were edited"),
        }),
    }
}

/// At connect: does the head still name the last stored record? Records and head move in one
/// transaction, so any difference is damage done outside Baton (rows deleted or edited).
pub(crate) async fn check_head(client: &deadpool_postgres::Object) -> Result<Option<Problem>> {
    let (head, last) = head_and_last(client).await?;
    Ok(
        head_versus_last(head.as_ref(), last.as_ref()).map(|mut problem| {
            problem.detail = format!(
                "{}; after checking, run `baton audit recover --accept-loss --reason TEXT`",
                problem.detail
            );
            problem
        }),
    )
}

/// Walk the whole chain, page by page, in one snapshot (appends by any process meanwhile are
/// not seen: a healthy chain under load verifies), and compare its end with the head.
pub(crate) async fn verify(
    client: &mut deadpool_postgres::Object,
    refusal: Option<Problem>,
) -> Result<VerifyReport> {
    let tx = super::snapshot(client).await?;
    let report = walk(&tx).await?;
    tx.commit().await?;
    Ok(match report.problem {
        None => VerifyReport {
            problem: refusal,
            ..report
        },
        Some(_) => report,
    })
}

async fn walk(tx: &deadpool_postgres::Transaction<'_>) -> Result<VerifyReport> {
    let mut expected = 1u64;
    let mut previous = GENESIS.to_owned();
    let mut after = i64::MIN;
    let report = |expected: u64, previous: String, kind, detail: String| VerifyReport {
        verified: expected - 1,
        head_hash: previous,
        problem: Some(Problem {
            seq: expected,
            kind,
            detail,
        }),
    };
    loop {
        let rows = tx
            .query(
                "SELECT seq, line FROM baton_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &PAGE],
            )
            .await?;
        let Some(last) = rows.last().map(|row| row.get::<_, i64>(0)) else {
            break;
        };
        after = last;
        for row in &rows {
            let stored: i64 = row.get(0);
            let wanted = to_i64(expected);
            if stored < wanted {
                let detail = format!(
                    "a record numbered {stored} is stored before record {expected}: records were added outside Baton"
                );
                return Ok(report(expected, previous, ProblemKind::Reordered, detail));
            }
            if stored > wanted {
                let detail = format!(
                    "record {expected} is missing: the record after {} is {stored}",
                    expected - 1
                );
                return Ok(report(expected, previous, ProblemKind::Missing, detail));
            }
            let record = match parse(stored, row.get(1)) {
                Ok(record) => record,
                Err((_, why)) => {
                    let detail =
                        format!("record {expected} does not parse ({why}): its bytes were edited");
                    return Ok(report(expected, previous, ProblemKind::Unreadable, detail));
                }
            };
            if record.seq != expected {
                let detail = format!(
                    "record {} is stored where record {expected} belongs: records were reordered",
                    record.seq
                );
                return Ok(report(expected, previous, ProblemKind::Reordered, detail));
            }
            if let Some((kind, detail)) = broken_link(&record, Some(&previous)) {
                return Ok(report(expected, previous, kind, detail));
            }
            previous = record.hash;
            expected += 1;
        }
    }
    let (head, last) = head_and_last(tx).await?;
    let problem = match &head {
        Some(head) if head.seq < expected - 1 => head_versus_last(Some(head), last.as_ref()),
        Some(head) => head_problem(Some(head), expected - 1, &previous),
        None => Some(missing_head()),
    };
    Ok(VerifyReport {
        verified: expected - 1,
        head_hash: previous,
        problem,
    })
}

/// Records with `seq > after`, at most `limit`, in order.
pub(crate) async fn records(
    client: &deadpool_postgres::Object,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT seq, line FROM baton_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&to_i64(after), &limit],
        )
        .await?;
    rows.iter()
        .map(|row| {
            parse(row.get(0), row.get(1))
                .map_err(|(_, why)| crate::error::corrupt("audit record", why))
        })
        .collect()
}

/// Check a checkpoint file against the chain.
pub(crate) async fn checkpoints(
    client: &deadpool_postgres::Object,
    signed: SignedCheckpoints,
) -> Result<CheckpointReport> {
    let seqs: Vec<i64> = signed.seqs().map(to_i64).collect();
    let rows = client
        .query(
            "SELECT seq, line FROM baton_audit WHERE seq = ANY($1)",
            &[&seqs],
        )
        .await?;
    let mut hashes = BTreeMap::new();
    for row in &rows {
        let hash = match parse(row.get(0), row.get(1)) {
            Ok(record) => record.hash,
            Err(_) => "(none: the record does not parse)".into(),
        };
        hashes.insert(to_u64(row.get(0)), hash);
    }
    let last = match last_record(client).await? {
        Some(Ok(record)) => record.seq,
        Some(Err((seq, _))) => seq,
        None => 0,
    };
    Ok(signed.judge(&hashes, last))
}
