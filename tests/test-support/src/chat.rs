//! A scripted model on the loopback speaking OpenAI's Chat Completions:
//! `POST /v1/chat/completions` answered by the test's script, which sees the request and
//! returns a status and a body (a 429 or a 500 to test retries, a completion otherwise). A
//! request with `stream: true` gets the completion as OpenAI streams it: chunks of a few
//! characters, tool calls by index, the usage in a last chunk, then `[DONE]`. Every request is
//! kept for the test to read.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Answers one request: a status and a JSON body.
pub type ChatScript = dyn Fn(&Value) -> (u16, Value) + Send + Sync;

/// The running server; stops when dropped.
#[derive(Debug)]
pub struct ChatServer {
    /// `http://127.0.0.1:PORT/v1`, for `OPENAI_BASE_URL`.
    pub base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChatServer {
    /// Serve `script` on a free loopback port.
    pub async fn start(script: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let script: Arc<ChatScript> = Arc::new(script);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let script = script.clone();
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body.clone());
                    let (status, reply) = script(&body);
                    let status = axum::http::StatusCode::from_u16(status).unwrap();
                    if status.is_success() && body["stream"] == true {
                        return axum::response::IntoResponse::into_response((
                            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                            chunks(&reply),
                        ));
                    }
                    axum::response::IntoResponse::into_response((status, axum::Json(reply)))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ChatServer {
            base_url: format!("http://{address}/v1"),
            requests,
            task,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

/// A completion asking for one call of `name` with `args`, reporting `usage` tokens
/// (prompt, completion).
pub fn chat_tool_call(id: &str, name: &str, args: &Value, usage: (u64, u64)) -> Value {
    json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": null,
        "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]}}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}})
}

/// A completion answering with `text`, reporting `usage` tokens (prompt, completion).
pub fn chat_answer(text: &str, usage: (u64, u64)) -> Value {
    json!({"choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}})
}

/// `completion` as the server-sent chunks OpenAI streams for it: the role, text and each tool
/// call's arguments in pieces of at most 8 characters (a call's id and name in its first
/// piece), the finish reason, the usage in a chunk with no choices, then `[DONE]`.
fn chunks(completion: &Value) -> String {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
            "model": "test", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut out = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for piece in super::responses::pieces(message["content"].as_str().unwrap_or_default()) {
        out.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (index, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        let mut pieces = super::responses::pieces(arguments).into_iter();
        let first = pieces.next().unwrap_or_default();
        out.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": first}}]}),
            Value::Null,
        ));
        for piece in pieces {
            out.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    out.push(chunk(json!({}), choice["finish_reason"].clone()));
    out.push(
        json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
        "model": "test", "choices": [], "usage": completion["usage"]}),
    );
    let mut text: String = out.iter().map(|c| format!("data: {c}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    text
}
