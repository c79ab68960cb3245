//! MCP tasks: a tool whose descriptor says it is `long` (a folder of photos, a separation),
//! called by a client that declares the tasks extension, runs as a task — the client gets a
//! task id at once and follows it with `tasks/get`, or stops it with `tasks/cancel`. rmcp 3.9
//! implements the 2026-07-28 tasks extension (SEP-2663), which any session can declare; the
//! 2025-11-25 `task` parameter is ignored, and such calls run as plain calls.
//!
//! The call inside runs through the gate like any call, audited once with its final outcome.
//! Each task's record is kept in the store (who asked, which tool, its state and result), so
//! its outcome survives the server; a server that died mid-task finds the task at its next
//! start, closes it as failed and writes the audit record the call never got ([`recover`]).

use std::future::Future;
use std::pin::Pin;

use baton_kit::{Progress, ProgressSink, ToolContext};
use baton_runs::{
    AuditDraft, DecisionKind, DecisionRecord, OutcomeRecord, OutcomeStatus, StoreApi as _,
    StoreError, StoreHandle, args_digest,
};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, CreateTaskResult, DetailedTask, GetTaskResult, Task, TaskPayload, TaskStatus,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

/// Longest text of a failed task's error the store keeps: errors may quote what was sent.
const ERROR_BYTES: usize = 2000;

/// Every string in `value` cut to [`ERROR_BYTES`].
fn clip(value: &mut Value) {
    match value {
        Value::String(text) => baton_kit::clip(text, ERROR_BYTES),
        Value::Array(items) => items.iter_mut().for_each(clip),
        Value::Object(map) => map.values_mut().for_each(clip),
        _ => {}
    }
}

/// How long a task and its result are kept (and the longest a task may run).
const TTL_MS: u64 = 24 * 3600 * 1000;
/// How often clients are asked to poll.
const POLL_MS: u64 = 500;

/// What the store keeps of a task.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    principal: String,
    tool: String,
    args_digest: String,
    created_ms: u64,
    /// The task as `tasks/get` answers it (its wire form).
    detailed: Value,
    /// The server process running it; absent in records from before servers shared a store.
    #[serde(default)]
    owner: Option<Owner>,
}

/// A server process, as the tasks it runs name it: several servers on several machines may
/// share one store, and a server that starts closes only the tasks of dead processes on its
/// own machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Owner {
    host: String,
    pid: u32,
    /// Unique per process start: a restarted server can have its predecessor's pid (PID 1
    /// in a container).
    instance: String,
}

impl Owner {
    fn this_process() -> &'static Owner {
        static THIS: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        THIS.get_or_init(|| Owner {
            host: host_name(),
            pid: std::process::id(),
            instance: baton_runs::new_id(),
        })
    }

    /// Whether this owner's process is gone, as far as this machine can tell: another
    /// machine's servers are left to close their own tasks.
    fn is_gone(&self) -> bool {
        let this = Owner::this_process();
        if self.host != this.host {
            return false;
        }
        if self.pid == this.pid {
            return self.instance != this.instance;
        }
        !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// The call a task runs, given its tool context (the task's cancellation, and progress that
/// becomes the task's status message).
pub type TaskCall = Box<
    dyn FnOnce(
            ToolContext,
        ) -> Pin<Box<dyn Future<Output = Result<CallToolResult, ErrorData>> + Send>>
        + Send,
>;

/// The task call of `tool` with `args` by `principal` through `served`'s gate: its result
/// as `tools/call` would answer it (a `pending_approval` result when a reviewer must decide).
pub fn gate_call(
    served: std::sync::Arc<crate::Served>,
    principal: std::sync::Arc<baton_kit::Principal>,
    tool: String,
    args: Value,
    approval_id: Option<String>,
) -> TaskCall {
    Box::new(move |context| {
        Box::pin(async move {
            let outcome = served
                .gate
                .call(baton_kit::Invocation {
                    principal,
                    tool: tool.clone(),
                    args: args.clone(),
                    approval_id,
                    context,
                })
                .await;
            match outcome {
                Ok(baton_kit::Outcome::Completed(output)) => {
                    Ok(crate::convert::output_to_result(output))
                }
                Ok(baton_kit::Outcome::PendingApproval(pending)) => {
                    Ok(crate::approval::pending_result(
                        &pending.approval_id,
                        &pending.reason,
                        &tool,
                        &args,
                        served.settings.console_base(),
                    ))
                }
                Err(error) => crate::convert::error_to_mcp(error),
            }
        })
    })
}

/// Progress of a task's call, shown as its status message (what `tasks/get` returns): after
/// the task handle is sent, a client has no request to receive progress notifications on.
struct StatusProgress(TaskContext);

impl ProgressSink for StatusProgress {
    fn report(&self, update: Progress) {
        let done = match update.total {
            Some(total) => format!("{}/{}", update.progress, total),
            None => format!("{}", update.progress),
        };
        let message = match update.message {
            Some(message) => format!("{done}: {message}"),
            None => done,
        };
        self.0.set_status_message(message);
    }
}

/// The tasks of one server.
#[derive(Clone)]
pub struct Tasks {
    manager: TaskManager,
    store: StoreHandle,
}

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks").finish_non_exhaustive()
    }
}

fn internal(error: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("task store: {error}"), None)
}

fn unknown(id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown task `{id}`"),
        Some(json!({ "taskId": id })),
    )
}

fn object(value: impl Serialize) -> serde_json::Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

impl Tasks {
    /// Tasks kept in `store`.
    pub fn new(store: StoreHandle) -> Tasks {
        Tasks {
            manager: TaskManager::default(),
            store,
        }
    }

    /// Whether the request's client declared the tasks extension.
    pub fn requested(context: &RequestContext<RoleServer>) -> bool {
        context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks())
    }

    /// Start `call` (of `tool` with `args`, by `principal`) as a task; its handle.
    pub async fn start(
        &self,
        principal: &str,
        tool: &str,
        args: &Value,
        now_ms: u64,
        call: TaskCall,
    ) -> Result<CreateTaskResult, ErrorData> {
        let record = Record {
            principal: principal.to_owned(),
            tool: tool.to_owned(),
            args_digest: args_digest(args),
            created_ms: now_ms,
            detailed: Value::Null,
            owner: Some(Owner::this_process().clone()),
        };
        // The task waits until its record is stored, so a quick task's final record is never
        // overwritten by the first one.
        let (stored, recorded) = tokio::sync::oneshot::channel::<()>();
        let store = self.store.clone();
        let kept = record.clone();
        let options = TaskOptions::new()
            .with_ttl_ms(TTL_MS)
            .with_poll_interval_ms(POLL_MS);
        // The task runs on after the request answered, still under the request's span.
        let span = tracing::Span::current();
        let traced = baton_gate::trace::current();
        let task = self.manager.spawn(options, move |context| {
            Box::pin(baton_gate::trace::scoped(
                traced,
                async move {
                    let _ = recorded.await;
                    run(context, store, kept, call).await
                }
                .instrument(span),
            ))
        });
        let mut first = record;
        first.detailed =
            serde_json::to_value(DetailedTask::new(task.clone(), TaskPayload::Working))
                .map_err(internal)?;
        let saved = self
            .store
            .save_task(
                task.task_id.clone(),
                serde_json::to_value(&first).map_err(internal)?,
            )
            .await;
        if let Err(error) = saved {
            self.manager.cancel_task(&task.task_id).ok();
            return Err(internal(error));
        }
        let _ = stored.send(());
        Ok(CreateTaskResult::new(task))
    }

    /// `tasks/get` for `principal`: live from this server, else as the store kept it.
    pub async fn get(&self, principal: &str, id: &str) -> Result<GetTaskResult, ErrorData> {
        let record = self.owned(principal, id).await?;
        if let Ok(live) = self.manager.get_task(id) {
            return Ok(GetTaskResult::new(live));
        }
        let detailed: DetailedTask = serde_json::from_value(record.detailed).map_err(internal)?;
        Ok(GetTaskResult::new(detailed))
    }

    /// `tasks/cancel` for `principal`.
    pub async fn cancel(&self, principal: &str, id: &str) -> Result<(), ErrorData> {
        self.owned(principal, id).await?;
        self.manager.cancel_task(id).map_err(|_| {
            ErrorData::invalid_params(
                format!("task `{id}` has already ended"),
                Some(json!({ "taskId": id })),
            )
        })
    }

    /// Task `id`'s record, if it is `principal`'s; another's is as unknown as a missing one.
    async fn owned(&self, principal: &str, id: &str) -> Result<Record, ErrorData> {
        let record = match self.store.task(id.to_owned()).await {
            Ok(value) => serde_json::from_value::<Record>(value).map_err(internal)?,
            Err(StoreError::NotFound { .. }) => return Err(unknown(id)),
            Err(other) => return Err(internal(other)),
        };
        if record.principal != principal {
            return Err(unknown(id));
        }
        Ok(record)
    }
}

/// Run `call` for the task `context`, keep how it ended, and tell the task manager.
async fn run(
    context: TaskContext,
    store: StoreHandle,
    mut record: Record,
    call: TaskCall,
) -> Result<CallToolResult, TaskExit> {
    let cancel = CancellationToken::new();
    let tool_context = ToolContext::new(cancel.clone())
        .with_progress(std::sync::Arc::new(StatusProgress(context.clone())));
    let running = call(tool_context);
    tokio::pin!(running);
    // A cancelled task's call is told to stop and ends on its own: through the gate, audited.
    let result = tokio::select! {
        result = &mut running => result,
        () = context.cancelled() => {
            cancel.cancel();
            running.await
        }
    };
    let now = rfc3339_now();
    let task = Task::new(
        context.task_id(),
        TaskStatus::Working,
        rfc3339(record.created_ms),
        now,
    )
    .with_ttl_ms(TTL_MS)
    .with_poll_interval_ms(POLL_MS);
    let (payload, exit) = match result {
        _ if cancel.is_cancelled() => (TaskPayload::Cancelled, Err(TaskExit::Cancelled)),
        Ok(result) => {
            let mut kept = object(&result);
            // An error's text; its structured content (a pending approval's retry) is kept
            // whole.
            if result.is_error == Some(true)
                && let Some(content) = kept.get_mut("content")
            {
                clip(content);
            }
            (TaskPayload::Completed { result: kept }, Ok(result))
        }
        Err(error) => {
            let mut kept = object(&error);
            kept.values_mut().for_each(clip);
            (
                TaskPayload::Failed { error: kept },
                Err(TaskExit::Error(error)),
            )
        }
    };
    record.detailed = serde_json::to_value(DetailedTask::new(task, payload)).unwrap_or(Value::Null);
    if let Ok(value) = serde_json::to_value(&record)
        && let Err(error) = store.save_task(context.task_id().to_owned(), value).await
    {
        tracing::error!(%error, task = context.task_id(), "the task's outcome was not kept");
    }
    exit
}

fn rfc3339(ms: u64) -> String {
    baton_runs::rfc3339(ms)
}

fn rfc3339_now() -> String {
    baton_runs::rfc3339(baton_runs::now_millis())
}

/// Close the tasks a previous server on this machine died in the middle of (tasks of live
/// servers, and of other machines' servers, are theirs): each is marked failed, and its
/// call — which never reached its audit record — gets one (outcome `error`,
/// `server_stopped`). The number closed.
pub async fn recover(store: &StoreHandle, now_ms: u64) -> Result<usize, StoreError> {
    let mut closed = 0;
    for (_, value) in store.tasks().await? {
        let Ok(mut record) = serde_json::from_value::<Record>(value) else {
            continue;
        };
        let Ok(detailed) = serde_json::from_value::<DetailedTask>(record.detailed.clone()) else {
            continue;
        };
        if detailed.status() != TaskStatus::Working
            || record.owner.as_ref().is_some_and(|owner| !owner.is_gone())
        {
            continue;
        }
        let message = "the server stopped while this task ran; what it did before is not undone";
        let mut task = detailed.task.clone();
        task.last_updated_at = rfc3339(now_ms);
        let id = task.task_id.clone();
        let error = ErrorData::internal_error(message, Some(json!({ "kind": "server_stopped" })));
        record.detailed = serde_json::to_value(DetailedTask::new(
            task,
            TaskPayload::Failed {
                error: object(&error),
            },
        ))
        .unwrap_or(Value::Null);
        store
            .append_audit(AuditDraft {
                time_ms: record.created_ms,
                principal: record.principal.clone(),
                tool: record.tool.clone(),
                args_digest: record.args_digest.clone(),
                decision: DecisionRecord {
                    kind: DecisionKind::Allow,
                    reason: Some(message.into()),
                    rule: "task.lost".into(),
                },
                approval_id: None,
                decided_by: None,
                outcome: OutcomeRecord {
                    error_kind: Some("server_stopped".into()),
                    message: Some(message.into()),
                    status: OutcomeStatus::Error,
                },
                duration_us: now_ms
                    .saturating_sub(record.created_ms)
                    .saturating_mul(1000),
                sandbox: None,
            })
            .await?;
        store
            .save_task(id, serde_json::to_value(&record).unwrap_or(Value::Null))
            .await?;
        closed += 1;
    }
    Ok(closed)
}
