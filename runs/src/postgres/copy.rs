//! `baton store copy`: a whole store into an empty PostgreSQL database, in one transaction (a
//! copy that fails leaves nothing behind). Audit records are copied as they are — their hashes
//! do not depend on the backend — and only from a source whose chain verifies: a copy must not
//! launder a damaged log into a fresh store.

use deadpool_postgres::Transaction;
use serde::{Deserialize, Serialize};

use super::PgStore;
use super::audit::to_i64;
use crate::api::{StoreApi, StoreError, StoreResult};
use crate::audit::GENESIS;

/// Records read from the source at a time.
const PAGE: usize = 5_000;

/// What a copy carried over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Audit records.
    pub audit_records: u64,
    /// Approvals.
    pub approvals: u64,
    /// Runs.
    pub runs: u64,
    /// Journal steps.
    pub steps: u64,
    /// MCP tasks' records.
    pub tasks: u64,
    /// Artifacts.
    pub artifacts: u64,
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid { message }
}

fn json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::from(crate::error::encode("store copy", e)))
}

fn pg(error: tokio_postgres::Error) -> StoreError {
    StoreError::from(crate::RunsError::from(error))
}

impl PgStore {
    /// Copy everything `source` keeps into this database, which must be empty.
    pub async fn copy_from(&self, source: &dyn StoreApi) -> StoreResult<CopyReport> {
        let report = source.verify_audit().await?;
        if let Some(problem) = report.problem {
            return Err(invalid(format!(
                "the source's audit log does not verify ({problem}); nothing was copied"
            )));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Every other process waits until the copy is in: appends, approvals, runs, uploads.
        tx.batch_execute(
            "LOCK TABLE baton_audit_head, baton_audit, baton_runs, baton_journal, baton_approvals,
                        baton_tasks, baton_artifacts, baton_uploads IN EXCLUSIVE MODE",
        )
        .await
        .map_err(pg)?;
        let head: i64 = tx
            .query_one(
                "SELECT seq FROM baton_audit_head WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        let held: i64 = tx
            .query_one(
                "SELECT (SELECT count(*) FROM baton_audit) + (SELECT count(*) FROM baton_runs)
                      + (SELECT count(*) FROM baton_approvals) + (SELECT count(*) FROM baton_tasks)
                      + (SELECT count(*) FROM baton_artifacts) + (SELECT count(*) FROM baton_journal)
                      + (SELECT count(*) FROM baton_uploads)",
                &[],
            )
            .await
            .map_err(pg)?
            .get(0);
        if held > 0 || head > 0 {
            return Err(invalid(format!(
                "the destination {} already holds {held} records; a store is copied only into an empty database",
                self.target()
            )));
        }
        let mut copied = CopyReport {
            audit_records: copy_audit(&tx, source).await?,
            ..CopyReport::default()
        };
        copy_records(&tx, source, &mut copied).await?;
        copied.artifacts = self.copy_artifacts(&tx, source).await?;
        tx.commit().await.map_err(pg)?;
        Ok(copied)
    }

    async fn copy_artifacts(
        &self,
        tx: &Transaction<'_>,
        source: &dyn StoreApi,
    ) -> StoreResult<u64> {
        let mut copied = 0;
        for kept in source.kept_artifacts().await? {
            let (size, limit) = (kept.artifact.size, self.inner.max_artifact_bytes);
            if size > limit {
                return Err(crate::RunsError::TooLarge { size, limit }.into());
            }
            let (artifact, bytes) = source.artifact(kept.artifact.sha256.clone()).await?;
            tx.execute(
                "INSERT INTO baton_artifacts (sha256, media_type, size, kept_ms, uploaders, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &artifact.sha256,
                    &artifact.media_type,
                    &to_i64(artifact.size),
                    &to_i64(kept.kept_ms),
                    &kept.uploaders,
                    &bytes.0,
                ],
            )
            .await
            .map_err(pg)?;
            for principal in &kept.uploaders {
                tx.execute(
                    "INSERT INTO baton_uploads VALUES ($1, $2)
                     ON CONFLICT (principal) DO UPDATE SET bytes = baton_uploads.bytes + EXCLUDED.bytes",
                    &[principal, &to_i64(artifact.size)],
                )
                .await
                .map_err(pg)?;
            }
            copied += 1;
        }
        Ok(copied)
    }
}

/// The chain, record by record as stored, and its head; how many records.
async fn copy_audit(tx: &Transaction<'_>, source: &dyn StoreApi) -> StoreResult<u64> {
    let mut copied = 0;
    let mut last = (0u64, GENESIS.to_owned());
    loop {
        let records = source.audit_records(last.0, PAGE).await?;
        let Some(end) = records.last() else { break };
        let end = (end.seq, end.hash.clone());
        let seqs: Vec<i64> = records.iter().map(|r| to_i64(r.seq)).collect();
        let lines = records.iter().map(json).collect::<StoreResult<Vec<_>>>()?;
        tx.execute(
            "INSERT INTO baton_audit (seq, line) SELECT * FROM unnest($1::BIGINT[], $2::TEXT[])",
            &[&seqs, &lines],
        )
        .await
        .map_err(pg)?;
        copied += records.len() as u64;
        last = end;
    }
    tx.execute(
        "UPDATE baton_audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&to_i64(last.0), &last.1],
    )
    .await
    .map_err(pg)?;
    Ok(copied)
}

/// Approvals, runs with their journals, and tasks.
async fn copy_records(
    tx: &Transaction<'_>,
    source: &dyn StoreApi,
    copied: &mut CopyReport,
) -> StoreResult<()> {
    for approval in source.approvals().await? {
        tx.execute(
            "INSERT INTO baton_approvals (id, record, state) VALUES ($1, $2, $3)",
            &[&approval.id, &json(&approval)?, &approval.state.as_str()],
        )
        .await
        .map_err(pg)?;
        copied.approvals += 1;
    }
    for run in source.runs().await? {
        tx.execute(
            "INSERT INTO baton_runs VALUES ($1, $2)",
            &[&run.id, &json(&run)?],
        )
        .await
        .map_err(pg)?;
        for step in source.steps(run.id.clone()).await? {
            tx.execute(
                "INSERT INTO baton_journal VALUES ($1, $2, $3)",
                &[&run.id, &i64::from(step.seq), &json(&step)?],
            )
            .await
            .map_err(pg)?;
            copied.steps += 1;
        }
        copied.runs += 1;
    }
    for (id, record) in source.tasks().await? {
        tx.execute(
            "INSERT INTO baton_tasks VALUES ($1, $2)",
            &[&id, &json(&record)?],
        )
        .await
        .map_err(pg)?;
        copied.tasks += 1;
    }
    Ok(())
}
