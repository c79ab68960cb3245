//! Agents as tools on a replayed cassette, and a run resumed from its journal: recorded model
//! responses and tool results are replayed, never repeated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use baton_agents::{
    Agent, AgentError, AgentSet, MemoryJournal, ModelRequest, ModelResponse, Provider,
    ReplayProvider, RunEvent, RunOutcome, Runner,
};
use baton_runs::{OutcomeStatus, StoreApi as _};

use super::common::{TextUpper, invoker};
use futures::future::BoxFuture;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// Keeps every request it forwards, to check what each agent was shown.
struct Watching {
    inner: ReplayProvider,
    seen: Mutex<Vec<ModelRequest>>,
}

impl Provider for Watching {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
    ) -> BoxFuture<'a, baton_agents::Result<ModelResponse>> {
        self.seen.lock().unwrap().push(request.clone());
        self.inner.complete(request)
    }
}

fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"message": {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
        "function": {"name": name, "arguments": args.to_string()}}]}, "finish_reason": "tool_calls"})
}

fn answer(text: &str) -> Value {
    json!({"message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
}

fn cassette(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("loud.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Make it loud"}]},
         "response": call("c1", "agent_shouter", json!({"task": "shout hi"}))},
        {"request": {"messages": [{"role": "user", "content": "shout hi"}]},
         "response": call("c2", "text_upper", json!({"text": "hi"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c2", "content": "{\"text\":\"HI\"}"}]},
         "response": answer("HI")},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c1", "content": "HI"}]},
         "response": answer("Done: HI")}
    ]});
    std::fs::write(&path, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    path
}

fn agents() -> Arc<AgentSet> {
    let mut manager = Agent::new("manager", "Delegate loud work to the shouter.");
    manager.agents = vec!["shouter".into()];
    let mut shouter = Agent::new("shouter", "Upper-case with text_upper.");
    shouter.description = "Upper-cases text.".into();
    shouter.tools = vec!["text_upper".into()];
    let mut set = AgentSet::default();
    set.insert(manager).unwrap();
    set.insert(shouter).unwrap();
    set.check_references().unwrap();
    Arc::new(set)
}

#[tokio::test]
async fn a_manager_delegates_and_a_rerun_replays_without_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Watching {
        inner: ReplayProvider::load(&cassette(dir.path())).unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    let upper = TextUpper::default();
    let journal = Arc::new(MemoryJournal::default());
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let gate = invoker(&upper);
    let runner = Runner::new(
        provider.clone(),
        gate.clone(),
        agents(),
        journal.clone(),
        "replay",
    )
    .with_events(events);

    let outcome = runner
        .run("run-1", "manager", "Make it loud")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("Done: HI".into()))
    );
    assert_eq!(upper.runs.load(Ordering::SeqCst), 1);
    assert_eq!(provider.inner.unused(), 0);
    // The tool call went through the gate: decided, run and audited as the agent that made it.
    let audited: Vec<(String, String, OutcomeStatus)> = gate
        .gate
        .store()
        .audit_records(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.principal, r.tool, r.outcome.status))
        .collect();
    assert_eq!(
        audited,
        [(
            "agent:shouter".to_owned(),
            "text_upper".to_owned(),
            OutcomeStatus::Ok
        )]
    );
    // The shouter saw its task and nothing of the manager's conversation.
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        serde_json::to_value(&seen[1].messages).unwrap(),
        json!([{"role": "system", "content": "Upper-case with text_upper."}, {"role": "user", "content": "shout hi"}])
    );
    assert_eq!(seen[0].tools[0].function.name, "agent_shouter");
    assert_eq!(
        journal.len("run-1"),
        7,
        "4 model responses, 2 tool results, the intent of the one gate call"
    );

    let mut first = Vec::new();
    while let Ok(event) = received.try_recv() {
        first.push(event);
    }
    assert_eq!(
        first,
        [
            RunEvent::AgentStarted {
                path: "manager".into()
            },
            RunEvent::ModelCall {
                path: "manager".into(),
                turn: 1,
                replayed: false
            },
            RunEvent::ToolCall {
                path: "manager".into(),
                tool: "agent_shouter".into()
            },
            RunEvent::AgentStarted {
                path: "manager/shouter@c1".into()
            },
            RunEvent::ModelCall {
                path: "manager/shouter@c1".into(),
                turn: 1,
                replayed: false
            },
            RunEvent::ToolCall {
                path: "manager/shouter@c1".into(),
                tool: "text_upper".into()
            },
            RunEvent::ToolResult {
                path: "manager/shouter@c1".into(),
                tool: "text_upper".into(),
                ok: true,
                replayed: false,
                detail: None,
                denied: false
            },
            RunEvent::ModelCall {
                path: "manager/shouter@c1".into(),
                turn: 2,
                replayed: false
            },
            RunEvent::AgentFinished {
                path: "manager/shouter@c1".into()
            },
            RunEvent::ToolResult {
                path: "manager".into(),
                tool: "agent_shouter".into(),
                ok: true,
                replayed: false,
                detail: None,
                denied: false
            },
            RunEvent::ModelCall {
                path: "manager".into(),
                turn: 2,
                replayed: false
            },
            RunEvent::AgentFinished {
                path: "manager".into()
            },
        ]
    );

    // The same run again: everything comes from the journal (the cassette is used up, so a
    // model call would fail), and the tool does not run a second time.
    let again = runner
        .run("run-1", "manager", "Make it loud")
        .await
        .unwrap();
    assert_eq!(again, outcome);
    assert_eq!(upper.runs.load(Ordering::SeqCst), 1);
    assert_eq!(provider.seen.lock().unwrap().len(), 4);
    let mut replayed = Vec::new();
    while let Ok(event) = received.try_recv() {
        replayed.push(event);
    }
    assert!(replayed.contains(&RunEvent::ToolResult {
        path: "manager".into(),
        tool: "agent_shouter".into(),
        ok: true,
        replayed: true,
        detail: None,
        denied: false
    }));

    // A new run id has nothing recorded: the used-up cassette says so, naming the request.
    let error = runner
        .run("run-2", "manager", "Make it loud")
        .await
        .unwrap_err();
    assert!(matches!(error, AgentError::NoRecording { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(r#"the last: {"role":"user","content":"Make it loud"}"#),
        "{error}"
    );
}

#[tokio::test]
async fn bad_definitions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"a\"\ninstructions = \"x\"\nagents = [\"ghost\"]\n",
    )
    .unwrap();
    let error = AgentSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent `a`: calls agent `ghost`, which is not defined"
    );
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"a\"\ninstructions = \"x\"\nmax_turn = 3\n",
    )
    .unwrap();
    let error = AgentSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("a.toml") && error.contains("unknown field `max_turn`"),
        "{error}"
    );
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"A B\"\ninstructions = \"x\"\n",
    )
    .unwrap();
    let error = AgentSet::load_dir(dir.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent `A B`: name must be lowercase letters, digits, `_` or `-`"
    );
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"a\"\ninstructions = \"x\"\napi = \"grpc\"\n",
    )
    .unwrap();
    let error = AgentSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        error.contains("a.toml")
            && error.contains("unknown variant `grpc`, expected `chat` or `responses`"),
        "{error}"
    );
}

#[test]
fn the_roles_ship_and_load() {
    let mut set = AgentSet::builtin().unwrap();
    assert_eq!(
        set.names(),
        ["builder", "codex-builder", "manager", "reviewer", "tester"]
    );
    let manager = set.get("manager").unwrap();
    assert_eq!(manager.agents, ["builder", "tester", "reviewer"]);
    assert!(set.get("tester").unwrap().output_schema.is_some());
    let from_files =
        AgentSet::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("roles"))
            .unwrap();
    assert_eq!(from_files, set);

    // `[agents] builder = "codex-builder"`: the manager's builder tasks reach Codex's role,
    // which acts under its own name; an unknown role is refused, naming the ones there are.
    set.serve_as("builder", "codex-builder").unwrap();
    assert_eq!(set.get("builder").unwrap().name, "codex-builder");
    let error = set.serve_as("builder", "kodex").unwrap_err().to_string();
    assert!(
        error.contains("no such agent to serve as `builder`"),
        "{error}"
    );
    assert!(error.contains("codex-builder, manager"), "{error}");
}

#[tokio::test]
async fn a_handoff_gives_the_conversation_to_another_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handoff.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "system", "content": "Route requests.*"}, {"role": "user", "content": "make it loud"}]},
         "response": call("h1", "transfer_to_shouter", json!({"reason": "shouting needed"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "h1", "content": "Transferred to shouter."}]},
         "response": call("c2", "text_upper", json!({"text": "make it loud"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c2"}]},
         "response": answer("MAKE IT LOUD")}
    ]});
    std::fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
    let provider = Arc::new(Watching {
        inner: ReplayProvider::load(&path).unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    let mut triage = Agent::new("triage", "Route requests.");
    triage.handoffs = vec!["shouter".into()];
    let mut shouter = Agent::new("shouter", "Upper-case with text_upper.");
    shouter.tools = vec!["text_upper".into()];
    let mut set = AgentSet::default();
    set.insert(triage).unwrap();
    set.insert(shouter).unwrap();
    set.check_references().unwrap();
    let upper = TextUpper::default();
    let runner = Runner::new(
        provider.clone(),
        invoker(&upper),
        Arc::new(set),
        Arc::new(MemoryJournal::default()),
        "replay",
    );
    let outcome = runner.run("h", "triage", "make it loud").await.unwrap();
    assert_eq!(
        outcome,
        RunOutcome::Completed(Value::String("MAKE IT LOUD".into()))
    );
    let seen = provider.seen.lock().unwrap().clone();
    assert_eq!(seen[0].tools[0].function.name, "transfer_to_shouter");
    // After the handoff the shouter has the whole conversation, under its own instructions
    // and with its own tools.
    let after = serde_json::to_value(&seen[1].messages).unwrap();
    assert_eq!(
        after[0],
        json!({"role": "system", "content": "Upper-case with text_upper."})
    );
    assert_eq!(after[1], json!({"role": "user", "content": "make it loud"}));
    assert_eq!(after.as_array().unwrap().len(), 4);
    assert_eq!(seen[1].tools[0].function.name, "text_upper");
}
