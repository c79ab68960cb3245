//! The embedded sled store as a [`StoreApi`] backend. Everything but the audit append may
//! fsync, so it runs on the blocking pool rather than on the async workers.

use std::path::PathBuf;

use serde_json::Value;

use crate::api::{Blob, StoreApi, StoreError, StoreFuture, StoreResult};
use crate::{
    Approval, ApprovalDraft, ArtifactRef, AuditDraft, AuditReceipt, AuditRecord, CheckpointReport,
    Run, RunState, Step, Store, Verdict, VerifyReport, parse_public_key,
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
        self.blocking(move |store| store.decide_approval(&id, &decider, decision, note, now_ms))
    }

    fn consume_approval(
        &self,
        id: String,
        requester: String,
        tool: String,
        args_digest: String,
        now_ms: u64,
    ) -> StoreFuture<'_, Approval> {
        self.blocking(move |store| {
            store.consume_approval(&id, &requester, &tool, &args_digest, now_ms)
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

    fn put_artifact(&self, bytes: Blob, media_type: String) -> StoreFuture<'_, ArtifactRef> {
        self.blocking(move |store| store.put_artifact(&bytes.0, &media_type))
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
