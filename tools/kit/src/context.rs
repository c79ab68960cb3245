use std::fmt;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::{ArtifactSink, Result, StoredArtifact, ToolError};

/// One progress update: `progress` out of `total` (when known), with an optional message.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Work done so far; must grow from one update to the next.
    pub progress: f64,
    /// Total work, when known.
    pub total: Option<f64>,
    /// What is happening now.
    pub message: Option<String>,
}

/// Where progress updates go. Implementations must not block: a tool reports from its hot
/// loop, and the transport delivers asynchronously.
pub trait ProgressSink: Send + Sync {
    /// Deliver one update.
    fn report(&self, update: Progress);
}

/// What a running tool may use from its caller: a cancellation token it must honour, and a
/// progress reporter it may use. Cheap to clone.
#[derive(Clone, Default)]
pub struct ToolContext {
    cancel: CancellationToken,
    progress: Option<Arc<dyn ProgressSink>>,
    principal: Option<Arc<crate::Principal>>,
    artifacts: Option<Arc<dyn ArtifactSink>>,
    sandbox: Option<Arc<crate::Sandbox>>,
    memory_budget: Option<u64>,
    oversight: Option<Arc<dyn crate::Oversight>>,
    steps: Option<Arc<dyn crate::StepSink>>,
    fanout: Option<Arc<dyn crate::Fanout>>,
}

/// Memory one call may use when no budget is configured (`[limits] call_memory_mb`): 2 GiB.
/// Tools estimate what a call needs from its parameters and input headers, and refuse it
/// before starting when the estimate is over, naming the parameter.
pub const DEFAULT_MEMORY_BUDGET: u64 = 2 << 30;

/// `bytes` as people read a memory size in a refusal: `2.2 GiB`, `22.9 MiB`, `512 bytes`.
pub fn shown_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    const GIB: f64 = (1u64 << 30) as f64;
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / GIB),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / MIB),
        b => format!("{b} bytes"),
    }
}

impl fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolContext")
            .field("cancelled", &self.cancel.is_cancelled())
            .field("reports_progress", &self.progress.is_some())
            .field("stores_artifacts", &self.artifacts.is_some())
            .finish()
    }
}

impl ToolContext {
    /// A context cancelled through `cancel`, reporting progress nowhere.
    pub fn new(cancel: CancellationToken) -> Self {
        ToolContext {
            cancel,
            progress: None,
            principal: None,
            artifacts: None,
            sandbox: None,
            memory_budget: None,
            oversight: None,
            steps: None,
            fanout: None,
        }
    }

    /// This context, deciding its nested actions with `oversight` (the gate sets it).
    pub fn with_oversight(mut self, oversight: Arc<dyn crate::Oversight>) -> Self {
        self.oversight = Some(oversight);
        self
    }

    /// Decide `action` for the caller; `cancel` (a child of this call's cancellation, or one
    /// the tool cancels when the asker goes away) withdraws a request still waiting. A tool
    /// run outside the gate has nobody to decide, so the action is refused.
    pub async fn decide(
        &self,
        action: crate::NestedAction,
        cancel: CancellationToken,
    ) -> Result<crate::Verdict> {
        match &self.oversight {
            Some(oversight) => oversight.decide(action, cancel).await,
            None => Ok(crate::Verdict::Refused {
                rule: "gate".into(),
                reason: format!(
                    "`{}` was asked outside Baton's gate, so nobody can decide it",
                    action.name
                ),
                approval_id: None,
            }),
        }
    }

    /// This context, keeping its steps in `sink` (an agent's run sets it).
    pub fn with_steps(mut self, sink: Arc<dyn crate::StepSink>) -> Self {
        self.steps = Some(sink);
        self
    }

    /// Keep `step` in the caller's run journal, when there is one.
    pub async fn step(&self, step: serde_json::Value) {
        if let Some(sink) = &self.steps {
            sink.step(step).await;
        }
    }

    /// This context, on behalf of `principal` (the gate sets it before running a tool).
    pub fn with_principal(mut self, principal: Arc<crate::Principal>) -> Self {
        self.principal = Some(principal);
        self
    }

    /// Who the call is for, once the gate has let it through.
    pub fn principal(&self) -> Option<&crate::Principal> {
        self.principal.as_deref()
    }

    /// This context, confined to `sandbox` (the gate sets it before running a tool).
    pub fn with_sandbox(mut self, sandbox: Arc<crate::Sandbox>) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// What the call may touch; `None` for a tool run directly, outside the gate.
    pub fn sandbox(&self) -> Option<&crate::Sandbox> {
        self.sandbox.as_deref()
    }

    /// This context, allowed `bytes` of memory (the gate sets it from the configuration).
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// How much memory this call may use ([`DEFAULT_MEMORY_BUDGET`] unless configured).
    pub fn memory_budget(&self) -> u64 {
        self.memory_budget.unwrap_or(DEFAULT_MEMORY_BUDGET)
    }

    /// This context, running batch items through `fanout` (the gate sets it when workers take
    /// batch items).
    pub fn with_fanout(mut self, fanout: Arc<dyn crate::Fanout>) -> Self {
        self.fanout = Some(fanout);
        self
    }

    /// Where this call's batch items run, when not here.
    pub fn fanout(&self) -> Option<Arc<dyn crate::Fanout>> {
        self.fanout.clone()
    }

    /// This context, keeping artifacts in `sink` (the gate sets it before running a tool).
    pub fn with_artifacts(mut self, sink: Arc<dyn ArtifactSink>) -> Self {
        self.artifacts = Some(sink);
        self
    }

    /// Keep `bytes` as an artifact of this call. `Ok(None)` when the call has no store behind
    /// it (a tool run directly, outside the gate); a store that fails is an error, so nothing
    /// a tool meant to keep is dropped in silence.
    pub async fn store_artifact(
        &self,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<Option<StoredArtifact>> {
        match &self.artifacts {
            Some(sink) => sink.put(bytes, media_type.to_owned()).await.map(Some),
            None => Ok(None),
        }
    }

    /// This context, reporting progress to `sink`.
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The token that fires when the caller gives up on the call.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether the caller has cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err(ToolError::Cancelled)` once the caller has cancelled; call it between units of work.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(ToolError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Whether anyone listens to progress; lets a tool skip computing messages nobody reads.
    pub fn reports_progress(&self) -> bool {
        self.progress.is_some()
    }

    /// Report `progress` of `total` with a message.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(sink) = &self.progress {
            sink.report(Progress {
                progress,
                total,
                message: Some(message.into()),
            });
        }
    }
}
