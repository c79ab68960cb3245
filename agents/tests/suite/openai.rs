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
    Agent, AgentError, AgentSet, Budget, MemoryJournal, OpenAiProvider, OverBudget, Price,
    RunEvent, RunOutcome, RunUsage, Runner, Spent,
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

fn answer(text: &str) -> Value {
    json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})
}

/// A quote: items with a SKU of a given form and a price that is not negative.
fn quote_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["sku", "price"],
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                "price": {"type": "number", "minimum": 0}
            }
        }}}
    })
}

async fn quote(replies: Vec<Value>) -> (Result<RunOutcome, AgentError>, Vec<Value>) {
    let endpoint = Endpoint::default();
    *endpoint.script.lock().unwrap() = replies.into_iter().map(|r| (200, r)).collect();
    let base = serve(endpoint.clone()).await;
    let mut agent = Agent::new("quoter", "Quote the items asked for.");
    agent.output_schema = Some(quote_schema());
    let mut set = AgentSet::default();
    set.insert(agent).unwrap();
    let runner = Runner::new(
        Arc::new(OpenAiProvider::new(&base, "test-key")),
        invoker(&TextUpper::default()),
        Arc::new(set),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    );
    let outcome = runner.run("run-q", "quoter", "two widgets").await;
    let bodies = endpoint.bodies.lock().unwrap().clone();
    (outcome, bodies)
}

#[tokio::test]
async fn an_output_schema_is_asked_for_natively_and_checked_in_full() {
    let good = json!({"items": [{"sku": "ABC-1", "price": 3.5}, {"sku": "ABC-2", "price": 0}]});
    let (outcome, bodies) = quote(vec![answer(&good.to_string())]).await;
    assert_eq!(outcome.unwrap(), RunOutcome::Completed(good));
    assert_eq!(
        bodies[0]["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "quoter_output", "schema": quote_schema(), "strict": true}})
    );

    // The server claimed strict mode; the answer still breaks two nested constraints.
    let bad = json!({"items": [{"sku": "ABC-1", "price": 3.5}, {"sku": "abc", "price": -1}]});
    let (outcome, _) = quote(vec![answer(&bad.to_string())]).await;
    let error = outcome.unwrap_err();
    assert!(matches!(error, AgentError::Output { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "agent `quoter` answered with output that does not fit its schema: \
         at `/items/1/price`: -1 is less than the minimum of 0; \
         at `/items/1/sku`: \"abc\" does not match \"^[A-Z]{3}-[0-9]+$\""
    );

    let extra = json!({"items": [], "note": "free shipping"});
    let (outcome, _) = quote(vec![answer(&extra.to_string())]).await;
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "agent `quoter` answered with output that does not fit its schema: \
         at `/`: Additional properties are not allowed ('note' was unexpected)"
    );

    let refusal = json!({"choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": null, "refusal": "I can't help with pricing."}}]});
    let (outcome, _) = quote(vec![refusal]).await;
    assert_eq!(
        outcome.unwrap_err().to_string(),
        "agent `quoter` answered with output that does not fit its schema: \
         the model refused to answer: I can't help with pricing."
    );
}

#[test]
fn strict_mode_is_asked_only_for_schemas_it_accepts() {
    assert!(baton_agents::strict_allowed(&quote_schema()));
    let open =
        json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}});
    assert!(!baton_agents::strict_allowed(&open), "not closed");
    let optional = json!({"type": "object", "additionalProperties": false, "required": [],
        "properties": {"a": {"type": "string"}}});
    assert!(
        !baton_agents::strict_allowed(&optional),
        "a property not required"
    );
    let mut nested = quote_schema();
    nested["properties"]["items"]["items"]["properties"]["sku"]["minLength"] = json!(3);
    assert!(
        !baton_agents::strict_allowed(&nested),
        "a keyword strict mode lacks"
    );
    for role in ["tester", "reviewer"] {
        let set = AgentSet::builtin().unwrap();
        let schema = set.get(role).unwrap().output_schema.clone().unwrap();
        assert!(baton_agents::strict_allowed(&schema), "{role}'s schema");
    }

    let mut broken = Agent::new("broken", "x");
    broken.output_schema =
        Some(json!({"type": "object", "properties": {"a": {"type": "nonsense"}}}));
    let error = AgentSet::default().insert(broken).unwrap_err().to_string();
    assert!(
        error.starts_with("agent `broken`: output_schema is not a JSON Schema: "),
        "{error}"
    );
}

#[tokio::test]
async fn a_run_stops_at_its_token_budget_and_resumes_with_a_larger_one() {
    let endpoint = Endpoint::default();
    let mut done = answer("It says AGAIN.");
    done["usage"] = json!({"prompt_tokens": 30, "completion_tokens": 2});
    *endpoint.script.lock().unwrap() = vec![
        (200, tool_call("call_1", "a")),
        (200, tool_call("call_2", "b")),
        (200, tool_call("call_3", "c")),
        (200, done),
    ];
    let base = serve(endpoint.clone()).await;
    let upper = TextUpper::default();
    let journal = Arc::new(MemoryJournal::default());
    let runner = |max_tokens| {
        Runner::new(
            Arc::new(OpenAiProvider::new(&base, "test-key")),
            invoker(&upper),
            agents(10),
            journal.clone(),
            "gpt-test",
        )
        .with_budget(Budget {
            max_tokens: Some(max_tokens),
            ..Budget::default()
        })
    };

    let first = runner(40);
    let RunOutcome::OverBudget(stop) = first.run("run-b", "shouter", "x").await.unwrap() else {
        panic!("the run should stop at its budget");
    };
    let spent = Spent {
        turns: 3,
        input_tokens: 30,
        output_tokens: 15,
        total_tokens: 45,
        cost: None,
    };
    assert_eq!(
        stop,
        OverBudget {
            path: "shouter".into(),
            reason: "45 tokens used of a budget of 40".into(),
            usage: RunUsage {
                run: spent,
                agents: [("shouter".to_owned(), spent)].into(),
            },
        }
    );
    assert_eq!(
        endpoint.bodies.lock().unwrap().len(),
        3,
        "no fourth model call"
    );
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 3);

    // Resumed with a larger budget: the three turns replay (and count), the fourth is asked.
    let second = runner(100);
    let outcome = second.run("run-b", "shouter", "x").await.unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("It says AGAIN.".into()))
    );
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 4);
    assert_eq!(
        upper.runs.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "no call repeated"
    );
    assert_eq!(second.usage("run-b").run.total_tokens, 77);
    assert_eq!(second.usage("run-b").run.turns, 4);
}

#[tokio::test]
async fn a_cost_budget_prices_every_turn_and_needs_a_price() {
    let endpoint = Endpoint {
        loop_tool_calls: true,
        ..Endpoint::default()
    };
    let base = serve(endpoint.clone()).await;
    let upper = TextUpper::default();
    let runner = |prices: Vec<(&str, Price)>| {
        Runner::new(
            Arc::new(OpenAiProvider::new(&base, "test-key")),
            invoker(&upper),
            agents(10),
            Arc::new(MemoryJournal::default()),
            "gpt-test",
        )
        .with_budget(Budget {
            max_cost: Some(0.0001),
            prices: prices.into_iter().map(|(m, p)| (m.to_owned(), p)).collect(),
            ..Budget::default()
        })
    };
    // 10 prompt tokens at 2/M and 5 completion tokens at 8/M: 0.00006 a turn.
    let priced = runner(vec![(
        "gpt-test",
        Price {
            input_per_mtok: 2.0,
            output_per_mtok: 8.0,
        },
    )]);
    let RunOutcome::OverBudget(stop) = priced.run("run-c", "shouter", "x").await.unwrap() else {
        panic!("the run should stop at its budget");
    };
    assert_eq!(stop.reason, "0.000120 spent of a budget of 0.0001");
    assert_eq!(stop.usage.run.turns, 2);
    assert!((stop.usage.run.cost.unwrap() - 0.00012).abs() < 1e-12);

    let unpriced = runner(vec![]);
    let RunOutcome::OverBudget(stop) = unpriced.run("run-d", "shouter", "x").await.unwrap() else {
        panic!("a cost budget without the model's price makes no model call");
    };
    assert_eq!(
        stop.reason,
        "a cost budget of 0.0001 is set, but model `gpt-test` has no price"
    );
    assert_eq!(stop.usage.run.turns, 0);
    assert_eq!(endpoint.bodies.lock().unwrap().len(), 2);
}

fn streaming_runner(base: &str, upper: &TextUpper) -> Runner {
    Runner::new(
        Arc::new(OpenAiProvider::new(base, "test-key").streaming(true)),
        invoker(upper),
        agents(5),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    )
}

#[tokio::test]
async fn a_streamed_chat_answer_reaches_run_events_in_pieces_with_its_usage() {
    let server = baton_test_support::ChatServer::start(|request| {
        let last = request["messages"].as_array().unwrap().last().unwrap();
        if last["role"] == "tool" {
            (
                200,
                baton_test_support::chat_answer("It says HELLO THERE.", (11, 4)),
            )
        } else {
            let args = json!({"text": "hello there"});
            (
                200,
                baton_test_support::chat_tool_call("c1", "text_upper", &args, (9, 3)),
            )
        }
    })
    .await;
    let upper = TextUpper::default();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let runner = streaming_runner(&server.base_url, &upper).with_events(events);
    let outcome = runner.run("run-s", "shouter", "hello").await.unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("It says HELLO THERE.".into()))
    );
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    let mut arguments = Vec::new();
    let mut text = Vec::new();
    while let Ok(event) = received.try_recv() {
        match event {
            RunEvent::ToolArgumentsDelta {
                call_id,
                tool,
                delta,
                ..
            } => {
                assert_eq!((call_id.as_str(), tool.as_str()), ("c1", "text_upper"));
                arguments.push(delta);
            }
            RunEvent::TextDelta { text: piece, .. } => text.push(piece),
            _ => {}
        }
    }
    assert!(
        arguments.len() > 1 && text.len() > 1,
        "{arguments:?} {text:?}"
    );
    assert_eq!(arguments.concat(), "{\"text\":\"hello there\"}");
    assert_eq!(text.concat(), "It says HELLO THERE.");
    // The usage of the last chunk counts, as a whole answer's would.
    let spent = runner.usage("run-s").run;
    assert_eq!(
        (spent.turns, spent.input_tokens, spent.output_tokens),
        (2, 20, 7)
    );
    for request in server.requests() {
        assert_eq!(request["stream"], true);
        assert_eq!(request["stream_options"], json!({"include_usage": true}));
    }
}

/// A server streaming `body` as its answer to every request.
async fn raw_stream(body: &'static str) -> String {
    raw_streams(vec![body]).await
}

/// A server streaming `bodies` in turn, one per request, the last one again after that.
async fn raw_streams(bodies: Vec<&'static str>) -> String {
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = bodies[n.min(bodies.len() - 1)];
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

/// Two calls streamed with no `index` (Gemini's way), ids repeated on each piece; an empty
/// refusal on the way.
const UNNUMBERED_CALLS: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"refusal\":\"\",\"tool_calls\":[{\"id\":\"g1\",\"type\":\"function\",\"function\":{\"name\":\"text_upper\",\"arguments\":\"{\\\"text\\\":\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"g1\",\"function\":{\"arguments\":\"\\\"a\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"g2\",\"type\":\"function\",\"function\":{\"name\":\"text_upper\",\"arguments\":\"{\\\"text\\\":\\\"b\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
    "data: [DONE]\n\n",
);

const ANSWER_WITHOUT_USAGE: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A and B.\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\n\n",
);

#[tokio::test]
async fn unnumbered_streamed_calls_are_told_apart_and_a_budget_needs_usage() {
    let base = raw_streams(vec![UNNUMBERED_CALLS, ANSWER_WITHOUT_USAGE]).await;
    let upper = TextUpper::default();
    let outcome = streaming_runner(&base, &upper)
        .run("run-g", "shouter", "a and b")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("A and B.".into()))
    );
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Held to a budget, an answer that reports no usage stops the run rather than go on
    // uncounted (the first turn's usage is counted, the second's is missing).
    let base = raw_streams(vec![UNNUMBERED_CALLS, ANSWER_WITHOUT_USAGE]).await;
    let error = streaming_runner(&base, &TextUpper::default())
        .with_budget(Budget {
            max_tokens: Some(1000),
            ..Budget::default()
        })
        .run("run-u", "shouter", "a and b")
        .await
        .unwrap_err();
    match error {
        AgentError::Provider { message, .. } => assert_eq!(
            message,
            "the answer reported no token usage: a run held to a budget cannot go on uncounted"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_chat_stream_is_refused_naming_what_was_wrong() {
    let cases: [(&'static str, &str); 5] = [
        (
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"text_upper\",\"arguments\":\"{}\"}}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"b\",\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
            "tool call 0 changed its id from `a` to `b` mid-stream",
        ),
        (
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":7,\"id\":\"x\",\"function\":{\"name\":\"text_upper\",\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n",
            "tool call delta 7 arrived while only 0 calls had started",
        ),
        (
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half an ans\"}}]}\n\ndata: [DONE]\n\n",
            "the stream ended before the completion finished (no `finish_reason`)",
        ),
        (
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n",
            "streamed tool call 0 has no id or no name",
        ),
        (
            "data: {\"error\":{\"message\":\"model overloaded\"}}\n\ndata: [DONE]\n\n",
            "the stream reported an error: model overloaded",
        ),
    ];
    for (body, expected) in cases {
        let base = raw_stream(body).await;
        let upper = TextUpper::default();
        let error = streaming_runner(&base, &upper)
            .run("run-m", "shouter", "hello")
            .await
            .unwrap_err();
        match error {
            AgentError::Provider { message, .. } => assert_eq!(message, expected),
            other => panic!("{expected}: {other:?}"),
        }
        assert_eq!(
            upper.runs.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "{expected}"
        );
    }
}
