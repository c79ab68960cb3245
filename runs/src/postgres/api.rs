//! [`StoreApi`] on PostgreSQL.

use std::path::PathBuf;

use deadpool_postgres::GenericClient;
use deadpool_postgres::Transaction;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::audit::{self, to_i64, to_u64};
use super::{CHANNEL, PgStore};
use crate::api::{Blob, StoreApi, StoreError, StoreFuture};
use crate::canonical::hex;
use crate::checkpoint::SignedCheckpoints;
use crate::error::{corrupt, encode};
use crate::store::MIN_PREFIX;
use crate::{
    Approval, ApprovalDraft, ArtifactGc, ArtifactRef, AuditDraft, AuditQuery, AuditReceipt,
    AuditRecord, AuditSlice, CheckpointReport, Heartbeat, KeptArtifact, Result, Run, RunState,
    RunsError, Step, Verdict, VerifyReport, Withdrawal, WorkDraft, WorkItem, WorkKind, WorkState,
    WorkerInfo, parse_public_key,
};

pub(super) fn decode<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(super) fn text<T: Serialize>(what: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| encode(what, e))
}

pub(super) async fn notify(client: &impl GenericClient) -> Result<()> {
    client
        .execute("SELECT pg_notify($1, '')", &[&CHANNEL])
        .await?;
    Ok(())
}

/// The tables whose records are found by id or unique id prefix.
#[derive(Clone, Copy)]
pub(super) enum Keyed {
    Approvals,
    Runs,
    Work,
}

impl Keyed {
    fn what(self) -> &'static str {
        match self {
            Keyed::Approvals => "approval",
            Keyed::Runs => "run",
            Keyed::Work => "work item",
        }
    }

    fn table(self) -> &'static str {
        match self {
            Keyed::Approvals => "baton_approvals",
            Keyed::Runs => "baton_runs",
            Keyed::Work => "baton_work",
        }
    }
}

/// The id and record of `prefix` in `keyed`, as the sled backend finds them.
pub(super) async fn by_prefix(
    client: &impl GenericClient,
    keyed: Keyed,
    prefix: &str,
) -> Result<(String, String)> {
    let (what, table) = (keyed.what(), keyed.table());
    let exact = format!("SELECT id, record FROM {table} WHERE id = $1");
    if let Some(row) = client.query_opt(&exact, &[&prefix]).await? {
        return Ok((row.get(0), row.get(1)));
    }
    let not_found = || RunsError::NotFound {
        what,
        id: prefix.to_owned(),
    };
    if prefix.len() < MIN_PREFIX {
        return Err(not_found());
    }
    let upper = prefix.to_ascii_uppercase();
    let matching =
        format!("SELECT id, record FROM {table} WHERE starts_with(id, $1) ORDER BY id LIMIT 2");
    let mut rows = client.query(&matching, &[&upper]).await?;
    match rows.len() {
        0 => Err(not_found()),
        1 => {
            let row = rows.remove(0);
            Ok((row.get(0), row.get(1)))
        }
        _ => {
            let count = format!("SELECT count(*) FROM {table} WHERE starts_with(id, $1)");
            let count: i64 = client.query_one(&count, &[&upper]).await?.get(0);
            Err(RunsError::Ambiguous {
                what,
                prefix: prefix.to_owned(),
                count: usize::try_from(count).unwrap_or(usize::MAX),
            })
        }
    }
}

async fn put_approval(tx: &Transaction<'_>, approval: &Approval) -> Result<()> {
    tx.execute(
        "UPDATE baton_approvals SET record = $2, state = $3 WHERE id = $1",
        &[
            &approval.id,
            &text("approval", approval)?,
            &approval.state.as_str(),
        ],
    )
    .await?;
    Ok(())
}

impl PgStore {
    fn run_op<'a, T: Send + 'a>(
        &'a self,
        work: impl Future<Output = Result<T>> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        Box::pin(async move { work.await.map_err(StoreError::from) })
    }

    /// Under the approval's row lock: expire it if its time ran out, then apply `change`; the
    /// closing audit records of the calls this ended (expired, rejected, declined, cancelled)
    /// are appended in the same transaction, so a call is closed in the log exactly when its
    /// approval is — never one without the other. Returns the approval this expired, and what
    /// `change` made of it.
    async fn transition(
        &self,
        id: &str,
        now_ms: u64,
        change: impl FnOnce(&Approval) -> Result<Approval> + Send,
    ) -> Result<(Option<Approval>, Result<Approval>)> {
        let mut client = self.client().await?;
        let (id, _) = by_prefix(&client, Keyed::Approvals, id).await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "SELECT record FROM baton_approvals WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        let mut current: Approval = decode("approval", row.get(0))?;
        let mut expired = None;
        if current.due_to_expire(now_ms) {
            current = current.expired(now_ms)?;
            put_approval(&tx, &current).await?;
            expired = Some(current.clone());
        }
        let moved = change(&current);
        if let Ok(next) = &moved {
            put_approval(&tx, next).await?;
        }
        let closing: Vec<_> = expired
            .iter()
            .chain(moved.as_ref().ok())
            .filter_map(|approval| approval.closing_record(now_ms))
            .collect();
        if !closing.is_empty() {
            if let Some(problem) = self.inner.audit.refusal() {
                return Err(RunsError::AuditRefused(Box::new(problem)));
            }
            audit::append_in(&tx, closing).await?;
        }
        let changed = expired.is_some() || moved.is_ok();
        if changed {
            notify(&tx).await?;
        }
        tx.commit().await?;
        if changed {
            self.changed();
        }
        Ok((expired, moved))
    }

    /// [`PgStore::transition`]'s outcome for the caller.
    async fn settle(
        &self,
        id: String,
        now_ms: u64,
        change: impl FnOnce(&Approval) -> Result<Approval> + Send,
    ) -> Result<Approval> {
        self.transition(&id, now_ms, change).await?.1
    }

    async fn all<T: DeserializeOwned>(&self, what: &'static str, sql: &str) -> Result<Vec<T>> {
        let client = self.client().await?;
        let rows = client.query(sql, &[]).await?;
        rows.iter().map(|row| decode(what, row.get(0))).collect()
    }

    async fn expire_due(&self, now_ms: u64) -> Result<Vec<Approval>> {
        let mut expired = Vec::new();
        let approvals: Vec<Approval> = self
            .all(
                "approval",
                "SELECT record FROM baton_approvals WHERE state IN ('pending', 'approved') ORDER BY id DESC",
            )
            .await?;
        for approval in approvals {
            if !approval.due_to_expire(now_ms) {
                continue;
            }
            // The transition expires it under the row lock if it is still due; the change
            // after that (expiring it again) is refused, so nothing else moves.
            let (now_expired, _) = self
                .transition(&approval.id, now_ms, |current| current.expired(now_ms))
                .await?;
            expired.extend(now_expired);
        }
        Ok(expired)
    }

    async fn move_run(&self, id: &str, state: RunState, now_ms: u64) -> Result<Run> {
        let mut client = self.client().await?;
        let (id, _) = by_prefix(&client, Keyed::Runs, id).await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "SELECT record FROM baton_runs WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        let run = decode::<Run>("run", row.get(0))?.moved_to(state, now_ms);
        tx.execute(
            "UPDATE baton_runs SET record = $2 WHERE id = $1",
            &[&id, &text("run", &run)?],
        )
        .await?;
        notify(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(run)
    }

    async fn add_step(&self, id: &str, kind: String, data: Value, now_ms: u64) -> Result<Step> {
        let mut client = self.client().await?;
        let (id, _) = by_prefix(&client, Keyed::Runs, id).await?;
        let tx = client.transaction().await?;
        // The run's row lock numbers its steps one at a time, whichever process appends.
        tx.execute("SELECT 1 FROM baton_runs WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let last: i64 = tx
            .query_one(
                "SELECT coalesce(max(seq), 0) FROM baton_journal WHERE run_id = $1",
                &[&id],
            )
            .await?
            .get(0);
        let step = Step {
            seq: u32::try_from(last.saturating_add(1)).unwrap_or(u32::MAX),
            time_ms: now_ms,
            kind,
            data,
        };
        tx.execute(
            "INSERT INTO baton_journal (run_id, seq, step) VALUES ($1, $2, $3)",
            &[&id, &i64::from(step.seq), &text("step", &step)?],
        )
        .await?;
        notify(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(step)
    }

    async fn steps_of(&self, id: &str) -> Result<Vec<Step>> {
        let client = self.client().await?;
        let (id, _) = by_prefix(&client, Keyed::Runs, id).await?;
        let rows = client
            .query(
                "SELECT step FROM baton_journal WHERE run_id = $1 ORDER BY seq",
                &[&id],
            )
            .await?;
        rows.iter().map(|row| decode("step", row.get(0))).collect()
    }

    async fn query(&self, query: AuditQuery) -> Result<AuditSlice> {
        let client = self.client().await?;
        let before = to_i64(query.before.unwrap_or(u64::MAX));
        // One more than may be looked at: the first one not looked at says where to go on.
        let window = i64::try_from(query.scan)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let rows = client
            .query(
                "SELECT line FROM baton_audit WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&before, &window],
            )
            .await?;
        let mut slice = AuditSlice {
            records: Vec::new(),
            newest: 0,
            next_before: None,
        };
        for (scanned, row) in rows.iter().enumerate() {
            let record: AuditRecord = decode("audit record", row.get(0))?;
            slice.newest = slice.newest.max(record.seq);
            if scanned >= query.scan || slice.records.len() >= query.limit {
                slice.next_before = Some(record.seq + 1);
                return Ok(slice);
            }
            if query.matches(&record) {
                slice.records.push(record);
            }
        }
        Ok(slice)
    }

    async fn keep(
        &self,
        bytes: Vec<u8>,
        media_type: String,
        uploader: Option<(String, u64)>,
    ) -> Result<ArtifactRef> {
        let size = bytes.len() as u64;
        let limit = self.inner.max_artifact_bytes;
        if size > limit {
            return Err(RunsError::TooLarge { size, limit });
        }
        let sha256 = hex(&Sha256::digest(&bytes));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut counted: Option<String> = None;
        if let Some((principal, quota)) = uploader {
            // The uploader's row first: two uploads by one principal take turns, so the second
            // sees what the first kept.
            tx.execute(
                "INSERT INTO baton_uploads VALUES ($1, 0) ON CONFLICT (principal) DO NOTHING",
                &[&principal],
            )
            .await?;
            let kept: i64 = tx
                .query_one(
                    "SELECT bytes FROM baton_uploads WHERE principal = $1 FOR UPDATE",
                    &[&principal],
                )
                .await?
                .get(0);
            let already = tx
                .query_opt(
                    "SELECT 1 FROM baton_artifacts WHERE sha256 = $1 AND $2 = ANY(uploaders)",
                    &[&sha256, &principal],
                )
                .await?
                .is_some();
            if !already {
                let would = to_u64(kept).saturating_add(size);
                if quota > 0 && would > quota {
                    return Err(RunsError::Quota {
                        principal,
                        would,
                        quota,
                    });
                }
                tx.execute(
                    "UPDATE baton_uploads SET bytes = $2 WHERE principal = $1",
                    &[&principal, &to_i64(would)],
                )
                .await?;
                counted = Some(principal);
            }
        }
        let uploaders: Vec<String> = counted.into_iter().collect();
        let row = tx
            .query_one(
                "INSERT INTO baton_artifacts (sha256, media_type, size, kept_ms, uploaders, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sha256) DO UPDATE SET
                    kept_ms = EXCLUDED.kept_ms,
                    uploaders = baton_artifacts.uploaders || EXCLUDED.uploaders
                 RETURNING media_type",
                &[
                    &sha256,
                    &media_type,
                    &to_i64(size),
                    &to_i64(crate::now_millis()),
                    &uploaders,
                    &bytes,
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(ArtifactRef {
            sha256,
            size,
            media_type: row.get(0),
        })
    }

    async fn gc(&self, before_ms: u64) -> Result<ArtifactGc> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Uploaders' rows before artifacts, as an upload takes them: no deadlock with one.
        tx.execute(
            "SELECT 1 FROM baton_uploads ORDER BY principal FOR UPDATE",
            &[],
        )
        .await?;
        let removed = tx
            .query(
                "DELETE FROM baton_artifacts WHERE kept_ms < $1 RETURNING size, uploaders",
                &[&to_i64(before_ms)],
            )
            .await?;
        let mut gc = ArtifactGc::default();
        for row in &removed {
            let size: i64 = row.get(0);
            let uploaders: Vec<String> = row.get(1);
            for principal in &uploaders {
                tx.execute(
                    "UPDATE baton_uploads SET bytes = greatest(bytes - $2, 0) WHERE principal = $1",
                    &[principal, &size],
                )
                .await?;
            }
            gc.removed += 1;
            gc.bytes += to_u64(size);
        }
        let kept: i64 = tx
            .query_one("SELECT count(*) FROM baton_artifacts", &[])
            .await?
            .get(0);
        gc.kept = to_u64(kept);
        tx.commit().await?;
        Ok(gc)
    }
}

impl StoreApi for PgStore {
    fn append_audit(&self, draft: AuditDraft) -> StoreFuture<'_, AuditReceipt> {
        self.run_op(self.inner.audit.append(draft))
    }

    fn verify_audit(&self) -> StoreFuture<'_, VerifyReport> {
        self.run_op(async move {
            let mut client = self.client().await?;
            audit::verify(&mut client, self.inner.audit.refusal()).await
        })
    }

    fn verify_checkpoints(
        &self,
        file: PathBuf,
        public_key: String,
    ) -> StoreFuture<'_, CheckpointReport> {
        self.run_op(async move {
            let key = parse_public_key(&public_key)?;
            let signed = tokio::task::spawn_blocking(move || SignedCheckpoints::read(&file, &key))
                .await
                .map_err(|e| corrupt("checkpoint file", e))??;
            let client = self.client().await?;
            audit::checkpoints(&client, signed).await
        })
    }

    fn recover_audit(&self, reason: String, operator: String) -> StoreFuture<'_, AuditReceipt> {
        self.run_op(async move {
            self.inner
                .audit
                .recover(&self.inner.pool, &reason, &operator)
                .await
        })
    }

    fn audit_records(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<AuditRecord>> {
        self.run_op(async move { audit::records(&self.client().await?, after, limit).await })
    }

    fn query_audit(&self, query: AuditQuery) -> StoreFuture<'_, AuditSlice> {
        self.run_op(self.query(query))
    }

    fn create_approval(&self, draft: ApprovalDraft, now_ms: u64) -> StoreFuture<'_, Approval> {
        self.run_op(async move {
            let approval = Approval::new(draft, now_ms);
            let client = self.client().await?;
            // One statement: the insert and its notification commit together.
            client
                .execute(
                    "WITH added AS (INSERT INTO baton_approvals (id, record, state) VALUES ($1, $2, $4))
                     SELECT pg_notify($3, '')",
                    &[
                        &approval.id,
                        &text("approval", &approval)?,
                        &CHANNEL,
                        &approval.state.as_str(),
                    ],
                )
                .await?;
            self.changed();
            Ok(approval)
        })
    }

    fn approval(&self, id: String) -> StoreFuture<'_, Approval> {
        self.run_op(async move {
            let client = self.client().await?;
            let (_, record) = by_prefix(&client, Keyed::Approvals, &id).await?;
            decode("approval", &record)
        })
    }

    fn approvals(&self) -> StoreFuture<'_, Vec<Approval>> {
        self.run_op(self.all(
            "approval",
            "SELECT record FROM baton_approvals ORDER BY id DESC",
        ))
    }

    fn decide_approval(
        &self,
        id: String,
        decider: String,
        decision: Verdict,
        note: Option<String>,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.run_op(self.settle(id, now_ms, move |approval| {
            approval.decided(&decider, decision, note, now_ms)
        }))
    }

    fn withdraw_approval(
        &self,
        id: String,
        by: String,
        how: Withdrawal,
        note: Option<String>,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.run_op(self.settle(id, now_ms, move |approval| {
            approval.withdrawn(&by, how, note, now_ms)
        }))
    }

    fn expire_approvals(&self, now_ms: u64) -> StoreFuture<'_, Vec<Approval>> {
        self.run_op(self.expire_due(now_ms))
    }

    fn changes(&self, seen: u64, timeout_ms: u64) -> StoreFuture<'_, u64> {
        let timeout = std::time::Duration::from_millis(timeout_ms);
        Box::pin(async move {
            Ok(crate::store::changes_after(&self.inner.changes, seen, timeout).await)
        })
    }

    fn consume_approval(
        &self,
        id: String,
        requester: String,
        tool: String,
        args_digest: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.run_op(self.settle(id, now_ms, move |approval| {
            approval.consumed(&requester, &tool, &args_digest, now_ms)
        }))
    }

    fn runs(&self) -> StoreFuture<'_, Vec<Run>> {
        self.run_op(self.all("run", "SELECT record FROM baton_runs ORDER BY id DESC"))
    }

    fn run(&self, id: String) -> StoreFuture<'_, Run> {
        self.run_op(async move {
            let client = self.client().await?;
            let (_, record) = by_prefix(&client, Keyed::Runs, &id).await?;
            decode("run", &record)
        })
    }

    fn steps(&self, id: String) -> StoreFuture<'_, Vec<Step>> {
        self.run_op(async move { self.steps_of(&id).await })
    }

    fn create_run(
        &self,
        goal: String,
        agent: String,
        meta: Value,
        now_ms: u64,
    ) -> StoreFuture<'_, Run> {
        self.run_op(async move {
            let run = Run::new(&goal, &agent, meta, now_ms);
            let client = self.client().await?;
            client
                .execute(
                    "WITH added AS (INSERT INTO baton_runs VALUES ($1, $2))
                     SELECT pg_notify($3, '')",
                    &[&run.id, &text("run", &run)?, &CHANNEL],
                )
                .await?;
            self.changed();
            Ok(run)
        })
    }

    fn set_run_state(&self, id: String, state: RunState, now_ms: u64) -> StoreFuture<'_, Run> {
        self.run_op(async move { self.move_run(&id, state, now_ms).await })
    }

    fn append_step(
        &self,
        id: String,
        kind: String,
        data: Value,
        now_ms: u64,
    ) -> StoreFuture<'_, Step> {
        self.run_op(async move { self.add_step(&id, kind, data, now_ms).await })
    }

    fn save_task(&self, id: String, record: Value) -> StoreFuture<'_, ()> {
        self.run_op(async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO baton_tasks VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                    &[&id, &text("task", &record)?],
                )
                .await?;
            Ok(())
        })
    }

    fn task(&self, id: String) -> StoreFuture<'_, Value> {
        self.run_op(async move {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT record FROM baton_tasks WHERE id = $1", &[&id])
                .await?
                .ok_or_else(|| RunsError::NotFound {
                    what: "task",
                    id: id.clone(),
                })?;
            decode("task", row.get(0))
        })
    }

    fn tasks(&self) -> StoreFuture<'_, Vec<(String, Value)>> {
        self.run_op(async move {
            let client = self.client().await?;
            let rows = client
                .query("SELECT id, record FROM baton_tasks ORDER BY id", &[])
                .await?;
            rows.iter()
                .map(|row| Ok((row.get(0), decode("task", row.get(1))?)))
                .collect()
        })
    }

    fn put_artifact(&self, bytes: Blob, media_type: String) -> StoreFuture<'_, ArtifactRef> {
        self.run_op(self.keep(bytes.0, media_type, None))
    }

    fn artifact(&self, sha256: String) -> StoreFuture<'_, (ArtifactRef, Blob)> {
        self.run_op(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT size, media_type, bytes FROM baton_artifacts WHERE sha256 = $1",
                    &[&sha256],
                )
                .await?
                .ok_or_else(|| RunsError::NotFound {
                    what: "artifact",
                    id: sha256.clone(),
                })?;
            let artifact = ArtifactRef {
                sha256,
                size: to_u64(row.get(0)),
                media_type: row.get(1),
            };
            Ok((artifact, Blob(row.get(2))))
        })
    }

    fn put_upload(
        &self,
        bytes: Blob,
        media_type: String,
        principal: String,
        quota: u64,
    ) -> StoreFuture<'_, ArtifactRef> {
        self.run_op(self.keep(bytes.0, media_type, Some((principal, quota))))
    }

    fn gc_artifacts(&self, before_ms: u64) -> StoreFuture<'_, ArtifactGc> {
        self.run_op(self.gc(before_ms))
    }

    fn claim_notice(&self, key: String, now_ms: u64) -> StoreFuture<'_, bool> {
        self.run_op(async move {
            let client = self.client().await?;
            let claimed = client
                .query_opt(
                    "INSERT INTO baton_notices VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING 1",
                    &[&key, &to_i64(now_ms)],
                )
                .await?
                .is_some();
            Ok(claimed)
        })
    }

    fn enqueue_work(&self, drafts: Vec<WorkDraft>, now_ms: u64) -> StoreFuture<'_, Vec<WorkItem>> {
        self.run_op(self.enqueue(drafts, now_ms))
    }

    fn claim_work(
        &self,
        worker: String,
        kinds: Vec<WorkKind>,
        max: u32,
        lease_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'_, Vec<WorkItem>> {
        self.run_op(async move { self.claim(&worker, &kinds, max, lease_ms, now_ms).await })
    }

    fn heartbeat(
        &self,
        worker: WorkerInfo,
        lease_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'_, Heartbeat> {
        self.run_op(async move { self.beat(&worker, lease_ms, now_ms).await })
    }

    fn finish_work(
        &self,
        id: String,
        worker: String,
        state: WorkState,
        result: Option<Value>,
        now_ms: u64,
    ) -> StoreFuture<'_, WorkItem> {
        self.run_op(async move { self.finish(&id, &worker, state, result, now_ms).await })
    }

    fn cancel_work(
        &self,
        selector: String,
        by: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Vec<WorkItem>> {
        self.run_op(async move { self.cancel(&selector, &by, now_ms).await })
    }

    fn work_item(&self, id: String) -> StoreFuture<'_, WorkItem> {
        self.run_op(async move { self.item(&id).await })
    }

    fn work_items(&self, group: Option<String>) -> StoreFuture<'_, Vec<WorkItem>> {
        self.run_op(async move { self.items(group.as_deref()).await })
    }

    fn workers(&self) -> StoreFuture<'_, Vec<WorkerInfo>> {
        self.run_op(self.worker_list())
    }

    fn stats(&self) -> StoreFuture<'_, crate::StoreStats> {
        self.run_op(self.stats_now())
    }

    fn kept_artifacts(&self) -> StoreFuture<'_, Vec<KeptArtifact>> {
        self.run_op(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT sha256, size, media_type, kept_ms, uploaders FROM baton_artifacts ORDER BY sha256",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| KeptArtifact {
                    artifact: ArtifactRef {
                        sha256: row.get(0),
                        size: to_u64(row.get(1)),
                        media_type: row.get(2),
                    },
                    kept_ms: to_u64(row.get(3)),
                    uploaders: row.get(4),
                })
                .collect())
        })
    }
}
