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
use tokio_util::sync::CancellationToken;

use super::codex;

/// The `_meta` key naming the Baton call a `tools/call` is made for; taken off before sending.
pub(crate) const CALL_META: &str = "baton/call";

/// Longest line read from a source (a `codex/event` with a big diff fits easily).
const MAX_LINE: usize = 16 << 20;

/// Most requests one call may have waiting at once; past it the server is refused (Codex
/// asks one at a time).
const MAX_ASKING: usize = 4;

/// A Baton call in flight on a source: where its nested actions are decided and its steps go.
pub(crate) struct CallScope {
    /// The call's context: its caller's gate oversight.
    pub(crate) context: ToolContext,
    /// The call's steps, journaled in order by the call.
    pub(crate) steps: UnboundedSender<Value>,
    /// Fires when the call ends or is cancelled: requests still waiting are withdrawn.
    pub(crate) closed: CancellationToken,
    /// Requests of this call waiting for a decision now.
    asking: std::sync::atomic::AtomicUsize,
}

impl CallScope {
    /// The scope of a call running with `context`.
    pub(crate) fn new(context: ToolContext, steps: UnboundedSender<Value>) -> CallScope {
        CallScope {
            closed: context.cancellation().child_token(),
            context,
            steps,
            asking: std::sync::atomic::AtomicUsize::new(0),
        }
    }
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

    /// The call ended: nothing more is routed to it, and what it still waits for is withdrawn.
    pub(crate) fn close(&self, token: u64) {
        if let Ok(mut calls) = self.calls.lock()
            && let Some(scope) = calls.remove(&token)
        {
            scope.closed.cancel();
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
                self.elicit(id, params, writer);
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

impl Router {
    /// Answer elicitation `id` in the background: decided for the call it belongs to. Codex
    /// names that call; a server that does not may ask only while one call is in flight —
    /// never guessed among several.
    fn elicit(&self, id: Value, params: Value, writer: &Writer) {
        let scope = match (
            params.get("codex_mcp_tool_call_id").and_then(id_text),
            params.get("codex_elicitation").is_some(),
        ) {
            (Some(call), _) => self.scope_of(Some(call)),
            (None, true) => None,
            (None, false) => self.sole_scope(),
        };
        let source = self.source.clone();
        let writer = writer.clone();
        tokio::spawn(async move {
            let result = match &scope {
                Some(scope) => {
                    let waiting = scope
                        .asking
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let result = if waiting >= MAX_ASKING {
                        codex::refused_unasked(
                            scope,
                            &format!(
                                "more than {MAX_ASKING} requests of one call are waiting at once"
                            ),
                        )
                    } else {
                        codex::answer(&source, scope, &params).await
                    };
                    scope
                        .asking
                        .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    result
                }
                None => codex::refusal(format!(
                    "no Baton call is waiting on `{source}` for this request, so nobody may approve it"
                )),
            };
            let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
            if let Err(error) = writer.send(&reply).await {
                tracing::warn!(%error, %source, "could not answer the elicitation");
            }
        });
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
    stdout: BufReader<ChildStdout>,
    /// The line being read: kept here, not in the reading future, because rmcp drops that
    /// future whenever another branch of its loop wins, and nothing read may be lost.
    partial: Vec<u8>,
    /// Whether the line being read went past `MAX_LINE` (it is dropped when it ends).
    oversized: bool,
    writer: Writer,
    router: Arc<Router>,
}

/// What one read of the server's stdout gives.
enum Read {
    /// A whole line, without its newline.
    Line(Vec<u8>),
    /// A line over `MAX_LINE`, read to its end and dropped: a runaway server costs no memory.
    Oversized,
    /// The end of the stream.
    End,
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
            stdout: BufReader::new(stdout),
            partial: Vec::new(),
            oversized: false,
            writer,
            router,
        })
    }

    /// The next line. Safe to drop at its one await: bytes taken from the buffer are in
    /// `self.partial` by then.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let buffer = self.stdout.fill_buf().await?;
            if buffer.is_empty() {
                let last = std::mem::take(&mut self.partial);
                return Ok(
                    match (std::mem::take(&mut self.oversized), last.is_empty()) {
                        (true, _) => Read::Oversized,
                        (false, true) => Read::End,
                        (false, false) => Read::Line(last),
                    },
                );
            }
            let newline = buffer.iter().position(|&b| b == b'\n');
            let chunk = &buffer[..newline.unwrap_or(buffer.len())];
            if !self.oversized && self.partial.len() + chunk.len() <= MAX_LINE {
                self.partial.extend_from_slice(chunk);
            } else {
                self.oversized = true;
                self.partial = Vec::new();
            }
            let used = newline.map_or(chunk.len(), |at| at + 1);
            self.stdout.consume(used);
            if newline.is_some() {
                let line = std::mem::take(&mut self.partial);
                return Ok(match std::mem::take(&mut self.oversized) {
                    true => Read::Oversized,
                    false => Read::Line(line),
                });
            }
        }
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
            let line = match self.read_line().await {
                Ok(Read::Line(line)) if line.trim_ascii().is_empty() => continue,
                Ok(Read::Line(line)) => line,
                Ok(Read::Oversized) => {
                    tracing::warn!(source = %self.router.source, "source sent a line over {MAX_LINE} bytes; skipped");
                    continue;
                }
                Ok(Read::End) => return None,
                Err(error) => {
                    tracing::warn!(%error, source = %self.router.source, "source stdout failed");
                    return None;
                }
            };
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
        // SIGTERM first, so the server can stop what it started in sessions of its own
        // (Codex's command terminals); what is left after two seconds is killed. The leader
        // is reaped last, so the group's id cannot be taken by another meanwhile.
        self.signal_group(rustix::process::Signal::TERM);
        let waited = tokio::time::timeout(std::time::Duration::from_secs(2), self.child.wait());
        if waited.await.is_err() {
            self.signal_group(rustix::process::Signal::KILL);
        }
        self.child.kill().await.or_else(|error| match error.kind() {
            std::io::ErrorKind::InvalidInput => Ok(()),
            _ => Err(error),
        })
    }
}

impl Wire {
    /// Send `signal` to the server's whole process group (it runs in its own), while its
    /// leader is not reaped (so the id is still its).
    fn signal_group(&self, signal: rustix::process::Signal) {
        if let Some(group) = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(group, signal);
        }
    }
}

impl Drop for Wire {
    /// Dropped without `close` (the process is ending): SIGTERM to the group, and the
    /// leader is killed on drop; nothing can wait here.
    fn drop(&mut self) {
        self.signal_group(rustix::process::Signal::TERM);
    }
}
