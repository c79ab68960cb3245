//! Traces over OTLP to a real receiver on the loopback: an agent run started over MCP with the
//! client's `traceparent` arrives as one trace under the client's span — the call, the gate
//! (decision, execution, audit), the run, each agent, its model turns with token usage, its
//! delegation and tool calls — and no argument value appears anywhere in what was exported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use baton_test_support::{OtlpReceiver, ReceivedSpan};
use pretty_assertions::assert_eq;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::transport::StreamableHttpClientTransport;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// Argument values that must never be exported.
pub(super) const SECRETS: [&str; 2] = ["SECRET-GOAL-91c2", "SECRET-CONTENT-7f3a"];

fn usage(prompt: u64, completion: u64) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion })
}

/// The manager hands the task to the builder, which writes a note; every turn reports usage.
pub(super) fn cassette() -> Value {
    let call = |id: &str, name: &str, args: Value| {
        json!({"message": {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]},
            "finish_reason": "tool_calls", "usage": usage(120, 30)})
    };
    let answer = |text: &str| {
        json!({"message": {"role": "assistant", "content": text}, "finish_reason": "stop",
            "usage": usage(150, 10)})
    };
    json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]},
         "response": call("m1", "agent_builder", json!({"task": "write NOTE.md"}))},
        {"request": {"messages": [{"role": "system", "content": "You implement exactly one task*"},
                                  {"role": "user", "content": "write NOTE.md*"}]},
         "response": call("b1", "repo_write", json!({"path": "NOTE.md", "content": SECRETS[1]}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "b1"}]},
         "response": answer("NOTE.md written.")},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "m1"}]},
         "response": answer("Done.")},
    ]})
}

/// Each span of the client's trace by id, once `wanted` names have all arrived.
async fn trace(otlp: &OtlpReceiver, wanted: &[&str]) -> BTreeMap<String, ReceivedSpan> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spans: BTreeMap<String, ReceivedSpan> = otlp
            .spans()
            .into_iter()
            .filter(|s| s.trace_id == TRACE)
            .map(|s| (s.span_id.clone(), s))
            .collect();
        if wanted
            .iter()
            .all(|name| spans.values().any(|s| s.name == *name))
        {
            return spans;
        }
        let names: Vec<&str> = spans.values().map(|s| s.name.as_str()).collect();
        assert!(
            Instant::now() < deadline,
            "still missing some of {wanted:?}: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_agent_run_started_over_mcp_is_one_trace_under_the_clients_span() {
    let otlp = OtlpReceiver::start().await;
    let home = Home::new(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\n",
        otlp.endpoint
    ));
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let tape = home.path().join("tape.json");
    std::fs::write(&tape, cassette().to_string()).unwrap();
    // Exported every 100 ms rather than every 5 s.
    let server =
        HttpServer::start_with_env(&home, &[], &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();
    let mut params = CallToolRequestParams::new("agents_run");
    params.arguments = json!({
        "goal": format!("write the note {}", SECRETS[0]), "agent": "manager",
        "repo": repo, "cassette": tape,
    })
    .as_object()
    .cloned();
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(format!("00-{TRACE}-{CLIENT_SPAN}-01"));
    params.meta = Some(meta);
    let started = client.call_tool(params).await.unwrap();
    assert_eq!(started.is_error, Some(false), "{started:?}");
    // A span is exported when it ends: the run's own span ends after everything it did.
    let spans = trace(&otlp, &["run manager", "tools/call agents_run"]).await;
    client.cancel().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.join("NOTE.md")).unwrap(),
        SECRETS[1]
    );

    let named = |name: &str| -> &ReceivedSpan {
        let found: Vec<&ReceivedSpan> = spans.values().filter(|s| s.name == name).collect();
        assert!(!found.is_empty(), "no span {name}: {spans:#?}");
        found[0]
    };
    let parent = |span: &ReceivedSpan| -> String {
        if span.parent_span_id == CLIENT_SPAN {
            return "<client>".to_owned();
        }
        spans.get(&span.parent_span_id).map_or_else(
            || format!("<unknown {}>", span.parent_span_id),
            |p| p.name.clone(),
        )
    };
    // Every span of the trace, under its parent (names; sorted, duplicates kept).
    let mut tree: Vec<(String, String)> = spans
        .values()
        .map(|s| (parent(s), s.name.clone()))
        .collect();
    tree.sort();
    let mut want: Vec<(String, String)> = [
        // The MCP call's span is the gate's too: no `gate agents_run` between.
        ("<client>", "tools/call agents_run"),
        ("tools/call agents_run", "gate.decide"),
        ("tools/call agents_run", "gate.execute"),
        ("tools/call agents_run", "gate.audit"),
        ("gate.execute", "run manager"),
        ("run manager", "invoke_agent manager"),
        ("invoke_agent manager", "chat replay"),
        ("invoke_agent manager", "chat replay"),
        ("invoke_agent manager", "delegate builder"),
        ("delegate builder", "invoke_agent builder"),
        ("invoke_agent builder", "chat replay"),
        ("invoke_agent builder", "chat replay"),
        ("invoke_agent builder", "execute_tool repo_write"),
        ("execute_tool repo_write", "gate repo_write"),
        ("gate repo_write", "gate.decide"),
        ("gate repo_write", "gate.execute"),
        ("gate repo_write", "gate.audit"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_owned()))
    .collect();
    want.sort();
    assert_eq!(tree, want);

    let gate = named("gate repo_write");
    let attribute = |span: &ReceivedSpan, key: &str| span.attributes.get(key).cloned();
    assert_eq!(
        [
            attribute(gate, "gen_ai.operation.name"),
            attribute(gate, "gen_ai.tool.name"),
            attribute(gate, "baton.principal"),
            attribute(gate, "baton.decision"),
            attribute(gate, "baton.outcome"),
        ],
        [
            Some("execute_tool".to_owned()),
            Some("repo_write".to_owned()),
            Some("agent:builder".to_owned()),
            Some("allow".to_owned()),
            Some("ok".to_owned()),
        ]
    );
    assert_eq!(
        attribute(gate, "baton.args_digest").map(|d| d.len()),
        Some(64)
    );
    let turns: Vec<(Option<String>, Option<String>)> = spans
        .values()
        .filter(|s| s.name == "chat replay")
        .map(|s| {
            (
                attribute(s, "gen_ai.usage.input_tokens"),
                attribute(s, "gen_ai.usage.output_tokens"),
            )
        })
        .collect();
    assert_eq!(turns.len(), 4);
    assert!(
        turns.iter().all(|t| t.0.is_some() && t.1.is_some()),
        "{turns:?}"
    );
    assert!(spans.values().all(|s| s.service == "baton"));
    let call = named("tools/call agents_run");
    assert_eq!(
        [
            attribute(call, "rpc.system"),
            attribute(call, "gen_ai.operation.name"),
            attribute(call, "baton.decision"),
            attribute(call, "baton.outcome"),
        ],
        [
            Some("mcp".to_owned()),
            Some("execute_tool".to_owned()),
            Some("allow".to_owned()),
            Some("ok".to_owned()),
        ]
    );
    assert!(attribute(call, "baton.audit.seq").is_some(), "{call:#?}");

    // No argument value anywhere: not in names, attributes or any byte exported.
    let exported = String::from_utf8_lossy(&otlp.payloads()).into_owned();
    for secret in SECRETS {
        assert!(!exported.contains(secret), "{secret} was exported");
    }
    assert!(
        !exported.contains("write NOTE.md"),
        "a delegated task was exported"
    );
}

#[tokio::test]
async fn a_rest_call_continues_the_trace_its_traceparent_header_names() {
    let otlp = OtlpReceiver::start().await;
    let home = Home::new(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\n",
        otlp.endpoint
    ));
    let server =
        HttpServer::start_with_env(&home, &[], &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let answered = reqwest::Client::new()
        .post(format!("http://{}/v1/tools/dsp_response", server.addr))
        .header("traceparent", format!("00-{TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({ "sample_rate": 48000, "chain": [{ "type": "lowpass", "freq_hz": 1000 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    let spans = trace(&otlp, &["POST /v1/tools/dsp_response", "gate.audit"]).await;
    let by_name = |name: &str| spans.values().find(|s| s.name == name).unwrap().clone();
    let call = by_name("POST /v1/tools/dsp_response");
    assert_eq!(call.parent_span_id, CLIENT_SPAN);
    // The request's span is the gate's too, though the call runs on a task of its own.
    let mut children: Vec<&str> = spans
        .values()
        .filter(|s| s.parent_span_id == call.span_id)
        .map(|s| s.name.as_str())
        .collect();
    children.sort_unstable();
    assert_eq!(children, ["gate.audit", "gate.decide", "gate.execute"]);
    let attribute = |key: &str| call.attributes.get(key).map(String::as_str);
    assert_eq!(
        [
            attribute("http.route"),
            attribute("baton.decision"),
            attribute("baton.outcome")
        ],
        [Some("/v1/tools/{name}"), Some("allow"), Some("ok")]
    );
}

/// Sampled before any span is made (`OTEL_TRACES_SAMPLER`): a call whose trace is not
/// recorded makes no span, and under a parent-based sampler the caller decides for its calls.
#[tokio::test]
async fn an_unsampled_call_makes_no_span_and_a_caller_decides_for_its_trace() {
    const CALLER_ON: &str = "0af7651916cd43dd8448eb211c80319c";
    const CALLER_OFF: &str = "5c3ff3b6e2a41c0f9b7c8d2a1e4f6a70";
    let otlp = OtlpReceiver::start().await;
    let home = Home::new(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\n",
        otlp.endpoint
    ));
    let call = |server: &HttpServer, traceparent: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/v1/tools/dsp_response", server.addr))
            .json(
                &json!({ "sample_rate": 48000, "chain": [{ "type": "lowpass", "freq_hz": 1000 }] }),
            );
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        async move { assert_eq!(request.send().await.unwrap().status(), 200) }
    };
    let env = [
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_off"),
    ];
    let server = HttpServer::start_with_env(&home, &[], &env).await;
    // Not recorded: none of their spans may arrive, before or with the recorded one's.
    call(&server, None).await;
    call(&server, Some(format!("00-{CALLER_OFF}-{CLIENT_SPAN}-00"))).await;
    call(&server, Some(format!("00-{CALLER_ON}-{CLIENT_SPAN}-01"))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !otlp
        .spans()
        .iter()
        .any(|s| s.trace_id == CALLER_ON && s.name == "POST /v1/tools/dsp_response")
    {
        assert!(
            Instant::now() < deadline,
            "the sampled call's spans never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let traces: std::collections::BTreeSet<String> =
        otlp.spans().into_iter().map(|s| s.trace_id).collect();
    assert_eq!(traces, [CALLER_ON.to_owned()].into());
    drop(server);

    // A sampler that is not parent-based records by its own ratio, whatever the caller says.
    let env = [
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "1"),
    ];
    let server = HttpServer::start_with_env(&home, &[], &env).await;
    call(&server, Some(format!("00-{CALLER_OFF}-{CLIENT_SPAN}-00"))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !otlp
        .spans()
        .iter()
        .any(|s| s.trace_id == CALLER_OFF && s.name == "POST /v1/tools/dsp_response")
    {
        assert!(Instant::now() < deadline, "the call's spans never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
