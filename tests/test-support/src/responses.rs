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
    task: tokio::task::JoinHandle<()>,
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
    /// Serve `script` on a free loopback port.
    pub async fn start(script: impl Fn(&Value) -> Vec<Value> + Send + Sync + 'static) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let refusals: Arc<Mutex<Vec<u16>>> = Arc::default();
        let refuse = refusals.clone();
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
                    let script = script.clone();
                    let kept = kept.clone();
                    let refuse = refuse.clone();
                    async move {
                        kept.lock().unwrap().push(body.clone());
                        let refused = refuse.lock().unwrap().pop();
                        if let Some(status) = refused {
                            let error = json!({"error": {"message": "slow down",
                                "type": "rate_limit_error", "param": null, "code": null}});
                            let status = axum::http::StatusCode::from_u16(status).unwrap();
                            return axum::response::IntoResponse::into_response((
                                status,
                                axum::Json(error),
                            ));
                        }
                        let n = {
                            let kept = kept.lock().unwrap();
                            kept.len()
                        };
                        let items = script(&body);
                        axum::response::IntoResponse::into_response((
                            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                            sse(&format!("resp-{n}"), &items),
                        ))
                    }
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
            task,
        }
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
