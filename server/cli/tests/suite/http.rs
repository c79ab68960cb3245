//! A real rmcp client drives `baton serve --http` in both protocol eras; authentication,
//! DNS-rebinding protection and shutdown are checked on the real process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::common::session::{Era, assert_session, exercise};
use super::common::{Home, HttpServer, modern_client, redact};
use pretty_assertions::assert_eq;
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-token-for-tests";
// sha256("second-token")
const SECOND_SHA: &str = "7a35833597e6687c599a0988b7a53b9b6a7ec18b88ca2a8e60f3265c8be6d527";

fn token_home() -> Home {
    Home::new(&format!(
        "[[http.tokens]]\nprincipal = \"ci-bot\"\nroles = [\"agent\"]\ntoken_env = \"BATON_TEST_TOKEN\"\n\n\
         [[http.tokens]]\nprincipal = \"rev\"\nroles = [\"reviewer\"]\ntoken_sha256 = \"{SECOND_SHA}\"\n"
    ))
}

async fn start(home: &Home) -> HttpServer {
    HttpServer::start_with_env(home, &[], &[("BATON_TEST_TOKEN", TOKEN)]).await
}

fn transport(server: &HttpServer) -> StreamableHttpClientTransport<reqwest::Client> {
    StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).auth_header(TOKEN),
    )
}

#[tokio::test]
async fn legacy_client_2025_11_25_with_a_bearer_token() {
    let home = token_home();
    let server = start(&home).await;
    let client = ().serve(transport(&server)).await.unwrap();
    assert_session(Era::Legacy, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_client_2026_07_28_with_a_bearer_token() {
    let home = token_home();
    let server = start(&home).await;
    let client = modern_client(transport(&server)).await;
    assert_session(Era::Stateless, redact(exercise(client.peer()).await, &home));
    client.cancel().await.unwrap();
}

async fn raw(server: &HttpServer, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "baton_info");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "baton_info", "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        } }
    });
    let response = request.json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn authentication_and_dns_rebinding_protection() {
    let home = token_home();
    let server = start(&home).await;
    let bearer = format!("Bearer {TOKEN}");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no token", vec![]),
        ("wrong token", vec![("authorization", "Bearer nope")]),
        (
            "not bearer",
            vec![("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
        ),
        ("good token", vec![("authorization", bearer.as_str())]),
        (
            "token configured by sha256",
            vec![("authorization", "Bearer second-token")],
        ),
        (
            "foreign Host",
            vec![
                ("authorization", bearer.as_str()),
                ("host", "evil.example:80"),
            ],
        ),
        (
            "foreign Origin",
            vec![
                ("authorization", bearer.as_str()),
                ("origin", "http://evil.example"),
            ],
        ),
        (
            "loopback Origin",
            vec![
                ("authorization", bearer.as_str()),
                ("origin", "http://localhost:5173"),
            ],
        ),
    ];
    let mut results = serde_json::Map::new();
    for (name, headers) in cases {
        let (status, body) = raw(&server, &headers).await;
        let summary = match body.get("error") {
            Some(error) => {
                json!({ "status": status, "code": error["code"], "message": error["message"] })
            }
            None => {
                json!({ "status": status, "name": body.pointer("/result/structuredContent/name") })
            }
        };
        results.insert(name.to_owned(), summary);
    }
    insta::assert_json_snapshot!("auth_and_origin", results);
    assert!(
        !server.log().contains(TOKEN),
        "the token must never be logged"
    );
}

#[tokio::test]
async fn refuses_an_unauthenticated_public_bind() {
    let home = Home::new("");
    let output = home
        .baton_std(&["serve", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to serve 0.0.0.0:0 without bearer tokens"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let home = Home::new("");
    let mut server = HttpServer::start(&home, &[]).await;
    let pid = server.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("server still running 10 s after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
    assert!(
        server.log().contains("SIGTERM: shutting down"),
        "{}",
        server.log()
    );
}

/// Read from `stream` until the server closes it (or 10 s pass): what it sent.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buffer[..n]),
            Err(_) => return None,
        }
    }
}

/// Slow and idle clients cannot hold the server: a partial header and an idle connection are
/// closed, a trickled body gets 408, connections past `http.max_connections` are closed as
/// they arrive — and a well-behaved call still gets through.
#[tokio::test]
async fn slow_idle_and_surplus_connections_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let home = Home::new("[http]\nheader_timeout_s = 1\nbody_timeout_s = 1\nmax_connections = 6\n");
    let server = HttpServer::start(&home, &[]).await;

    let mut partial = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut partial).await;
    assert!(answer.is_some(), "a partial header is closed");

    let mut trickle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    trickle
        .write_all(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n{\"jsonrpc\"",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut trickle)
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("http.body_timeout_s"), "{answer}");

    // Six idle sockets take every slot: the seventh is closed at once, with nothing sent.
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut surplus = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(until_closed(&mut surplus).await.as_deref(), Some(""));
    // The idle ones are closed by the header timeout; then a real client is served.
    for mut socket in idle {
        assert!(
            until_closed(&mut socket).await.is_some(),
            "an idle connection is closed"
        );
    }
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    assert!(!tools.is_empty());
    assert!(
        server.log().contains("http.max_connections"),
        "{}",
        server.log()
    );
}

/// A client opening sessions in a loop cannot grow the server without limit: past
/// `http.max_sessions`, the session idle longest is closed (its id is refused afterwards) and
/// the newest ones work.
#[tokio::test]
async fn sessions_past_the_cap_close_the_one_idle_longest() {
    let home = Home::new("[http]\nmax_sessions = 3\n");
    let server = HttpServer::start(&home, &[]).await;
    let http = reqwest::Client::new();
    let post = |session: Option<&str>, body: Value| {
        let mut request = http
            .post(server.url())
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&body);
        if let Some(id) = session {
            request = request.header("Mcp-Session-Id", id);
        }
        request.send()
    };
    let mut sessions = Vec::new();
    for n in 0..5 {
        let response = post(
            None,
            json!({"jsonrpc": "2.0", "id": n, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "flood", "version": "1"}}}),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        post(
            Some(&id),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await
        .unwrap();
        sessions.push(id);
    }
    let mut statuses = Vec::new();
    for id in &sessions {
        let response = post(
            Some(id),
            json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}),
        )
        .await
        .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 200, 200, 200], "{}", server.log());
    assert!(
        server.log().contains("http.max_sessions"),
        "{}",
        server.log()
    );
}
