use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use baton_kit::{
    ArtifactSink, Effect, Invocation, Invoker, Outcome, PendingApproval, Principal, Registry,
    Result, SandboxMode, StoredArtifact, ToolDescriptor, ToolError, ToolOutput,
};
use baton_policies::{Decision, PolicyStore};
use baton_runs::{
    ApprovalDraft, AuditDraft, Blob, DecisionKind, DecisionRecord, OutcomeRecord, OutcomeStatus,
    StoreApi as _, StoreError, StoreHandle, args_digest, call_digest, redact,
};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::{Clock, SystemClock};
use serde_json::Value;

/// The single path every tool call takes, from any transport or agent:
/// resolve the tool → check its arguments → decide → (approve) → execute → audit.
///
/// [`Gate::run`] is generic over what executes, so calls that are not registry tools — the
/// conformance fixtures, tools of other MCP servers wrapped for our agents — pass the same
/// steps rather than a second path around them.
#[derive(Debug, Clone)]
pub struct Gate {
    registry: Arc<Registry>,
    policy: Arc<PolicyStore>,
    store: StoreHandle,
    enforce: bool,
    /// Paths no tool may write and commands never see (config, policy, data).
    protected: Arc<Vec<std::path::PathBuf>>,
    /// How this host confines commands (`bubblewrap 0.8.0`, or why it cannot), for the audit.
    commands: Arc<str>,
    /// Memory one call may use (`[limits] call_memory_mb`).
    memory_budget: u64,
    /// How many calls run at once.
    limits: Arc<crate::limits::CallLimits>,
    /// Inline content and upload quota.
    uploads: crate::Uploads,
    /// What time it is, for approvals and audit records.
    clock: Arc<dyn Clock>,
    /// Calls between decision and audit record right now.
    in_flight: Arc<AtomicUsize>,
    /// Cancelled when the server stops: every running call ends as cancelled, audited.
    stopping: CancellationToken,
    /// Where batch items run when workers take them (`[workers] batches`); `None`: here.
    fanout: Option<Arc<dyn baton_kit::Fanout>>,
    /// Counters for `/metrics`, when they are kept (`[telemetry] metrics`).
    metrics: Option<Arc<crate::Metrics>>,
}

/// How the policy decides a call through [`Gate::run_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deciding {
    /// A tool call.
    Call,
    /// An action a tool's helper asks to take beyond its sandbox: nothing by default.
    Nested,
}

/// One call inside the gate; counted until dropped.
struct Flight(Arc<AtomicUsize>);

impl Flight {
    fn enter(count: &Arc<AtomicUsize>) -> Flight {
        count.fetch_add(1, Ordering::SeqCst);
        Flight(count.clone())
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Longest error message kept in an audit record: enough to tell what happened, short enough
/// not to carry a payload.
const AUDIT_MESSAGE_CHARS: usize = 200;

impl Gate {
    /// A gate over `registry`, deciding with `policy` and recording in `store`.
    pub fn new(registry: Arc<Registry>, policy: Arc<PolicyStore>, store: StoreHandle) -> Gate {
        Gate {
            registry,
            policy,
            store,
            enforce: true,
            protected: Arc::new(Vec::new()),
            commands: Arc::from("not described"),
            memory_budget: baton_kit::DEFAULT_MEMORY_BUDGET,
            limits: Arc::new(crate::limits::CallLimits::new(
                16,
                2,
                std::time::Duration::from_secs(30),
            )),
            uploads: crate::Uploads::default(),
            clock: Arc::new(SystemClock),
            in_flight: Arc::new(AtomicUsize::new(0)),
            stopping: CancellationToken::new(),
            fanout: None,
            metrics: None,
        }
    }

    /// Count every call in `metrics` (`/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> Gate {
        self.metrics = Some(metrics);
        self
    }

    /// The counters of this gate's calls, when kept.
    pub fn metrics(&self) -> Option<&Arc<crate::Metrics>> {
        self.metrics.as_ref()
    }

    /// Hand the items of batch calls to `fanout` (workers) instead of running them here.
    pub fn with_fanout(mut self, fanout: Arc<dyn baton_kit::Fanout>) -> Gate {
        self.fanout = Some(fanout);
        self
    }

    /// Cancel every call running through this gate (and its clones): each ends as
    /// `cancelled`, with its audit record. For a server that is stopping.
    pub fn stop_calls(&self) {
        self.stopping.cancel();
    }

    /// Wait until no call is inside the gate (each has its audit record), at most `limit`;
    /// whether none is. A server shutting down calls it after cancelling its calls.
    pub async fn quiesce(&self, limit: std::time::Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        true
    }

    /// This gate, telling the time by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Gate {
        self.clock = clock;
        self
    }

    /// The clock the gate tells the time by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// This gate, running calls within `limits`.
    pub fn with_limits(mut self, limits: crate::limits::CallLimits) -> Gate {
        self.limits = Arc::new(limits);
        self
    }

    /// This gate, allowing each call `bytes` of memory (tools refuse calls estimated above).
    pub fn with_memory_budget(mut self, bytes: u64) -> Gate {
        self.memory_budget = bytes;
        self
    }

    /// This gate, recording `commands` — how this host confines commands — in the audit.
    pub fn confining_commands_with(mut self, commands: &str) -> Gate {
        self.commands = Arc::from(commands);
        self
    }

    /// How a call confined to `sandbox` runs, in the words the audit keeps.
    fn describe(&self, sandbox: &baton_kit::Sandbox) -> String {
        match sandbox.mode {
            SandboxMode::ReadOnly => "read-only".to_owned(),
            SandboxMode::DangerFullAccess => "danger-full-access: unconfined".to_owned(),
            SandboxMode::WorkspaceWrite => {
                let roots: Vec<String> = sandbox
                    .writable_roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect();
                format!(
                    "workspace-write: files beneath [{}] (no symlink followed, .git and Baton's \
                     own files read-only); commands: {}, network {}",
                    roots.join(", "),
                    self.commands,
                    if sandbox.network { "granted" } else { "off" }
                )
            }
        }
    }

    /// How a call of `descriptor` by `principal` would be confined, in the words the audit
    /// keeps; `None` for reads. Reviewers see this before they approve a command.
    pub fn confinement(
        &self,
        principal: &Principal,
        descriptor: &ToolDescriptor,
    ) -> Option<String> {
        (descriptor.effect != Effect::Read)
            .then(|| self.describe(&self.policy.current().sandbox_for(principal, descriptor)))
    }

    /// This gate, keeping `paths` read-only (and hidden from commands) for every call.
    pub fn protecting(mut self, paths: Vec<std::path::PathBuf>) -> Gate {
        self.protected = Arc::new(paths);
        self
    }

    /// A gate that decides nothing and records nothing: only for `baton-bench` to measure
    /// what the gate costs. Never reachable from configuration.
    pub fn without_enforcement(mut self) -> Gate {
        tracing::warn!("the gate is OFF: no policy, no approvals, no audit (benchmark only)");
        self.enforce = false;
        self
    }

    /// The paths no call may write (Baton's config, policy and data).
    pub fn protected(&self) -> &[std::path::PathBuf] {
        &self.protected
    }

    /// The tools behind the gate.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The policy in force.
    pub fn policy(&self) -> &PolicyStore {
        &self.policy
    }

    /// The store the gate records in.
    pub fn store(&self) -> &StoreHandle {
        &self.store
    }

    /// Call a registered tool.
    pub async fn call(&self, invocation: Invocation) -> Result<Outcome> {
        let Invocation {
            principal,
            tool,
            args,
            approval_id,
            context,
        } = invocation;
        let Some(tool) = self.registry.get(&tool).cloned() else {
            return Err(ToolError::not_found(format!("tool `{tool}`")));
        };
        self.limits.pace(&principal.id)?;
        let crate::files::Prepared {
            given,
            local,
            descriptor,
            files,
        } = crate::files::prepare(
            &self.store,
            self.uploads,
            &principal.id,
            tool.descriptor(),
            args,
        )
        .await?;
        let bound = tool.clone().bind(local.as_ref().unwrap_or(&given))?;
        let decided = descriptor.as_ref().unwrap_or(tool.descriptor());
        let mut sandbox = self.policy.current().sandbox_for(&principal, decided);
        sandbox.protected = self.protected.to_vec();
        if let Some(out) = &files.kept_only {
            // The call's private folder: what it writes there is kept in the store, nowhere else.
            sandbox.writable_roots.push(out.clone());
            if sandbox.mode == SandboxMode::ReadOnly {
                sandbox.mode = SandboxMode::WorkspaceWrite;
            }
        }
        let oversight = crate::oversight::GateOversight {
            gate: self.clone(),
            principal: principal.clone(),
        };
        let context = context
            .with_oversight(Arc::new(oversight))
            .with_principal(principal.clone())
            .with_sandbox(Arc::new(sandbox))
            .with_memory_budget(self.memory_budget)
            .with_artifacts(Arc::new(StoreArtifacts(self.store.clone())));
        let context = match &self.fanout {
            Some(fanout) => context.with_fanout(fanout.clone()),
            None => context,
        };
        let limits = self.limits.clone();
        let heavy = tool.descriptor().heavy;
        let caller = principal.id.clone();
        let store = self.store.clone();
        let cancel = context.cancellation().clone();
        // A heavy read can be left running when its caller cancels: it changes nothing, so
        // the call ends (and is audited) as cancelled at once, while the work — on blocking
        // threads that may not look at the cancellation for seconds — finishes on its own,
        // holding its room.
        let abandon = decided.effect == Effect::Read;
        // Room is taken only once the call is allowed to run: the future is polled then.
        let execute = async move {
            let room = tokio::select! {
                room = limits.admit(&caller, heavy) => room?,
                () = cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            let work = async move {
                let _room = room;
                let mut output = bound
                    .run(context)
                    .await
                    .map_err(|error| files.scrub_error(error))?;
                files.keep(&store, &mut output).await?;
                Ok::<ToolOutput, ToolError>(output)
            };
            // Writes and commands are awaited, so the record says what they did; a light read
            // is awaited too: it sees the cancellation and ends promptly on its own.
            if !abandon || !heavy {
                return work.await;
            }
            // A heavy read runs on blocking threads that cannot be dropped: it goes on by
            // itself, holding its heavy slot until it ends.
            let work = tokio::spawn(crate::trace::carried(work));
            tokio::select! {
                joined = work => joined.map_err(|e| {
                    ToolError::failed(format!("the call stopped abnormally: {e}"))
                })?,
                () = cancel.cancelled() => Err(ToolError::Cancelled),
            }
        };
        self.run(&principal, decided, &given, approval_id.as_deref(), execute)
            .await
    }

    /// Take one call from `principal`'s rate (`limits.calls_per_minute`), or refuse as busy:
    /// for a face that starts work the gate runs later (a job), so a flood of starts is
    /// refused before anything is kept. The call itself is paced again when it runs.
    pub fn pace(&self, principal: &Principal) -> Result<()> {
        // Only with room for the call the job makes too.
        self.limits.pace_leaving(&principal.id, 1.0)
    }

    /// Keep `bytes` that `principal` uploads (`POST /v1/artifacts`), within its quota.
    pub async fn upload(
        &self,
        principal: &Principal,
        bytes: Vec<u8>,
        media_type: String,
    ) -> std::result::Result<baton_runs::ArtifactRef, StoreError> {
        crate::files::keep_upload(&self.store, self.uploads, &principal.id, bytes, media_type).await
    }

    /// This gate, taking inline content and uploads within `uploads`.
    pub fn with_uploads(mut self, uploads: crate::Uploads) -> Gate {
        self.uploads = uploads;
        self
    }

    /// Run `execute` — a call of the tool `descriptor` with `args` — through the gate. The
    /// future is polled only if the call is allowed.
    pub async fn run<T>(
        &self,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        args: &Value,
        approval_id: Option<&str>,
        execute: impl Future<Output = Result<T>> + Send,
    ) -> Result<Outcome<T>> {
        self.run_as(
            Deciding::Call,
            principal,
            descriptor,
            args,
            approval_id,
            execute,
        )
        .await
    }

    /// [`Gate::run`], deciding as `deciding` says.
    pub(crate) async fn run_as<T>(
        &self,
        deciding: Deciding,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        args: &Value,
        approval_id: Option<&str>,
        execute: impl Future<Output = Result<T>> + Send,
    ) -> Result<Outcome<T>> {
        if !self.enforce {
            return execute.await.map(Outcome::Completed);
        }
        if let Some(face) = crate::trace::face_span(&descriptor.name) {
            face.record(
                "baton.principal",
                tracing::field::display(principal.audited()),
            );
            return self
                .pass(deciding, principal, descriptor, args, approval_id, execute)
                .await;
        }
        // Named as OpenTelemetry's GenAI conventions name a tool's execution; the arguments
        // appear only as their digest.
        let span = tracing::debug_span!(
            "gate",
            otel.name = %format_args!("gate {}", descriptor.name),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %descriptor.name,
            baton.principal = %principal.audited(),
            baton.args_digest = tracing::field::Empty,
            baton.decision = tracing::field::Empty,
            baton.outcome = tracing::field::Empty,
            baton.audit.seq = tracing::field::Empty,
        );
        self.pass(deciding, principal, descriptor, args, approval_id, execute)
            .instrument(span)
            .await
    }

    /// [`Gate::run_as`] inside its span.
    async fn pass<T>(
        &self,
        deciding: Deciding,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        args: &Value,
        approval_id: Option<&str>,
        execute: impl Future<Output = Result<T>> + Send,
    ) -> Result<Outcome<T>> {
        let _flight = Flight::enter(&self.in_flight);
        let started = Instant::now();
        let time_ms = self.clock.now_ms();
        let digest = args_digest(args);
        tracing::Span::current().record("baton.args_digest", digest.as_str());
        let policy = self.policy.current();
        let decision = tracing::debug_span!("gate.decide").in_scope(|| match deciding {
            Deciding::Call => policy.decide(principal, descriptor, args),
            Deciding::Nested => policy.decide_nested(principal, descriptor, args),
        });
        let mut audit = AuditDraft {
            time_ms,
            principal: principal.audited(),
            tool: descriptor.name.clone(),
            args_digest: digest.clone(),
            decision: DecisionRecord {
                kind: match &decision {
                    Decision::Allow { .. } => DecisionKind::Allow,
                    Decision::NeedsApproval { .. } => DecisionKind::NeedsApproval,
                    Decision::Forbid { .. } => DecisionKind::Forbid,
                },
                rule: decision.rule_name(),
                reason: decision.reason().map(str::to_owned),
            },
            approval_id: approval_id.map(str::to_owned),
            decided_by: None,
            outcome: outcome_ok(),
            duration_us: 0,
            sandbox: self.confinement(principal, descriptor),
        };
        match decision {
            Decision::Forbid { rule, reason } => {
                let error = ToolError::Denied {
                    rule: rule.into_owned(),
                    reason,
                };
                audit.outcome = outcome_denied(&error);
                self.record(principal, audit, started).await?;
                Err(error)
            }
            Decision::NeedsApproval { rule, reason } => match approval_id {
                Some(id) => {
                    // The approval binds the arguments secrets included; the audit keeps only
                    // the redacted digest.
                    let binding = call_digest(args);
                    let consumed = self
                        .consume(id, principal, descriptor, binding)
                        .instrument(tracing::debug_span!(
                            "gate.approval",
                            // The caller's to choose: recorded only as long as an id is.
                            baton.approval_id = if id.len() <= 64 { id } else { "(too long)" },
                        ))
                        .await;
                    if let Err(error) = consumed {
                        audit.outcome = outcome_denied(&error);
                        self.record(principal, audit, started).await?;
                        return Err(error);
                    }
                    self.execute(principal, audit, started, execute).await
                }
                None => {
                    let draft = ApprovalDraft {
                        requester: principal.id.clone(),
                        tool: descriptor.name.clone(),
                        args_digest: call_digest(args),
                        args: redact(args),
                        reason: reason.clone(),
                        rule: rule.to_string(),
                        ttl_ms: self.policy.current().approval_ttl.as_millis() as u64,
                    };
                    let approval_id = self
                        .request(draft)
                        .instrument(tracing::debug_span!("gate.approval"))
                        .await?;
                    audit.approval_id = Some(approval_id.clone());
                    audit.outcome = OutcomeRecord {
                        status: OutcomeStatus::PendingApproval,
                        error_kind: None,
                        message: None,
                    };
                    self.record(principal, audit, started).await?;
                    Ok(Outcome::PendingApproval(PendingApproval {
                        approval_id,
                        reason: format!("{rule}: {reason}"),
                    }))
                }
            },
            Decision::Allow { .. } => self.execute(principal, audit, started, execute).await,
        }
    }

    /// Refuse a call before its policy decision, on the record: what binds calls before the
    /// gate (a run's repository) denies through here, so the audit log still holds every call.
    pub async fn refuse(
        &self,
        principal: &Principal,
        tool: &str,
        args: &Value,
        error: ToolError,
    ) -> Result<Outcome> {
        let ToolError::Denied { rule, reason } = &error else {
            return Err(error);
        };
        let audit = AuditDraft {
            time_ms: self.clock.now_ms(),
            principal: principal.audited(),
            tool: tool.to_owned(),
            args_digest: args_digest(args),
            decision: DecisionRecord {
                kind: DecisionKind::Forbid,
                rule: rule.clone().into(),
                reason: Some(reason.clone()),
            },
            approval_id: None,
            decided_by: None,
            outcome: outcome_denied(&error),
            duration_us: 0,
            sandbox: None,
        };
        self.record(principal, audit, Instant::now()).await?;
        Err(error)
    }

    /// Use approval `id` for this call: it must be approved, unexpired, unused, and for this
    /// requester, tool and arguments. A refusal is the caller's denial, not a failure.
    async fn consume(
        &self,
        id: &str,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        digest: String,
    ) -> Result<()> {
        let consumed = self
            .store
            .consume_approval(
                id.to_owned(),
                principal.id.clone(),
                descriptor.name.clone(),
                digest,
                self.clock.now_ms(),
            )
            .await;
        match consumed {
            Ok(_) => Ok(()),
            Err(
                StoreError::Approval { message }
                | StoreError::NotFound { message }
                | StoreError::Ambiguous { message },
            ) => Err(ToolError::Denied {
                rule: "approval".into(),
                reason: message,
            }),
            Err(other) => Err(ToolError::unavailable(format!("approval store: {other}"))),
        }
    }

    /// Record a pending approval; its id.
    async fn request(&self, draft: ApprovalDraft) -> Result<String> {
        let approval = self
            .store
            .create_approval(draft, self.clock.now_ms())
            .await
            .map_err(|e| {
                ToolError::unavailable(format!("cannot record the approval request: {e}"))
            })?;
        Ok(approval.id)
    }

    async fn execute<T>(
        &self,
        principal: &Principal,
        mut audit: AuditDraft,
        started: Instant,
        execute: impl Future<Output = Result<T>> + Send,
    ) -> Result<Outcome<T>> {
        let result = tokio::select! {
            result = execute.instrument(tracing::debug_span!("gate.execute")) => result,
            () = self.stopping.cancelled() => Err(ToolError::Cancelled),
        };
        audit.outcome = match &result {
            Ok(_) => outcome_ok(),
            Err(error) => OutcomeRecord {
                status: OutcomeStatus::Error,
                error_kind: Some(Cow::Borrowed(error.kind().as_str())),
                message: Some(short(&error.to_string())),
            },
        };
        self.record(principal, audit, started).await?;
        result.map(Outcome::Completed)
    }

    /// Append the audit record; a call whose record cannot be written fails, whatever it did:
    /// nothing leaves the gate unaudited.
    async fn record(
        &self,
        principal: &Principal,
        mut audit: AuditDraft,
        started: Instant,
    ) -> Result<()> {
        audit.duration_us = started.elapsed().as_micros() as u64;
        if let Some(metrics) = &self.metrics {
            metrics.call(principal, &audit);
        }
        // The gate's span (outside it, as for `refuse`, no field is declared and none is set).
        let gate = tracing::Span::current();
        gate.record("baton.decision", audit.decision.kind.as_str());
        gate.record("baton.outcome", audit.outcome.status.as_str());
        let tool = audit.tool.clone();
        self.store
            .append_audit(audit)
            .instrument(tracing::debug_span!("gate.audit"))
            .await
            .map(|receipt| {
                gate.record("baton.audit.seq", receipt.seq);
            })
            .map_err(|error| {
                tracing::error!(%error, %tool, "audit record not written; failing the call");
                ToolError::unavailable(format!(
                    "the audit log cannot take this call's record ({error}); its result is withheld"
                ))
            })
    }
}

/// A call's artifacts, kept in the store the gate records in.
struct StoreArtifacts(StoreHandle);

impl ArtifactSink for StoreArtifacts {
    fn put(
        &self,
        bytes: Vec<u8>,
        media_type: String,
    ) -> BoxFuture<'static, Result<StoredArtifact>> {
        let store = self.0.clone();
        Box::pin(async move {
            let kept = store
                .put_artifact(Blob(bytes), media_type)
                .await
                .map_err(|e| ToolError::failed(format!("cannot keep the artifact: {e}")))?;
            Ok(StoredArtifact::new(kept.sha256, kept.size, kept.media_type))
        })
    }
}

fn outcome_ok() -> OutcomeRecord {
    OutcomeRecord {
        status: OutcomeStatus::Ok,
        error_kind: None,
        message: None,
    }
}

fn outcome_denied(error: &ToolError) -> OutcomeRecord {
    OutcomeRecord {
        status: OutcomeStatus::Denied,
        error_kind: Some(Cow::Borrowed(error.kind().as_str())),
        message: Some(short(&error.to_string())),
    }
}

fn short(message: &str) -> String {
    if message.chars().count() <= AUDIT_MESSAGE_CHARS {
        return message.to_owned();
    }
    let cut: String = message.chars().take(AUDIT_MESSAGE_CHARS).collect();
    format!("{cut}…")
}

impl Invoker for Gate {
    fn tools(&self, _principal: &Principal) -> Vec<ToolDescriptor> {
        self.registry.descriptors().cloned().collect()
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Outcome>> {
        Box::pin(self.call(invocation))
    }
}
