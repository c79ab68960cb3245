//! The embedded sled store as a [`StoreApi`] backend. Everything but the audit append may
//! fsync, so it runs on the blocking pool rather than on the async workers.

use std::path::PathBuf;

use serde_json::Value;

use crate::api::{Blob, StoreApi, StoreError, StoreFuture, StoreResult};
use crate::{
    Approval, ApprovalDraft, ArtifactGc, ArtifactRef, AuditDraft, AuditQuery, AuditReceipt,
    AuditRecord, AuditSlice, CheckpointReport, Heartbeat, KeptArtifact, Run, RunState, Step, Store,
    Verdict, VerifyReport, Withdrawal, WorkDraft, WorkItem, WorkKind, WorkState, WorkerInfo,
    parse_public_key,
};

impl Store {
    fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> crate::Result<T> + Send + 'static,
    ) -> StoreFuture<'_, T> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&store))
                .await
                .map_err(|e| StoreError::storage(format!("store operation panicked: {e}")))?
                .map_err(StoreError::from)
        })
    }

    /// Write the closing audit record of `approval`'s call if it ended without running.
    async fn close(&self, approval: Approval, now_ms: u64) -> StoreResult<Approval> {
        if let Some(draft) = approval.closing_record(now_ms) {
            Store::append_audit(self, draft).await?;
        }
        Ok(approval)
    }

    /// Run `transition` on approval `id` after expiring it if its time ran out (closing the
    /// expired call in the audit log), then close the call if the transition ended it.
    fn settle(
        &self,
        id: String,
        now_ms: u64,
        transition: impl FnOnce(&Store, &str) -> crate::Result<Approval> + Send + 'static,
    ) -> StoreFuture<'_, Approval> {
        Box::pin(async move {
            let (expired, moved) = self
                .blocking(move |store| {
                    let expired = store.expire_if_due(&id, now_ms)?;
                    Ok((expired, transition(store, &id)))
                })
                .await?;
            if let Some(expired) = expired {
                self.close(expired, now_ms).await?;
            }
            self.close(moved?, now_ms).await
        })
    }

    fn audit_page(&self, after: u64, limit: usize) -> crate::Result<Vec<AuditRecord>> {
        let mut records = Vec::new();
        for record in self.audit_records() {
            let record = record?;
            if record.seq > after {
                records.push(record);
                if records.len() >= limit {
                    break;
                }
            }
        }
        Ok(records)
    }
}

impl StoreApi for Store {
    fn append_audit(&self, draft: AuditDraft) -> StoreFuture<'_, AuditReceipt> {
        Box::pin(async move { Ok(Store::append_audit(self, draft).await?) })
    }

    fn verify_audit(&self) -> StoreFuture<'_, VerifyReport> {
        self.blocking(Store::verify_audit)
    }

    fn verify_checkpoints(
        &self,
        file: PathBuf,
        public_key: String,
    ) -> StoreFuture<'_, CheckpointReport> {
        self.blocking(move |store| {
            let key = parse_public_key(&public_key)?;
            store.verify_checkpoints(&file, &key)
        })
    }

    fn recover_audit(&self, reason: String, operator: String) -> StoreFuture<'_, AuditReceipt> {
        self.blocking(move |store| store.recover_audit(&reason, &operator))
    }

    fn audit_records(&self, after: u64, limit: usize) -> StoreFuture<'_, Vec<AuditRecord>> {
        self.blocking(move |store| store.audit_page(after, limit))
    }

    fn create_approval(&self, draft: ApprovalDraft, now_ms: u64) -> StoreFuture<'_, Approval> {
        self.blocking(move |store| store.create_approval(draft, now_ms))
    }

    fn approval(&self, id: String) -> StoreFuture<'_, Approval> {
        self.blocking(move |store| store.approval(&id))
    }

    fn approvals(&self) -> StoreFuture<'_, Vec<Approval>> {
        self.blocking(Store::approvals)
    }

    fn decide_approval(
        &self,
        id: String,
        decider: String,
        decision: Verdict,
        note: Option<String>,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.settle(id, now_ms, move |store, id| {
            store.decide_approval(id, &decider, decision, note, now_ms)
        })
    }

    fn withdraw_approval(
        &self,
        id: String,
        by: String,
        how: Withdrawal,
        note: Option<String>,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.settle(id, now_ms, move |store, id| {
            store.withdraw_approval(id, &by, how, note, now_ms)
        })
    }

    fn expire_approvals(&self, now_ms: u64) -> StoreFuture<'_, Vec<Approval>> {
        Box::pin(async move {
            let expired = self
                .blocking(move |store| store.expire_approvals(now_ms))
                .await?;
            for approval in &expired {
                self.close(approval.clone(), now_ms).await?;
            }
            Ok(expired)
        })
    }

    fn changes(&self, seen: u64, timeout_ms: u64) -> StoreFuture<'_, u64> {
        let timeout = std::time::Duration::from_millis(timeout_ms);
        Box::pin(async move { Ok(self.changes_after(seen, timeout).await) })
    }

    fn query_audit(&self, query: AuditQuery) -> StoreFuture<'_, AuditSlice> {
        self.blocking(move |store| store.query_audit(&query))
    }

    fn consume_approval(
        &self,
        id: String,
        requester: String,
        tool: String,
        args_digest: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.settle(id, now_ms, move |store, id| {
            store.consume_approval(id, &requester, &tool, &args_digest, now_ms)
        })
    }

    fn runs(&self) -> StoreFuture<'_, Vec<Run>> {
        self.blocking(Store::runs)
    }

    fn run(&self, id: String) -> StoreFuture<'_, Run> {
        self.blocking(move |store| store.run(&id))
    }

    fn steps(&self, id: String) -> StoreFuture<'_, Vec<Step>> {
        self.blocking(move |store| store.steps(&id))
    }

    fn create_run(
        &self,
        goal: String,
        agent: String,
        meta: Value,
        now_ms: u64,
    ) -> StoreFuture<'_, Run> {
        self.blocking(move |store| store.create_run(&goal, &agent, meta, now_ms))
    }

    fn set_run_state(&self, id: String, state: RunState, now_ms: u64) -> StoreFuture<'_, Run> {
        self.blocking(move |store| store.set_run_state(&id, state, now_ms))
    }

    fn append_step(
        &self,
        id: String,
        kind: String,
        data: Value,
        now_ms: u64,
    ) -> StoreFuture<'_, Step> {
        self.blocking(move |store| store.append_step(&id, &kind, data, now_ms))
    }

    fn save_task(&self, id: String, record: Value) -> StoreFuture<'_, ()> {
        self.blocking(move |store| store.save_task(&id, &record))
    }

    fn task(&self, id: String) -> StoreFuture<'_, Value> {
        self.blocking(move |store| store.task(&id))
    }

    fn tasks(&self) -> StoreFuture<'_, Vec<(String, Value)>> {
        self.blocking(Store::tasks)
    }

    fn put_artifact(&self, bytes: Blob, media_type: String) -> StoreFuture<'_, ArtifactRef> {
        self.blocking(move |store| store.put_artifact(&bytes.0, &media_type))
    }

    fn put_upload(
        &self,
        bytes: Blob,
        media_type: String,
        principal: String,
        quota: u64,
    ) -> StoreFuture<'_, ArtifactRef> {
        self.blocking(move |store| store.put_upload(&bytes.0, &media_type, &principal, quota))
    }

    fn gc_artifacts(&self, before_ms: u64) -> StoreFuture<'_, ArtifactGc> {
        self.blocking(move |store| store.gc_artifacts(before_ms))
    }

    fn claim_notice(&self, key: String, now_ms: u64) -> StoreFuture<'_, bool> {
        self.blocking(move |store| store.claim_notice(&key, now_ms))
    }

    fn kept_artifacts(&self) -> StoreFuture<'_, Vec<KeptArtifact>> {
        self.blocking(Store::kept_artifacts)
    }

    fn enqueue_work(&self, drafts: Vec<WorkDraft>, now_ms: u64) -> StoreFuture<'_, Vec<WorkItem>> {
        self.blocking(move |store| store.enqueue_work(drafts, now_ms))
    }

    fn claim_work(
        &self,
        worker: String,
        kinds: Vec<WorkKind>,
        max: u32,
        lease_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'_, Vec<WorkItem>> {
        self.blocking(move |store| store.claim_work(&worker, &kinds, max, lease_ms, now_ms))
    }

    fn heartbeat(
        &self,
        worker: WorkerInfo,
        lease_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'_, Heartbeat> {
        self.blocking(move |store| store.heartbeat(&worker, lease_ms, now_ms))
    }

    fn finish_work(
        &self,
        id: String,
        worker: String,
        state: WorkState,
        result: Option<Value>,
        now_ms: u64,
    ) -> StoreFuture<'_, WorkItem> {
        self.blocking(move |store| store.finish_work(&id, &worker, state, result, now_ms))
    }

    fn cancel_work(
        &self,
        selector: String,
        by: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Vec<WorkItem>> {
        self.blocking(move |store| store.cancel_work(&selector, &by, now_ms))
    }

    fn work_item(&self, id: String) -> StoreFuture<'_, WorkItem> {
        self.blocking(move |store| store.work_item(&id))
    }

    fn work_items(&self, group: Option<String>) -> StoreFuture<'_, Vec<WorkItem>> {
        self.blocking(move |store| store.work_items(group.as_deref()))
    }

    fn workers(&self) -> StoreFuture<'_, Vec<WorkerInfo>> {
        self.blocking(Store::workers)
    }

    fn stats(&self) -> StoreFuture<'_, crate::StoreStats> {
        self.blocking(Store::stats)
    }

    fn artifact(&self, sha256: String) -> StoreFuture<'_, (ArtifactRef, Blob)> {
        self.blocking(move |store| {
            let (artifact, bytes) = store.artifact(&sha256)?;
            Ok((artifact, Blob(bytes)))
        })
    }
}

/// Answers for the socket: the owner's side of [`crate::api`]'s request enum.
pub(crate) async fn answer(store: &Store, line: &str) -> StoreResult<Value> {
    let request: crate::api::Request = serde_json::from_str(line)
        .map_err(|error| StoreError::protocol(format!("not a store request: {error}")))?;
    request.apply(store).await
}
