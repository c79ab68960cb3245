//! The audit log of a real server: `baton audit verify` passes, then names the first bad
//! record after one record's bytes are edited, one is deleted, two are swapped — directly in
//! the sled files; and after `kill -9` under load every answered call has its record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::common::{Home, HttpServer};
use baton_test_support::{audit_line, tamper_audit};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn cli(home: &Home, args: &[&str]) -> (i32, String, String) {
    let output = home.baton_std(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A home whose audit log holds records written by a real server and real CLI calls.
async fn home_with_records() -> Home {
    let home = Home::new("");
    let mut server = HttpServer::start(&home, &[]).await;
    let client = reqwest::Client::new();
    for n in 0..4 {
        let body = json!({
            "jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": { "name": "knowledge_search", "arguments": { "query": format!("audit {n}") },
                        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                   "io.modelcontextprotocol/clientCapabilities": {} } }
        });
        let response = client
            .post(server.url())
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "knowledge_search")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    // Calls from the shell while the server owns the store go through its socket.
    let (code, _, stderr) = cli(&home, &["tools", "call", "baton_info"]);
    assert_eq!(code, 0, "{stderr}");
    server.child.kill().await.unwrap();
    server.child.wait().await.unwrap();
    // …and once it is gone, straight to the store.
    let (code, _, stderr) = cli(&home, &["tools", "call", "baton_info"]);
    assert_eq!(code, 0, "{stderr}");
    home
}

#[tokio::test]
async fn verify_passes_then_names_the_first_bad_record() {
    let home = home_with_records().await;
    let (code, stdout, stderr) = cli(&home, &["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("audit log verified: 6 records, head "),
        "{stdout}"
    );

    let (code, export, _) = cli(&home, &["audit", "export", "--jsonl"]);
    assert_eq!(code, 0);
    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(u64, &str, &str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["principal"].as_str().unwrap(),
                r["tool"].as_str().unwrap(),
                r["decision"]["rule"].as_str().unwrap(),
            )
        })
        .collect();
    let user = baton_cli::config::os_user();
    assert_eq!(
        summary[0],
        (
            1,
            "stdio@http",
            "knowledge_search",
            "approval.untrusted.read"
        )
    );
    assert_eq!(
        summary[5],
        (6, user.as_str(), "baton_info", "approval.untrusted.read")
    );
    for pair in records.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }

    // Edit one record's bytes.
    tamper_audit(&home.path().join(".baton"), |lines| {
        let at = audit_line(lines, 2);
        lines[at] = String::from_utf8(lines[at].clone())
            .unwrap()
            .replace("knowledge_search", "knowledge_searcH")
            .into_bytes();
    });
    let (code, _, stderr) = cli(&home, &["audit", "verify"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "error: audit log FAILED verification at record 2 (edited): record 2 does not match its hash: it was edited; the 1 records before it verify"
        )
    );

    // Delete one.
    let home = home_with_records().await;
    tamper_audit(&home.path().join(".baton"), |lines| {
        let at = audit_line(lines, 4);
        lines.remove(at);
    });
    let (code, _, stderr) = cli(&home, &["audit", "verify"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "error: audit log FAILED verification at record 4 (missing): record 4 is missing: the record after 3 is 5; the 3 records before it verify"
        )
    );

    // Swap two.
    let home = home_with_records().await;
    tamper_audit(&home.path().join(".baton"), |lines| {
        let (a, b) = (audit_line(lines, 2), audit_line(lines, 5));
        lines.swap(a, b);
    });
    let (code, _, stderr) = cli(&home, &["audit", "verify"]);
    assert_eq!(
        (code, stderr.trim()),
        (
            1,
            "error: audit log FAILED verification at record 2 (reordered): record 5 is stored where record 2 belongs: records were reordered; the 1 records before it verify"
        )
    );
}

#[tokio::test]
async fn kill_9_under_load_loses_no_answered_call() {
    let home = Home::new("");
    let mut server = HttpServer::start(&home, &[]).await;
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut load = Vec::new();
    for worker in 0..16 {
        let (client, url, answered) = (client.clone(), server.url(), answered.clone());
        load.push(tokio::spawn(async move {
            for n in 0.. {
                let args = json!({ "query": format!("load {worker} {n}") });
                let body = json!({
                    "jsonrpc": "2.0", "id": n, "method": "tools/call",
                    "params": { "name": "knowledge_search", "arguments": args,
                                "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                           "io.modelcontextprotocol/clientCapabilities": {} } }
                });
                let sent = client
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", "tools/call")
                    .header("mcp-name", "knowledge_search")
                    .json(&body)
                    .send()
                    .await;
                let Ok(response) = sent else { return };
                let Ok(value) = response.json::<Value>().await else {
                    return;
                };
                if value.pointer("/result/structuredContent").is_some() {
                    answered
                        .lock()
                        .unwrap()
                        .push(baton_runs::args_digest(&args));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no shutdown, no flush, no goodbye.
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for worker in load {
        worker.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 200,
        "the load was too light to mean anything: {}",
        answered.len()
    );

    let (code, stdout, stderr) = cli(&home, &["audit", "verify"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, export, _) = cli(&home, &["audit", "export", "--jsonl"]);
    let recorded: std::collections::HashSet<String> = export
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["args_digest"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let missing = answered
        .iter()
        .filter(|digest| !recorded.contains(*digest))
        .count();
    eprintln!(
        "kill -9: {} calls answered, {} records after restart ({})",
        answered.len(),
        recorded.len(),
        stdout.trim()
    );
    assert_eq!(missing, 0, "answered calls without an audit record");
}
