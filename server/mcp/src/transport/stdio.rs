//! A newline-delimited JSON-RPC transport for stdio that answers what it cannot read.
//!
//! rmcp's own stdio transport silently drops unparsable lines and oversized messages. A client
//! that sent one would wait forever; Baton answers every such line with a JSON-RPC error
//! (`-32700` for bytes that are not JSON or not UTF-8, `-32600` for a message over the size
//! limit or one that is JSON but not a JSON-RPC request, with the request's id when it can be
//! read) and keeps serving.

use std::future::Future;
use std::io;

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{ErrorCode, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

/// The server side of a stdio connection (or any byte-stream pair).
#[derive(Debug)]
pub struct StdioTransport<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Dropping the rest of a line already found too long.
    discarding: bool,
    max_message_bytes: usize,
    out: Option<mpsc::UnboundedSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
    pressure: Arc<Pressure>,
}

/// Back-pressure: requests read and not yet answered (or cancelled), plus messages queued and
/// not yet written. Reading stops while their sum is at the limit, so a client that sends and
/// never reads fills its own pipe instead of the server's memory.
#[derive(Debug)]
struct Pressure {
    in_flight: std::sync::Mutex<std::collections::HashSet<RequestId>>,
    unsent: AtomicUsize,
    limit: usize,
    room: Notify,
}

impl Pressure {
    fn load(&self) -> usize {
        let in_flight = self.in_flight.lock().map_or(0, |set| set.len());
        in_flight + self.unsent.load(Ordering::Acquire)
    }

    async fn wait_for_room(&self) {
        loop {
            let room = self.room.notified();
            if self.load() < self.limit {
                return;
            }
            room.await;
        }
    }

    fn started(&self, id: RequestId) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.insert(id);
        }
    }

    /// The request `id` needs no more room: answered, or cancelled (rmcp then sends nothing).
    fn ended(&self, id: &RequestId) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(id);
        }
        self.room.notify_waiters();
    }
}

/// Requests unanswered or answers unwritten before stdin is read no further.
pub const DEFAULT_MAX_PENDING: usize = 256;

enum LineRead {
    Line,
    Oversized,
    Eof,
}

impl<R: AsyncRead + Unpin + Send> StdioTransport<R> {
    /// A transport reading requests from `read` and writing responses to `write`, refusing
    /// messages longer than `max_message_bytes`.
    pub fn new<W>(read: R, write: W, max_message_bytes: usize) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        Self::with_limit(read, write, max_message_bytes, DEFAULT_MAX_PENDING)
    }

    /// [`StdioTransport::new`], reading no further while `max_pending` requests are unanswered
    /// or answers unwritten.
    pub fn with_limit<W>(read: R, write: W, max_message_bytes: usize, max_pending: usize) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let pressure = Arc::new(Pressure {
            in_flight: std::sync::Mutex::new(std::collections::HashSet::new()),
            unsent: AtomicUsize::new(0),
            limit: max_pending.max(1),
            room: Notify::new(),
        });
        let drained = pressure.clone();
        let (out, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        // One writer owns the output: a reply is never interleaved with another, and whatever
        // is queued when the writer wakes goes out under a single flush.
        let writer = tokio::spawn(async move {
            let mut write = BufWriter::new(write);
            while let Some(message) = queue.recv().await {
                write.write_all(&message).await?;
                let mut written = 1;
                while let Ok(message) = queue.try_recv() {
                    write.write_all(&message).await?;
                    written += 1;
                }
                write.flush().await?;
                drained.unsent.fetch_sub(written, Ordering::AcqRel);
                drained.room.notify_waiters();
            }
            write.flush().await
        });
        StdioTransport {
            reader: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
            max_message_bytes,
            out: Some(out),
            writer: Some(writer),
            pressure,
        }
    }

    fn queue(&self, message: &TxJsonRpcMessage<RoleServer>) -> io::Result<()> {
        let mut bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.pressure.unsent.fetch_add(1, Ordering::AcqRel);
        match message {
            rmcp::model::JsonRpcMessage::Response(response) => self.pressure.ended(&response.id),
            rmcp::model::JsonRpcMessage::Error(error) => {
                if let Some(id) = &error.id {
                    self.pressure.ended(id);
                }
            }
            rmcp::model::JsonRpcMessage::Request(_)
            | rmcp::model::JsonRpcMessage::Notification(_) => {}
        }
        match &self.out {
            Some(out) => out.send(bytes).map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "stdout writer has stopped")
            }),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "transport is closed",
            )),
        }
    }

    fn reply_error(&self, id: Option<RequestId>, error: ErrorData) {
        tracing::warn!(code = error.code.0, message = %error.message, "rejected an incoming message");
        // JSON-RPC 2.0 §5: when the id cannot be read it must be `null`, not absent — which
        // rmcp's message type would make it, so this reply is written by hand.
        let reply = json!({ "jsonrpc": "2.0", "id": id, "error": error });
        let mut bytes = reply.to_string().into_bytes();
        bytes.push(b'\n');
        self.pressure.unsent.fetch_add(1, Ordering::AcqRel);
        let queued = match &self.out {
            Some(out) => out.send(bytes).is_ok(),
            None => false,
        };
        if !queued {
            tracing::error!("could not queue an error reply: stdout writer has stopped");
        }
    }

    /// Read one line into `self.line`, never holding more than the limit. Cancel-safe: a
    /// dropped call leaves its partial line in `self.line` for the next one.
    async fn read_line(&mut self) -> io::Result<LineRead> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // The last line need not end with a newline: it is a message all the same.
                if !self.line.is_empty() && !self.discarding {
                    return Ok(LineRead::Line);
                }
                return Ok(LineRead::Eof);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            let outcome = if self.discarding {
                if newline.is_some() {
                    self.discarding = false;
                }
                None
            } else if self.line.len() + take > self.max_message_bytes + 2 {
                // `+ 2` leaves room for the `\r\n` that is not part of the message.
                self.line.clear();
                self.discarding = newline.is_none();
                Some(LineRead::Oversized)
            } else {
                self.line.extend_from_slice(&available[..take]);
                newline.map(|_| LineRead::Line)
            };
            self.reader.consume(take);
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
    }

    /// Parse the line in `self.line`: `Some` message, or `None` after answering it.
    fn parse_line(&self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let mut line = self.line.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        if let Err(error) = std::str::from_utf8(line) {
            self.reply_error(
                None,
                ErrorData::new(
                    ErrorCode::PARSE_ERROR,
                    format!(
                        "parse error: message is not UTF-8 (invalid byte at offset {})",
                        error.valid_up_to()
                    ),
                    None,
                ),
            );
            return None;
        }
        // A key given twice is ambiguous (the parser would keep the last): refuse the message.
        if let Some((at, key)) = baton_kit::duplicate_key(line) {
            let id = serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|value| value.get("id").cloned())
                .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
            self.reply_error(id, duplicate_error(&at, &key));
            return None;
        }
        match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
            Ok(message) => Some(message),
            Err(error) => {
                match serde_json::from_slice::<Value>(line) {
                    Err(syntax) => self.reply_error(
                        None,
                        ErrorData::new(
                            ErrorCode::PARSE_ERROR,
                            format!("parse error: {syntax}"),
                            None,
                        ),
                    ),
                    Ok(value) => self.reject_shape(&value, &error),
                }
                None
            }
        }
    }

    /// Answer JSON that is not a message we understand.
    fn reject_shape(&self, value: &Value, error: &serde_json::Error) {
        let id = value
            .get("id")
            .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
        let is_notification = value.get("method").is_some() && value.get("id").is_none();
        let problem = diagnose(value);
        if is_notification && problem.is_none() {
            // Notifications get no reply, even an error one (JSON-RPC 2.0 §4.1).
            tracing::debug!(%error, "ignored a notification that does not parse");
            return;
        }
        let (code, message) = match problem {
            Some(problem) => (
                ErrorCode::INVALID_REQUEST,
                format!("invalid request: {problem}"),
            ),
            None => {
                let method = value.get("method").and_then(Value::as_str).unwrap_or("");
                (
                    ErrorCode::INVALID_PARAMS,
                    format!("invalid params for `{method}`: {error}"),
                )
            }
        };
        self.reply_error(
            id,
            ErrorData::new(code, message, Some(json!({ "received": summary(value) }))),
        );
    }
}

/// What makes `value` not a JSON-RPC 2.0 message, if it is the envelope that is wrong.
fn diagnose(value: &Value) -> Option<String> {
    let Some(object) = value.as_object() else {
        return Some("a JSON-RPC message must be a JSON object".into());
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some("`jsonrpc` must be \"2.0\"".into());
    }
    if let Some(id) = object.get("id")
        && !(id.is_string() || id.is_i64() || id.is_u64())
    {
        return Some("`id` must be a string or an integer".into());
    }
    match object.get("method") {
        Some(Value::String(_)) => {}
        Some(_) => return Some("`method` must be a string".into()),
        None if object.contains_key("result") || object.contains_key("error") => {
            return Some("a response that answers no request of this server".into());
        }
        None => return Some("a request needs a `method`".into()),
    }
    match object.get("params") {
        None | Some(Value::Object(_)) => None,
        Some(_) => Some("`params` must be an object".into()),
    }
}

/// A short description of what arrived, for the error's `data`.
fn summary(value: &Value) -> Value {
    match value {
        Value::Object(object) => json!({
            "keys": object.keys().take(16).collect::<Vec<_>>(),
            "method": object.get("method"),
        }),
        Value::Array(items) => json!(format!(
            "array of {} items (batches are not supported)",
            items.len()
        )),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            json!(value.to_string().chars().take(64).collect::<String>())
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Transport<RoleServer> for StdioTransport<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let queued = self.queue(&item);
        async move { queued }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            self.pressure.wait_for_room().await;
            match self.read_line().await {
                Ok(LineRead::Line) => {
                    let message = self.parse_line();
                    self.line.clear();
                    match &message {
                        Some(rmcp::model::JsonRpcMessage::Request(request)) => {
                            self.pressure.started(request.id.clone());
                        }
                        Some(rmcp::model::JsonRpcMessage::Notification(notification)) => {
                            if let rmcp::model::ClientNotification::CancelledNotification(
                                cancelled,
                            ) = &notification.notification
                                && let Some(id) = &cancelled.params.request_id
                            {
                                self.pressure.ended(id);
                            }
                        }
                        _ => {}
                    }
                    if message.is_some() {
                        return message;
                    }
                }
                Ok(LineRead::Oversized) => self.reply_error(
                    None,
                    ErrorData::new(
                        ErrorCode::INVALID_REQUEST,
                        format!(
                            "invalid request: message exceeds the {}-byte limit (server.max_message_bytes) and was discarded",
                            self.max_message_bytes
                        ),
                        None,
                    ),
                ),
                Ok(LineRead::Eof) => return None,
                Err(error) => {
                    tracing::error!(%error, "reading stdin failed");
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.out.take();
        if let Some(writer) = self.writer.take() {
            writer.await.map_err(io::Error::other)??;
        }
        Ok(())
    }
}

/// The error for a message with a key given twice: invalid request, naming the key and where.
pub fn duplicate_error(at: &str, key: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!("invalid request: the key `{key}` appears twice in the object at `{at}`"),
        Some(json!({ "key": key, "path": at })),
    )
}
