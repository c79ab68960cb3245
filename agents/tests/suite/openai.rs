//! The async-openai path against a real HTTP server on loopback that speaks Chat Completions:
//! multi-turn tool calling, a 429 and a 500 survived, `max_turns` honoured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use super::common::{TextUpper, invoker};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton_agents::{
    Agent, AgentError, AgentSet, MemoryJournal, OpenAiProvider, RunOutcome, Runner,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Endpoint {
    script: Arc<Mutex<Vec<(u16, Value)>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
    loop_tool_calls: bool,
}

fn tool_call(id: &str, text: &str) -> Value {
    json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": id, "type": "function", "function": {"name": "text_upper", "arguments": json!({"text": text}).to_string()}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5}})
}

async fn completions(
    State(endpoint): State<Endpoint>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    assert_eq!(headers["authorization"], "Bearer test-key");
    endpoint.bodies.lock().unwrap().push(body);
    if endpoint.loop_tool_calls {
        let n = endpoint.bodies.lock().unwrap().len();
        return Json(tool_call(&format!("call_{n}"), "again")).into_response();
    }
    let (status, reply) = endpoint.script.lock().unwrap().remove(0);
    let status = StatusCode::from_u16(status).unwrap();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return (status, "upstream exploded").into_response();
    }
    (status, Json(reply)).into_response()
}

async fn serve(endpoint: Endpoint) -> String {
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(endpoint);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn agents(max_turns: u32) -> Arc<AgentSet> {
    let mut agent = Agent::new(
        "shouter",
        "Upper-case what you are given with text_upper, then report it.",
    );
    agent.tools = vec!["text_upper".into()];
    agent.max_turns = max_turns;
    let mut set = AgentSet::default();
    set.insert(agent).unwrap();
    Arc::new(set)
}

#[tokio::test]
async fn tool_calling_over_turns_survives_429_and_500() {
    let endpoint = Endpoint::default();
    *endpoint.script.lock().unwrap() = vec![
        (
            429,
            json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}}),
        ),
        (200, tool_call("call_1", "hello")),
        (500, Value::Null),
        (
            200,
            json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "It says HELLO."}}]}),
        ),
    ];
    let base = serve(endpoint.clone()).await;
    let upper = TextUpper::default();
    let runner = Runner::new(
        Arc::new(OpenAiProvider::new(&base, "test-key")),
        invoker(&upper),
        agents(5),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    );
    let outcome = runner.run("run-1", "shouter", "hello").await.unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("It says HELLO.".into()))
    );
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 1);

    let bodies = endpoint.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 4, "429 and 500 each retried once");
    assert_eq!(bodies[0], bodies[1], "a retry resends the same request");
    assert_eq!(bodies[0]["model"], "gpt-test");
    assert_eq!(bodies[0]["tools"][0]["function"]["name"], "text_upper");
    assert_eq!(
        bodies[0]["tools"][0]["function"]["parameters"]["required"],
        json!(["text"])
    );
    assert_eq!(
        bodies[0]["messages"],
        json!([
            {"role": "system", "content": "Upper-case what you are given with text_upper, then report it."},
            {"role": "user", "content": "hello"}
        ])
    );
    // The second turn carries the tool call and its result.
    let messages = bodies[3]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"text\":\"HELLO\"}"})
    );
}

#[tokio::test]
async fn max_turns_stops_a_model_that_never_answers() {
    let endpoint = Endpoint {
        loop_tool_calls: true,
        ..Endpoint::default()
    };
    let base = serve(endpoint.clone()).await;
    let upper = TextUpper::default();
    let runner = Runner::new(
        Arc::new(OpenAiProvider::new(&base, "test-key")),
        invoker(&upper),
        agents(3),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    );
    let error = runner.run("run-2", "shouter", "x").await.unwrap_err();
    assert!(
        matches!(error, AgentError::MaxTurns { max_turns: 3, .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "agent `shouter` reached max_turns (3) without a final answer"
    );
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 3);
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_status() {
    let endpoint = Endpoint::default();
    *endpoint.script.lock().unwrap() = vec![(500, Value::Null); 8];
    let base = serve(endpoint.clone()).await;
    let runner = Runner::new(
        Arc::new(OpenAiProvider::new(&base, "test-key")),
        invoker(&TextUpper::default()),
        agents(3),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    );
    let error = runner
        .run("run-3", "shouter", "x")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("500 Internal Server Error") && error.contains("gave up after 4 attempts"),
        "{error}"
    );
}
