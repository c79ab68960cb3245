//! Access to the store from any Baton process.
//!
//! sled lets one process open the store at a time, but people run `baton` from several shells,
//! hooks and scripts while a server is up. The first long-running process to open the store
//! owns it and serves it on a Unix socket in the data folder (`baton.sock`, mode 0600); every
//! other process hands its store operations to the owner over that socket. If the owner goes
//! away, the next operation takes the store over (or finds the new owner). Nothing fails with a
//! lock error; an operation waits, with back-off, at most [`WAIT`] for the store.
//!
//! Local and remote operations share one dispatcher ([`dispatch`]), so the socket speaks
//! exactly the store's API. The audit append — the hot path — skips it when local.

mod client;
mod protocol;
mod service;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_runs::{
    Approval, ApprovalDecision, ApprovalDraft, ArtifactRef, AuditDraft, AuditReceipt, AuditRecord,
    CheckpointReport, Run, RunState, RunsError, Step, Store, StoreOptions, VerifyReport,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use protocol::Request;
use protocol::{ArtifactBytes, dispatch};

/// How long an operation waits for the store before giving up.
pub const WAIT: Duration = Duration::from_secs(30);

/// A store operation that failed, with a kind that survives the socket.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    /// `not_found`, `ambiguous`, `approval`, `busy`, `storage`, `corrupt`, `protocol`…
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
}

impl StoreError {
    pub(crate) fn new(kind: &str, message: impl Into<String>) -> Self {
        StoreError {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

impl From<RunsError> for StoreError {
    fn from(error: RunsError) -> Self {
        StoreError::new(error.kind(), error.to_string())
    }
}

/// Whether this process may become the owner that serves the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// A server: owns the store if nobody does, and serves it to others.
    Serve,
    /// A short-lived command: uses the owner if there is one, else opens the store itself
    /// without serving it.
    Borrow,
}

enum Backend {
    Local {
        store: Store,
        _service: Option<service::Service>,
    },
    Remote(client::Client),
}

/// The store, local or through its owner.
#[derive(Clone)]
pub struct StoreHandle {
    data_dir: PathBuf,
    ownership: Ownership,
    options: StoreOptions,
    backend: Arc<RwLock<Option<Arc<Backend>>>>,
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("data_dir", &self.data_dir)
            .field("ownership", &self.ownership)
            .finish()
    }
}

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("baton.sock")
}

impl StoreHandle {
    /// A handle on the store in `data_dir`; nothing is opened until the first operation.
    pub fn new(data_dir: PathBuf, ownership: Ownership) -> StoreHandle {
        StoreHandle {
            data_dir,
            ownership,
            options: StoreOptions::default(),
            backend: Arc::new(RwLock::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Open the store, when this process opens it, with `options` (checkpoint signing).
    pub fn with_options(mut self, options: StoreOptions) -> StoreHandle {
        self.options = options;
        self
    }

    /// Open (or reach) the store now rather than on first use.
    pub async fn connect(&self) -> Result<(), StoreError> {
        self.backend().await.map(drop)
    }

    /// Whether this process owns the store.
    pub fn is_owner(&self) -> bool {
        self.current()
            .is_some_and(|backend| matches!(*backend, Backend::Local { .. }))
    }

    fn current(&self) -> Option<Arc<Backend>> {
        self.backend.read().ok().and_then(|slot| slot.clone())
    }

    async fn backend(&self) -> Result<Arc<Backend>, StoreError> {
        if let Some(backend) = self.current() {
            return Ok(backend);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(backend) = self.current() {
            return Ok(backend);
        }
        let backend = Arc::new(self.establish().await?);
        if let Ok(mut slot) = self.backend.write() {
            *slot = Some(backend.clone());
        }
        Ok(backend)
    }

    /// Reach the owner, or become it, waiting with back-off while another process holds the
    /// store without serving it.
    async fn establish(&self) -> Result<Backend, StoreError> {
        let socket = socket_path(&self.data_dir);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut delay = Duration::from_millis(5);
        loop {
            if let Ok(client) = client::Client::connect(&socket).await {
                tracing::debug!(socket = %socket.display(), "using the store's owner");
                return Ok(Backend::Remote(client));
            }
            let data_dir = self.data_dir.clone();
            let options = self.options.clone();
            let opened = tokio::task::spawn_blocking(move || Store::open_with(&data_dir, options))
                .await
                .map_err(|e| StoreError::new("storage", format!("opening the store: {e}")))?;
            match opened {
                Ok(store) => {
                    // A server never starts on an audit log that would refuse its records.
                    if self.ownership == Ownership::Serve
                        && let Some(problem) = store.audit_refusal()
                    {
                        return Err(RunsError::AuditRefused(Box::new(problem)).into());
                    }
                    let service = match self.ownership {
                        Ownership::Serve => Some(service::Service::start(store.clone(), &socket)?),
                        Ownership::Borrow => None,
                    };
                    return Ok(Backend::Local {
                        store,
                        _service: service,
                    });
                }
                Err(RunsError::Locked(_)) => {}
                Err(error) => return Err(error.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::new(
                    "busy",
                    format!(
                        "the store in `{}` has been held by another process for {} s without being served; is a `baton` command stuck?",
                        self.data_dir.display(),
                        WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// Run `request`, locally or through the owner, and decode its answer. A lost owner is
    /// replaced once, transparently.
    pub async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T, StoreError> {
        let value = self.call_value(request).await?;
        serde_json::from_value(value)
            .map_err(|e| StoreError::new("protocol", format!("store answer does not decode: {e}")))
    }

    async fn call_value(&self, request: Request) -> Result<Value, StoreError> {
        for attempt in 0..2 {
            let backend = self.backend().await?;
            match &*backend {
                Backend::Local { store, .. } => return dispatch(store, request).await,
                Backend::Remote(client) => match client.call(&request).await {
                    Ok(answer) => return answer,
                    Err(lost) if attempt == 0 => {
                        tracing::info!(%lost, "lost the store's owner; reconnecting");
                        self.forget(&backend);
                    }
                    Err(lost) => return Err(StoreError::new("busy", lost.to_string())),
                },
            }
        }
        Err(StoreError::new(
            "busy",
            "the store's owner keeps going away",
        ))
    }

    fn forget(&self, failed: &Arc<Backend>) {
        if let Ok(mut slot) = self.backend.write()
            && slot.as_ref().is_some_and(|b| Arc::ptr_eq(b, failed))
        {
            *slot = None;
        }
    }

    /// Append an audit record; returns once it is on disk (the owner's disk when remote).
    pub async fn append_audit(&self, draft: AuditDraft) -> Result<AuditReceipt, StoreError> {
        if let Some(backend) = self.current()
            && let Backend::Local { store, .. } = &*backend
        {
            return Ok(store.append_audit(draft).await?);
        }
        self.call(Request::AppendAudit { draft }).await
    }

    /// Walk the audit chain.
    pub async fn verify_audit(&self) -> Result<VerifyReport, StoreError> {
        self.call(Request::VerifyAudit).await
    }

    /// Check a checkpoint file against the chain and a public key (64 hex digits).
    pub async fn verify_checkpoints(
        &self,
        file: &Path,
        public_key: &str,
    ) -> Result<CheckpointReport, StoreError> {
        self.call(Request::VerifyCheckpoints {
            file: file.to_owned(),
            public_key: public_key.into(),
        })
        .await
    }

    /// Accept the loss the audit log refuses over, on the record.
    pub async fn recover_audit(
        &self,
        reason: &str,
        operator: &str,
    ) -> Result<AuditReceipt, StoreError> {
        self.call(Request::RecoverAudit {
            reason: reason.into(),
            operator: operator.into(),
        })
        .await
    }

    /// Audit records with `seq > after`, at most `limit`.
    pub async fn audit_records(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.call(Request::AuditRecords { after, limit }).await
    }

    /// Record a pending approval.
    pub async fn create_approval(
        &self,
        draft: ApprovalDraft,
        now_ms: u64,
    ) -> Result<Approval, StoreError> {
        self.call(Request::CreateApproval { draft, now_ms }).await
    }

    /// One approval by id or unique prefix.
    pub async fn approval(&self, id: &str) -> Result<Approval, StoreError> {
        self.call(Request::Approval { id: id.into() }).await
    }

    /// All approvals, newest first.
    pub async fn approvals(&self) -> Result<Vec<Approval>, StoreError> {
        self.call(Request::Approvals).await
    }

    /// Decide an approval.
    pub async fn decide_approval(
        &self,
        id: &str,
        decider: &str,
        decision: ApprovalDecision,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Approval, StoreError> {
        self.call(Request::DecideApproval {
            id: id.into(),
            decider: decider.into(),
            decision,
            note,
            now_ms,
        })
        .await
    }

    /// Use an approval for the call it approved.
    pub async fn consume_approval(
        &self,
        id: &str,
        requester: &str,
        tool: &str,
        args_digest: &str,
        now_ms: u64,
    ) -> Result<Approval, StoreError> {
        self.call(Request::ConsumeApproval {
            id: id.into(),
            requester: requester.into(),
            tool: tool.into(),
            args_digest: args_digest.into(),
            now_ms,
        })
        .await
    }

    /// All runs, newest first.
    pub async fn runs(&self) -> Result<Vec<Run>, StoreError> {
        self.call(Request::Runs).await
    }

    /// One run by id or unique prefix.
    pub async fn run(&self, id: &str) -> Result<Run, StoreError> {
        self.call(Request::Run { id: id.into() }).await
    }

    /// The journal of a run.
    pub async fn steps(&self, id: &str) -> Result<Vec<Step>, StoreError> {
        self.call(Request::Steps { id: id.into() }).await
    }

    /// Start a run.
    pub async fn create_run(
        &self,
        goal: &str,
        agent: &str,
        meta: Value,
        now_ms: u64,
    ) -> Result<Run, StoreError> {
        self.call(Request::CreateRun {
            goal: goal.into(),
            agent: agent.into(),
            meta,
            now_ms,
        })
        .await
    }

    /// Change a run's state.
    pub async fn set_run_state(
        &self,
        id: &str,
        state: RunState,
        now_ms: u64,
    ) -> Result<Run, StoreError> {
        self.call(Request::SetRunState {
            id: id.into(),
            state,
            now_ms,
        })
        .await
    }

    /// Keep `bytes` as an artifact (content-addressed: the same bytes are kept once).
    pub async fn put_artifact(
        &self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<ArtifactRef, StoreError> {
        self.call(Request::PutArtifact {
            data: BASE64.encode(bytes),
            media_type: media_type.into(),
        })
        .await
    }

    /// An artifact and its bytes.
    pub async fn artifact(&self, sha256: &str) -> Result<(ArtifactRef, Vec<u8>), StoreError> {
        let answer: ArtifactBytes = self
            .call(Request::Artifact {
                sha256: sha256.into(),
            })
            .await?;
        let bytes = BASE64.decode(answer.data.as_bytes()).map_err(|e| {
            StoreError::new("protocol", format!("artifact bytes are not base64: {e}"))
        })?;
        Ok((answer.artifact, bytes))
    }

    /// Journal a step.
    pub async fn append_step(
        &self,
        id: &str,
        kind: &str,
        data: Value,
        now_ms: u64,
    ) -> Result<Step, StoreError> {
        self.call(Request::AppendStep {
            id: id.into(),
            kind: kind.into(),
            data,
            now_ms,
        })
        .await
    }
}
