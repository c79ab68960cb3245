//! A scripted model on the loopback speaking OpenAI's Responses API the way Codex reads it:
//! `POST /v1/responses` answered with server-sent events (`response.created`, one
//! `response.output_item.done` per item, `response.completed` with token usage). The test's
//! script picks the items from the request (usually its last input item); every request is
//! kept for the test to read. `GET /v1/models` lists one model, `scripted`.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Picks the output items that answer one request.
pub type Script = dyn Fn(&Value) -> Vec<Value> + Send + Sync;

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct ResponsesServer {
    /// `http://127.0.0.1:PORT/v1`, for a provider's `base_url`.
    pub base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    refusals: Arc<Mutex<Vec<u16>>>,
    stateless: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// What the server keeps between requests.
#[derive(Clone)]
struct State {
    script: Arc<Script>,
    requests: Arc<Mutex<Vec<Value>>>,
    refusals: Arc<Mutex<Vec<u16>>>,
    /// Each response's whole conversation: its input, then its output.
    stored: Arc<Mutex<std::collections::HashMap<String, Vec<Value>>>>,
    stateless: Arc<std::sync::atomic::AtomicBool>,
}

fn error(status: u16, message: &str, kind: &str) -> axum::response::Response {
    let body = json!({"error": {"message": message, "type": kind,
        "param": if kind == "invalid_request_error" { json!("previous_response_id") } else { Value::Null },
        "code": null}});
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(body),
    ))
}

impl State {
    fn answer(&self, mut body: Value) -> axum::response::Response {
        let n = {
            let mut kept = self.requests.lock().unwrap();
            kept.push(body.clone());
            kept.len()
        };
        if let Some(status) = self.refusals.lock().unwrap().pop() {
            return error(status, "slow down", "rate_limit_error");
        }
        if let Some(previous) = body["previous_response_id"].as_str() {
            if self.stateless.load(std::sync::atomic::Ordering::SeqCst) {
                return error(
                    400,
                    "previous_response_id is not supported by this server",
                    "invalid_request_error",
                );
            }
            let Some(before) = self.stored.lock().unwrap().get(previous).cloned() else {
                return error(
                    404,
                    &format!("Previous response with id '{previous}' not found."),
                    "invalid_request_error",
                );
            };
            let mut whole = before;
            whole.extend(body["input"].as_array().cloned().unwrap_or_default());
            body["input"] = Value::Array(whole);
        }
        let items = (self.script)(&body);
        let id = format!("resp-{n}");
        if !self.stateless.load(std::sync::atomic::Ordering::SeqCst) {
            let mut conversation = body["input"].as_array().cloned().unwrap_or_default();
            conversation.extend(items.iter().cloned());
            self.stored.lock().unwrap().insert(id.clone(), conversation);
        }
        axum::response::IntoResponse::into_response((
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            sse(&id, &items),
        ))
    }
}

impl Drop for ResponsesServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tokens each scripted response reports.
pub const INPUT_TOKENS: u64 = 10;
/// Tokens each scripted response reports.
pub const OUTPUT_TOKENS: u64 = 5;

impl ResponsesServer {
    /// Serve `script` on a free loopback port. Like OpenAI's, the server keeps each response:
    /// a request naming one (`previous_response_id`) goes on from its conversation, and the
    /// script sees the whole of it; an unknown id is a 404.
    pub async fn start(script: impl Fn(&Value) -> Vec<Value> + Send + Sync + 'static) -> Self {
        let state = State {
            script: Arc::new(script),
            requests: Arc::default(),
            refusals: Arc::default(),
            stored: Arc::default(),
            stateless: Arc::default(),
        };
        let (requests, refusals, stateless) = (
            state.requests.clone(),
            state.refusals.clone(),
            state.stateless.clone(),
        );
        let models = axum::Json(
            json!({ "object": "list", "data": [{ "id": "scripted", "object": "model" }] }),
        );
        let app = axum::Router::new()
            .route(
                "/v1/models",
                axum::routing::get(move || async move { models }),
            )
            .route(
                "/v1/responses",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    let state = state.clone();
                    async move { state.answer(body) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ResponsesServer {
            base_url: format!("http://{address}/v1"),
            requests,
            refusals,
            stateless,
            task,
        }
    }

    /// Keep no responses from now on: a request naming one is refused with a 400, as by a
    /// server that does not support `previous_response_id`.
    pub fn stateless(&self) {
        self.stateless
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Answer the next `times` requests with `status` and an OpenAI error body (a 429 to test
    /// retries) before the script answers again.
    pub fn refuse_next(&self, status: u16, times: usize) {
        self.refusals
            .lock()
            .unwrap()
            .extend(std::iter::repeat_n(status, times));
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// The event stream of one response made of `items`, streamed as OpenAI's is: each message
/// and function call announced (`response.output_item.added`), its text or arguments in
/// pieces of a few characters (`response.output_text.delta`,
/// `response.function_call_arguments.delta`), then done.
fn sse(id: &str, items: &[Value]) -> String {
    let mut events = vec![json!({"type": "response.created", "response": {"id": id}})];
    for (at, item) in items.iter().enumerate() {
        let mut item = item.clone();
        if item.get("id").is_none() {
            item["id"] = json!(format!("{id}-item-{at}"));
        }
        let item_id = item["id"].clone();
        match item["type"].as_str() {
            Some("message") => {
                let text: String = item["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|part| part["text"].as_str())
                    .collect();
                let mut added = item.clone();
                added["content"] = json!([]);
                events.push(json!({"type": "response.output_item.added", "output_index": at, "item": added}));
                for piece in pieces(&text) {
                    events.push(
                        json!({"type": "response.output_text.delta", "item_id": item_id,
                        "output_index": at, "content_index": 0, "delta": piece}),
                    );
                }
            }
            Some("function_call") => {
                let mut added = item.clone();
                added["arguments"] = json!("");
                events.push(json!({"type": "response.output_item.added", "output_index": at, "item": added}));
                for piece in pieces(item["arguments"].as_str().unwrap_or_default()) {
                    events.push(json!({"type": "response.function_call_arguments.delta",
                        "item_id": item_id, "output_index": at, "delta": piece}));
                }
            }
            _ => {}
        }
        events.push(json!({"type": "response.output_item.done", "output_index": at, "item": item}));
    }
    events.push(
        json!({"type": "response.completed", "response": {"id": id, "usage": {
            "input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": OUTPUT_TOKENS, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        }}}),
    );
    events
        .iter()
        .map(|event| {
            format!(
                "event: {}\ndata: {event}\n\n",
                event["type"].as_str().unwrap()
            )
        })
        .collect()
}

/// `text` in pieces of at most 8 characters, as a model streams it.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(8).map(|c| c.iter().collect()).collect()
}

/// The last item of a request's `input`.
pub fn last_input(request: &Value) -> &Value {
    request["input"]
        .as_array()
        .and_then(|items| items.last())
        .unwrap_or(&Value::Null)
}

/// The model asks to run `cmd` (in `workdir`, else Codex's working folder) outside Codex's
/// sandbox, so Codex asks first.
pub fn exec_call(call_id: &str, cmd: &str, workdir: Option<&str>) -> Value {
    let mut arguments = json!({
        "cmd": cmd, "sandbox_permissions": "require_escalated",
        "justification": "run the repository's check",
    });
    if let Some(workdir) = workdir {
        arguments["workdir"] = json!(workdir);
    }
    json!({"type": "function_call", "call_id": call_id, "name": "exec_command",
           "arguments": arguments.to_string()})
}

/// The model applies `patch` (`*** Begin Patch` … `*** End Patch`).
pub fn patch_call(call_id: &str, patch: &str) -> Value {
    json!({"type": "custom_tool_call", "call_id": call_id, "name": "apply_patch", "input": patch})
}

/// The model's final words.
pub fn message(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "id": "msg-1",
           "content": [{"type": "output_text", "text": text}]})
}
