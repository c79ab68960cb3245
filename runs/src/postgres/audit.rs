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

/// The audit log's writer side for one process.
pub(crate) struct PgAudit {
    sender: mpsc::UnboundedSender<Pending>,
    refused: Arc<Mutex<Option<Problem>>>,
}

impl PgAudit {
    /// Start the writer on `pool`, refusing records while `refused` names damage.
    pub(crate) fn start(
        pool: Pool,
        checkpoints: Option<CheckpointConfig>,
        refused: Option<Problem>,
    ) -> PgAudit {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write(pool, receiver, checkpoints.map(Checkpointer::new)));
        PgAudit {
            sender,
            refused: Arc::new(Mutex::new(refused)),
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
        match commit(&pool, drafts).await {
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

/// One batch, one transaction, after whatever any process committed last.
async fn commit(pool: &Pool, drafts: Vec<AuditDraft>) -> Result<(Vec<AuditReceipt>, Head)> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "SELECT seq, hash FROM baton_audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
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
    tx.commit().await?;
    Ok((receipts, head))
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

async fn stored_head(client: &impl deadpool_postgres::GenericClient) -> Result<Head> {
    let row = client
        .query_one("SELECT seq, hash FROM baton_audit_head WHERE id = 1", &[])
        .await?;
    Ok(Head {
        seq: to_u64(row.get(0)),
        hash: row.get(1),
    })
}

/// At connect: does the head still name the last stored record? Records and head move in one
/// transaction, so any difference is damage done outside Baton (rows deleted or edited).
pub(crate) async fn check_head(client: &deadpool_postgres::Object) -> Result<Option<Problem>> {
    let head = stored_head(client).await?;
    let problem = match last_record(client).await? {
        None => head_problem(Some(&head), 0, GENESIS),
        Some(Ok(record)) if record.seq > head.seq => Some(Problem {
            seq: head.seq + 1,
            kind: ProblemKind::Reordered,
            detail: format!(
                "the log holds records up to {}, past its head at {}: records were added outside Baton",
                record.seq, head.seq
            ),
        }),
        Some(Ok(record)) => head_problem(Some(&head), record.seq, &record.hash),
        Some(Err((seq, why))) => Some(Problem {
            seq,
            kind: ProblemKind::Unreadable,
            detail: format!("record {seq} does not parse ({why}): its bytes were edited"),
        }),
    };
    Ok(problem.map(|mut problem| {
        problem.detail = format!(
            "{}; after checking, run `baton audit recover --accept-loss --reason TEXT`",
            problem.detail
        );
        problem
    }))
}

/// Walk the whole chain, page by page, and compare its end with the head.
pub(crate) async fn verify(
    client: &deadpool_postgres::Object,
    refusal: Option<Problem>,
) -> Result<VerifyReport> {
    let mut expected = 1u64;
    let mut previous = GENESIS.to_owned();
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
        let rows = client
            .query(
                "SELECT seq, line FROM baton_audit WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&to_i64(expected), &PAGE],
            )
            .await?;
        let Some(last) = rows.last().map(|row| row.get::<_, i64>(0)) else {
            break;
        };
        for row in &rows {
            let seq = to_u64(row.get(0));
            if seq != expected {
                let detail = format!(
                    "record {expected} is missing: the record after {} is {seq}",
                    expected - 1
                );
                return Ok(report(expected, previous, ProblemKind::Missing, detail));
            }
            let record = match parse(row.get(0), row.get(1)) {
                Ok(record) => record,
                Err((_, why)) => {
                    let detail =
                        format!("record {expected} does not parse ({why}): its bytes were edited");
                    return Ok(report(expected, previous, ProblemKind::Unreadable, detail));
                }
            };
            if record.seq != seq {
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
        if to_u64(last) + 1 != expected {
            break;
        }
    }
    let head = stored_head(client).await?;
    let problem = head_problem(Some(&head), expected - 1, &previous).or(refusal);
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
