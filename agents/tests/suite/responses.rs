//! The Responses API path against a real server on the loopback streaming server-sent events
//! as OpenAI's does: multi-turn tool calling, a handoff, an output schema asked as
//! `text.format` and then checked in full, and a 429 survived.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use super::common::{TextUpper, invoker};
use baton_agents::{
    Agent, AgentError, AgentSet, Api, ByApi, MemoryJournal, OpenAiProvider, ResponsesProvider,
    RunEvent, RunOutcome, Runner,
};
use baton_test_support::{ResponsesServer, last_input, message};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn function_call(call_id: &str, name: &str, args: &Value) -> Value {
    json!({"type": "function_call", "id": format!("fc-{call_id}"), "call_id": call_id,
           "name": name, "arguments": args.to_string(), "status": "completed"})
}

fn runner(server: &ResponsesServer, agents: AgentSet, upper: &TextUpper) -> Runner {
    Runner::new(
        Arc::new(ResponsesProvider::new(&server.base_url, "test-key")),
        invoker(upper),
        Arc::new(agents),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    )
}

fn shouter() -> AgentSet {
    let mut agent = Agent::new(
        "shouter",
        "Upper-case what you are given with text_upper, then report it.",
    );
    agent.tools = vec!["text_upper".into()];
    let mut set = AgentSet::default();
    set.insert(agent).unwrap();
    set
}

#[tokio::test]
async fn tool_calling_over_turns_survives_a_429() {
    let server = ResponsesServer::start(|request| {
        let last = last_input(request);
        if last["type"] == "function_call_output" {
            vec![message("It says HELLO.")]
        } else {
            vec![function_call(
                "call_1",
                "text_upper",
                &json!({"text": "hello"}),
            )]
        }
    })
    .await;
    server.refuse_next(429, 1);
    let upper = TextUpper::default();
    let outcome = runner(&server, shouter(), &upper)
        .run("run-1", "shouter", "hello")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("It says HELLO.".into()))
    );
    assert_eq!(upper.runs.load(std::sync::atomic::Ordering::SeqCst), 1);

    let requests = server.requests();
    assert_eq!(requests.len(), 3, "the 429 retried once");
    assert_eq!(requests[0], requests[1], "a retry resends the same request");
    assert_eq!(
        requests[1],
        json!({
            "model": "gpt-test",
            "stream": true,
            "instructions": "Upper-case what you are given with text_upper, then report it.",
            "input": [{"role": "user", "content": "hello"}],
            "tools": [{"type": "function", "name": "text_upper", "description": "Upper-cases text.",
                "parameters": requests[1]["tools"][0]["parameters"].clone(), "strict": false}],
        })
    );
    assert_eq!(
        requests[1]["tools"][0]["parameters"]["required"],
        json!(["text"])
    );
    // The second turn goes on from the first response: only the call's output is sent, and
    // the instructions again (the server does not carry them over).
    assert_eq!(requests[2]["previous_response_id"], "resp-2");
    assert_eq!(requests[2]["instructions"], requests[1]["instructions"]);
    assert_eq!(
        requests[2]["input"],
        json!([
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"text\":\"HELLO\"}"}
        ])
    );
}

#[tokio::test]
async fn a_server_that_keeps_no_responses_gets_whole_conversations_with_reasoning() {
    // Two tool calls, each after a reasoning item, then the answer.
    let server = ResponsesServer::start(|request| {
        let outputs = request["input"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|item| item["type"] == "function_call_output")
            .count();
        let reasoning = json!({"type": "reasoning", "id": format!("rs_{outputs}"),
            "summary": [{"type": "summary_text", "text": format!("step {outputs}")}]});
        match outputs {
            0 | 1 => vec![
                reasoning,
                function_call(
                    &format!("call_{outputs}"),
                    "text_upper",
                    &json!({"text": "hi"}),
                ),
            ],
            _ => vec![message("HI, twice.")],
        }
    })
    .await;
    server.stateless();
    let outcome = runner(&server, shouter(), &TextUpper::default())
        .run("run-r", "shouter", "hello")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("HI, twice.".into()))
    );
    let requests = server.requests();
    // Turn 2 was tried chained, refused with a 400, and sent again whole; turn 3 was whole
    // from the start.
    let chained: Vec<bool> = requests
        .iter()
        .map(|r| r.get("previous_response_id").is_some())
        .collect();
    assert_eq!(chained, [false, true, false, false]);
    let kinds = |request: &Value| -> Vec<String> {
        request["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["type"].as_str().unwrap_or("user").to_owned())
            .collect()
    };
    assert_eq!(
        kinds(&requests[3]),
        [
            "user",
            "reasoning",
            "function_call",
            "function_call_output",
            "reasoning",
            "function_call",
            "function_call_output"
        ]
    );
    // The turns' output items go back exactly as the server gave them: the reasoning, and
    // the call that followed it with its item id (the server takes reasoning back only so).
    assert_eq!(
        requests[3]["input"][4],
        json!({"type": "reasoning", "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "step 1"}]})
    );
    assert_eq!(requests[3]["input"][5]["id"], "fc-call_1");
}

#[tokio::test]
async fn a_handoff_gives_the_conversation_to_another_agent() {
    let server =
        ResponsesServer::start(|request| match request["instructions"].as_str().unwrap() {
            "Send billing questions to billing." => vec![function_call(
                "h1",
                "transfer_to_billing",
                &json!({"reason": "billing"}),
            )],
            _ => vec![message("Your invoice is paid.")],
        })
        .await;
    let mut triage = Agent::new("triage", "Send billing questions to billing.");
    triage.handoffs = vec!["billing".into()];
    let billing = Agent::new("billing", "Answer billing questions.");
    let mut set = AgentSet::default();
    set.insert(triage).unwrap();
    set.insert(billing).unwrap();
    let outcome = runner(&server, set, &TextUpper::default())
        .run("run-h", "triage", "is my invoice paid?")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("Your invoice is paid.".into()))
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1]["instructions"], "Answer billing questions.");
    assert_eq!(
        requests[1]["input"][2],
        json!({"type": "function_call_output", "call_id": "h1", "output": "Transferred to billing."})
    );
}

#[tokio::test]
async fn an_output_schema_is_asked_as_text_format_and_checked_in_full() {
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["items"],
        "properties": {"items": {"type": "array", "items": {"type": "object",
            "additionalProperties": false, "required": ["price"],
            "properties": {"price": {"type": "number", "minimum": 0}}}}}});
    let server = ResponsesServer::start(|_| {
        vec![message(
            &json!({"items": [{"price": 1}, {"price": -2}]}).to_string(),
        )]
    })
    .await;
    let mut agent = Agent::new("quoter", "Quote.");
    agent.output_schema = Some(schema.clone());
    let mut set = AgentSet::default();
    set.insert(agent).unwrap();
    let error = runner(&server, set, &TextUpper::default())
        .run("run-s", "quoter", "quote")
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::Output { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "agent `quoter` answered with output that does not fit its schema: \
         at `/items/1/price`: -2 is less than the minimum of 0"
    );
    assert_eq!(
        server.requests()[0]["text"],
        json!({"format": {"type": "json_schema", "name": "quoter_output", "schema": schema, "strict": true}})
    );
}

#[tokio::test]
async fn the_answer_streams_into_run_events_in_order() {
    let server = ResponsesServer::start(|request| {
        if last_input(request)["type"] == "function_call_output" {
            vec![message("It says HELLO, loud and clear.")]
        } else {
            vec![function_call(
                "call_1",
                "text_upper",
                &json!({"text": "hello there"}),
            )]
        }
    })
    .await;
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let outcome = runner(&server, shouter(), &TextUpper::default())
        .with_events(events)
        .run("run-e", "shouter", "hello")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("It says HELLO, loud and clear.".into()))
    );
    let mut seen = Vec::new();
    while let Ok(event) = received.try_recv() {
        seen.push(event);
    }
    let arguments: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            RunEvent::ToolArgumentsDelta {
                path,
                turn: 1,
                tool,
                call_id,
                delta,
            } if path == "shouter" && tool == "text_upper" && call_id == "call_1" => {
                Some(delta.as_str())
            }
            _ => None,
        })
        .collect();
    assert!(arguments.len() > 1, "in pieces: {arguments:?}");
    assert_eq!(arguments.concat(), "{\"text\":\"hello there\"}");
    let text: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            RunEvent::TextDelta {
                path,
                turn: 2,
                text,
            } if path == "shouter" => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.len() > 1, "in pieces: {text:?}");
    assert_eq!(text.concat(), "It says HELLO, loud and clear.");
    // The pieces come before the turn is reported done, and the turn before the tool call.
    let position = |wanted: &dyn Fn(&RunEvent) -> bool| seen.iter().position(wanted).unwrap();
    let first_argument = position(&|e| matches!(e, RunEvent::ToolArgumentsDelta { .. }));
    let turn_one = position(&|e| matches!(e, RunEvent::ModelCall { turn: 1, .. }));
    let call = position(&|e| matches!(e, RunEvent::ToolCall { .. }));
    let last_text = seen
        .iter()
        .rposition(|e| matches!(e, RunEvent::TextDelta { .. }))
        .unwrap();
    let turn_two = position(&|e| matches!(e, RunEvent::ModelCall { turn: 2, .. }));
    assert!(first_argument < turn_one && turn_one < call && last_text < turn_two);
}

#[tokio::test]
async fn each_agent_is_asked_through_the_api_it_names() {
    // The triage agent stays on Chat Completions; billing's model is served by the Responses
    // API only. The handoff carries the conversation from one API to the other.
    let chat = baton_test_support::ChatServer::start(|_| {
        let args = json!({"reason": "billing"});
        (
            200,
            baton_test_support::chat_tool_call("h1", "transfer_to_billing", &args, (7, 2)),
        )
    })
    .await;
    let responses = ResponsesServer::start(|_| vec![message("Your invoice is paid.")]).await;
    let mut triage = Agent::new("triage", "Send billing questions to billing.");
    triage.handoffs = vec!["billing".into()];
    let mut billing = Agent::new("billing", "Answer billing questions.");
    billing.api = Some(Api::Responses);
    let mut set = AgentSet::default();
    set.insert(triage).unwrap();
    set.insert(billing).unwrap();
    let provider = ByApi::new(
        Api::Chat,
        Arc::new(OpenAiProvider::new(&chat.base_url, "test-key").streaming(true)),
        Arc::new(ResponsesProvider::new(&responses.base_url, "test-key")),
    );
    let upper = TextUpper::default();
    let outcome = Runner::new(
        Arc::new(provider),
        invoker(&upper),
        Arc::new(set),
        Arc::new(MemoryJournal::default()),
        "gpt-test",
    )
    .run("run-a", "triage", "is my invoice paid?")
    .await
    .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("Your invoice is paid.".into()))
    );
    assert_eq!(chat.requests().len(), 1);
    let asked = responses.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["instructions"], "Answer billing questions.");
    assert_eq!(
        asked[0]["input"],
        json!([
            {"role": "user", "content": "is my invoice paid?"},
            {"type": "function_call", "call_id": "h1", "name": "transfer_to_billing",
             "arguments": "{\"reason\":\"billing\"}"},
            {"type": "function_call_output", "call_id": "h1", "output": "Transferred to billing."},
        ])
    );
}
