//! A policy file edited while `baton serve` runs applies to the next call; a broken edit is
//! ignored with a logged reason and the last good policy stays. Real processes: an HTTP
//! server and a stdio server sharing one home (the second borrows the first's store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::common::{Home, HttpServer};
use pretty_assertions::assert_eq;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

fn search() -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("knowledge_search");
    params.arguments = json!({ "query": "gate" }).as_object().cloned();
    params
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect()
}

async fn policy(client: &RunningService<RoleClient, ()>) -> Value {
    let info = client
        .call_tool(CallToolRequestParams::new("baton_info"))
        .await
        .unwrap();
    info.structured_content.unwrap()["policy"].clone()
}

/// Poll `baton_info` until `check` holds; returns how long the server took to notice.
async fn until(
    client: &RunningService<RoleClient, ()>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if check(&policy(client).await) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{what}: policy stayed {}", policy(client).await);
}

#[tokio::test]
async fn edits_apply_to_the_next_call_and_broken_edits_are_ignored() {
    let home = Home::new("");
    let http = HttpServer::start(&home, &[]).await;
    let http_client = ().serve(StreamableHttpClientTransport::from_uri(http.url())).await.unwrap();
    let (child, stderr) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdio_client = ().serve(child).await.unwrap();
    let stdio_log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    if let Some(stderr) = stderr {
        let log = stdio_log.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt as _;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
            }
        });
    }
    let clients = [("http", &http_client), ("stdio", &stdio_client)];
    for (name, client) in clients {
        assert_eq!(
            client.call_tool(search()).await.unwrap().is_error,
            Some(false),
            "{name}"
        );
    }

    // An edit: a rule forbidding the search.
    std::fs::write(
        home.path().join("policy.toml"),
        "[[rules]]\nid = \"no-search\"\ntool = \"knowledge_search\"\naction = \"forbid\"\nreason = \"searching is paused\"\n",
    )
    .unwrap();
    for (name, client) in clients {
        let noticed = until(client, name, |p| p["rules"] == 1).await;
        eprintln!("{name} noticed the edit after {noticed:?}");
        let denied = client.call_tool(search()).await.unwrap();
        assert_eq!(
            text(&denied),
            "denied: denied by rule `rules.no-search`: searching is paused",
            "{name}"
        );
    }

    // A broken edit: ignored, the last good policy stays, and the reason is logged and shown.
    std::fs::write(
        home.path().join("policy.toml"),
        "[[rules]]\ntool = \"knowledge_search\"\naction = \n",
    )
    .unwrap();
    for (name, client) in clients {
        until(client, name, |p| p["error"].is_string()).await;
        let status = policy(client).await;
        assert!(
            status["error"].as_str().unwrap().contains("invalid policy"),
            "{status}"
        );
        assert_eq!(status["rules"], 1, "{name}: the last good policy stays");
        let still = client.call_tool(search()).await.unwrap();
        assert!(text(&still).contains("rules.no-search"), "{name}");
    }
    for log in [http.log(), stdio_log.lock().unwrap().clone()] {
        assert!(
            log.contains("policy change ignored; the last good version stays in force"),
            "{log}"
        );
        assert!(log.contains("TOML parse error"), "the log says why: {log}");
    }

    // Fixed: the rule is gone.
    std::fs::write(
        home.path().join("policy.toml"),
        "approval = \"untrusted\"\n",
    )
    .unwrap();
    for (name, client) in clients {
        until(client, name, |p| p["rules"] == 0 && p["error"].is_null()).await;
        assert_eq!(
            client.call_tool(search()).await.unwrap().is_error,
            Some(false),
            "{name}"
        );
    }
    stdio_client.cancel().await.unwrap();
    http_client.cancel().await.unwrap();
}
