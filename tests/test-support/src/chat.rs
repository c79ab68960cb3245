//! A scripted model on the loopback speaking OpenAI's Chat Completions:
//! `POST /v1/chat/completions` answered by the test's script, which sees the request and
//! returns a status and a body (a 429 or a 500 to test retries, a completion otherwise). Every
//! request is kept for the test to read.

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
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        axum::Json(reply),
                    )
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
