//! The stdio link to a source server, between rmcp and the child's pipes: rmcp speaks MCP, but
//! what the server asks back (elicitation: Codex asking to run a command) and the events it
//! streams (`codex/event`) are taken here, raw — rmcp's typed elicitation drops the fields
//! Codex sends and cannot give the answer Codex reads — and routed to the Baton call they
//! belong to, by the request id of that call's `tools/call`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use baton_kit::ToolContext;
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc::UnboundedSender;

use super::codex;

/// The `_meta` key naming the Baton call a `tools/call` is made for; taken off before sending.
pub(crate) const CALL_META: &str = "baton/call";

/// Longest line read from a source (a `codex/event` with a big diff fits easily).
const MAX_LINE: usize = 16 << 20;

/// A Baton call in flight on a source: where its nested actions are decided and its steps go.
pub(crate) struct CallScope {
    /// The call's context: its caller's gate oversight.
    pub(crate) context: ToolContext,
    /// The call's steps, journaled in order by the call.
    pub(crate) steps: UnboundedSender<Value>,
}

/// The calls in flight on one source connection.
#[derive(Default)]
pub(crate) struct Router {
    source: String,
    next: std::sync::atomic::AtomicU64,
    calls: Mutex<HashMap<u64, Arc<CallScope>>>,
    /// JSON-RPC request id of a `tools/call` → the call it was made for.
    requests: Mutex<HashMap<String, (Value, u64)>>,
    /// The server's stdin, once the link is up.
    writer: std::sync::OnceLock<Writer>,
}

/// A request id as one string, however the peer wrote it.
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Router {
    pub(crate) fn new(source: &str) -> Router {
        Router {
            source: source.to_owned(),
            ..Router::default()
        }
    }

    /// Register a call; its token goes into the `tools/call`'s `_meta`.
    pub(crate) fn open(&self, scope: CallScope) -> u64 {
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(token, Arc::new(scope));
        }
        token
    }

    /// The call ended: nothing more is routed to it.
    pub(crate) fn close(&self, token: u64) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(&token);
        }
        if let Ok(mut requests) = self.requests.lock() {
            requests.retain(|_, (_, t)| *t != token);
        }
    }

    /// The caller gave up on call `token`: tell the server (`notifications/cancelled`), so
    /// Codex stops its turn rather than working on for nobody.
    pub(crate) async fn cancel(&self, token: u64) {
        let request = self.requests.lock().ok().and_then(|requests| {
            requests
                .values()
                .find(|(_, t)| *t == token)
                .map(|(id, _)| id.clone())
        });
        if let (Some(id), Some(writer)) = (request, self.writer.get()) {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "the Baton call was cancelled"}});
            if let Err(error) = writer.send(&note).await {
                tracing::warn!(%error, source = %self.source, "could not tell the server the call was cancelled");
            }
        }
    }

    fn scope_of(&self, request_id: Option<String>) -> Option<Arc<CallScope>> {
        let token = self.requests.lock().ok()?.get(&request_id?)?.1;
        self.calls.lock().ok()?.get(&token).cloned()
    }

    /// The only call in flight, for a server that does not say which call it asks for.
    fn sole_scope(&self) -> Option<Arc<CallScope>> {
        let calls = self.calls.lock().ok()?;
        match calls.len() {
            1 => calls.values().next().cloned(),
            _ => None,
        }
    }

    /// Note which call an outgoing `tools/call` is for, and take the note off the message.
    fn outgoing(&self, message: &mut Value) {
        if message.get("method").and_then(Value::as_str) != Some("tools/call") {
            return;
        }
        let raw_id = message.get("id").cloned();
        let id = raw_id.as_ref().and_then(id_text);
        let Some(meta) = message
            .pointer_mut("/params/_meta")
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let token = meta.remove(CALL_META).and_then(|t| t.as_u64());
        let empty = meta.is_empty();
        if empty && let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
            params.remove("_meta");
        }
        if let (Some(id), Some(raw), Some(token)) = (id, raw_id, token)
            && let Ok(mut requests) = self.requests.lock()
        {
            requests.insert(id, (raw, token));
        }
    }

    /// Handle `message` here when it is an elicitation or a `codex/event`; whether it was.
    fn intercept(&self, message: &Value, writer: &Writer) -> bool {
        match message.get("method").and_then(Value::as_str) {
            Some("elicitation/create") => {
                let Some(id) = message.get("id").cloned() else {
                    return false;
                };
                let params = message.get("params").cloned().unwrap_or(Value::Null);
                let scope = match params.get("codex_mcp_tool_call_id").and_then(id_text) {
                    Some(call) => self.scope_of(Some(call)),
                    None => self.sole_scope(),
                };
                let source = self.source.clone();
                let writer = writer.clone();
                tokio::spawn(async move {
                    let result = codex::answer(&source, scope, &params).await;
                    let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    if let Err(error) = writer.send(&reply).await {
                        tracing::warn!(%error, %source, "could not answer the elicitation");
                    }
                });
                true
            }
            Some("codex/event") => {
                let params = message.get("params");
                let request = params
                    .and_then(|p| p.pointer("/_meta/requestId"))
                    .and_then(id_text);
                if let (Some(scope), Some(msg)) =
                    (self.scope_of(request), params.and_then(|p| p.get("msg")))
                    && let Some(step) = codex::step(msg)
                {
                    let _ = scope.steps.send(step);
                }
                true
            }
            _ => false,
        }
    }
}

/// The child's stdin, shared by rmcp's sends and the elicitation answers.
#[derive(Clone)]
struct Writer(Arc<tokio::sync::Mutex<ChildStdin>>);

impl Writer {
    async fn send(&self, message: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        let mut stdin = self.0.lock().await;
        stdin.write_all(&line).await?;
        stdin.flush().await
    }
}

/// The transport rmcp serves the connection over.
pub(crate) struct Wire {
    child: Child,
    lines: tokio::io::Split<BufReader<ChildStdout>>,
    writer: Writer,
    router: Arc<Router>,
}

impl Wire {
    /// A link over `child`'s piped stdin and stdout.
    pub(crate) fn new(mut child: Child, router: Arc<Router>) -> std::io::Result<Wire> {
        let missing = || std::io::Error::other("the server's stdin and stdout must be piped");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let writer = Writer(Arc::new(tokio::sync::Mutex::new(stdin)));
        let _ = router.writer.set(writer.clone());
        Ok(Wire {
            child,
            lines: BufReader::new(stdout).split(b'\n'),
            writer,
            router,
        })
    }
}

impl rmcp::transport::Transport<RoleClient> for Wire {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let router = self.router.clone();
        async move {
            let mut message = serde_json::to_value(&item)?;
            router.outgoing(&mut message);
            writer.send(&message).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let line = match self.lines.next_segment().await {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(%error, source = %self.router.source, "source stdout failed");
                    return None;
                }
            };
            if line.len() > MAX_LINE {
                tracing::warn!(source = %self.router.source, bytes = line.len(), "source sent an oversized line; skipped");
                continue;
            }
            let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                tracing::warn!(source = %self.router.source, "source sent a line that is not JSON; skipped");
                continue;
            };
            if self.router.intercept(&message, &self.writer) {
                continue;
            }
            match serde_json::from_value(message) {
                Ok(message) => return Some(message),
                Err(error) => {
                    tracing::warn!(%error, source = %self.router.source, "source sent a message rmcp cannot read; skipped");
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.stop_group();
        self.child.kill().await
    }
}

impl Wire {
    /// Kill the server's whole process group (it runs in its own).
    fn stop_group(&self) {
        if let Some(group) = self.child.id().and_then(|id| i32::try_from(id).ok())
            && let Some(group) = rustix::process::Pid::from_raw(group)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop_group();
    }
}
