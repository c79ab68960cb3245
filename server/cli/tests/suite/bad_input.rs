//! Bad input never crashes the server: each malformed message gets a JSON-RPC error, and the
//! next good request is served. Raw bytes over the real `baton serve` pipes and over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use super::common::{Home, HttpServer};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn ten_megabyte_call() -> Vec<u8> {
    let padding = "x".repeat(10 * 1024 * 1024);
    format!(
        r#"{{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{{"name":"knowledge_search","arguments":{{"query":"{padding}"}}}}}}"#
    )
    .into_bytes()
}

#[tokio::test]
async fn stdio_answers_every_bad_line_and_keeps_serving() {
    let home = Home::new("");
    let mut child = home
        .baton(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .expect("no answer within 10 s")
            .unwrap()
            .expect("server closed stdout");
        serde_json::from_str(&line).unwrap()
    };

    stdin
        .write_all(format!("{INIT}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(next().await["id"], 0);
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".to_vec()),
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xff\xfe\"}".to_vec()),
        ("not an object", b"[1, 2, 3]".to_vec()),
        ("wrong jsonrpc version", br#"{"jsonrpc":"1.0","id":3,"method":"tools/list"}"#.to_vec()),
        ("params not an object", br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":"baton_info"}"#.to_vec()),
        ("unknown method", br#"{"jsonrpc":"2.0","id":5,"method":"tools/explode","params":{}}"#.to_vec()),
        ("unknown tool", br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"dsp_explode"}}"#.to_vec()),
        (
            "args that fail the schema",
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"knowledge_search","arguments":{"query":["a"]}}}"#.to_vec(),
        ),
        ("a 10 MB line", ten_megabyte_call()),
        ("arguments a string", br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"baton_info","arguments":"x"}}"#.to_vec()),
        ("arguments an array", br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"baton_info","arguments":[1]}}"#.to_vec()),
        ("name missing", br#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"arguments":{}}}"#.to_vec()),
        ("name a number", br#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":7}}"#.to_vec()),
        ("a key given twice", br#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"knowledge_search","arguments":{"query":"a","query":"b"}}}"#.to_vec()),
    ];
    let mut answers = serde_json::Map::new();
    for (name, mut bytes) in cases {
        bytes.push(b'\n');
        stdin.write_all(&bytes).await.unwrap();
        stdin.flush().await.unwrap();
        let answer = next().await;
        assert!(answer.get("error").is_some(), "{name}: {answer}");
        answers.insert(name.to_owned(), answer);
    }

    // A garbled notification gets no answer; the next request's answer comes first.
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":[]}}\n")
        .await
        .unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":100,\"method\":\"tools/call\",\"params\":{\"name\":\"baton_info\"}}\n")
        .await
        .unwrap();
    let good = next().await;
    assert_eq!(good["id"], 100);
    assert_eq!(good["result"]["structuredContent"]["name"], "baton");

    insta::assert_json_snapshot!("stdio_errors", answers);
    for name in [
        "arguments a string",
        "arguments an array",
        "name missing",
        "name a number",
    ] {
        assert_eq!(answers[name]["error"]["code"], -32602, "{name}");
    }

    // The last line is answered whether or not it ends with a newline.
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":101,\"method\":\"tools/call\",\"params\":{\"name\":\"baton_info\"}}")
        .await
        .unwrap();
    stdin.flush().await.unwrap();
    drop(stdin);
    let last = next().await;
    assert_eq!(last["id"], 101);
    assert_eq!(last["result"]["structuredContent"]["name"], "baton");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "baton serve exited with {status} after stdin closed"
    );
}

#[tokio::test]
async fn http_answers_bad_requests_and_keeps_serving() {
    let home = Home::new("");
    let server = HttpServer::start(&home, &[]).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>, tool: Option<&str>| {
        let mut request = client
            .post(server.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28");
        if let Some(tool) = tool {
            request = request
                .header("mcp-method", "tools/call")
                .header("mcp-name", tool);
        }
        request.body(body).send()
    };
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let call = |id: u64, name: &str, args: Value| {
        serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": name, "arguments": args, "_meta": meta }
        }))
        .unwrap()
    };

    let mut statuses = Vec::new();
    for (name, body, tool) in [
        (
            "malformed JSON",
            b"{\"jsonrpc\": \"2.0\", \"id\": 1,".to_vec(),
            None,
        ),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"\xff\"}".to_vec(),
            None,
        ),
        (
            "unknown tool",
            call(3, "dsp_explode", json!({})),
            Some("dsp_explode"),
        ),
        (
            "args that fail the schema",
            call(4, "knowledge_search", json!({ "query": 5 })),
            Some("knowledge_search"),
        ),
        (
            "a 10 MB body",
            ten_megabyte_call(),
            Some("knowledge_search"),
        ),
        (
            "a key given twice",
            br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"knowledge_search","arguments":{"query":"a","query":"b"}}}"#.to_vec(),
            Some("knowledge_search"),
        ),
    ] {
        let response = post(body, tool).await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let error = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").cloned());
        statuses.push(json!({ "case": name, "status": status, "error_code": error.as_ref().map(|e| e["code"].clone()) }));
    }
    insta::assert_json_snapshot!("http_errors", statuses);

    let response = post(call(5, "baton_info", json!({})), Some("baton_info"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let value: Value = response.json().await.unwrap();
    assert_eq!(value["result"]["structuredContent"]["name"], "baton");
}

/// Tool arguments never reach a log, at any level: not Baton's, not the MCP library's (which
/// logs whole requests and results at debug and trace).
#[tokio::test]
async fn arguments_never_reach_the_log_at_any_level() {
    let home = Home::new("");
    let canary = "sk-canary-7f3a9c";
    let mut child = home
        .baton(&["serve"])
        .env("BATON_LOG", "trace,rmcp=trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"knowledge_search","arguments":{{"query":"{canary}"}}}}}}"#
    );
    let bad = format!(
        r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"knowledge_search","arguments":{{"query":"q","password":"{canary}"}}}}}}"#
    );
    for line in [
        INIT,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &call,
        &bad,
    ] {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        ids.push(answer["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2]);
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.lines().count() > 3, "the log ran at trace: {log}");
    assert!(!log.contains(canary), "{log}");
}

/// A client that sends and never reads cannot fill the server's memory: once
/// `stdio.max_pending` requests are unanswered or their answers unwritten, the server reads
/// no further and the client's own pipe fills (its writes stop making progress); when it reads
/// again, every request is answered.
#[tokio::test]
async fn stdio_stops_reading_while_answers_are_unread() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const SENT: usize = 20_000;
    let home = Home::new("[stdio]\nmax_pending = 64\n");
    let mut child = home
        .baton(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{INIT}\n").as_bytes())
        .await
        .unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let progress = written.clone();
    let writer = tokio::spawn(async move {
        for id in 1..=SENT {
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"baton_info\"}}}}\n"
            );
            stdin.write_all(line.as_bytes()).await.unwrap();
            progress.fetch_add(1, Ordering::Relaxed);
        }
        stdin
    });
    // Wait until the writer stops making progress: the server has stopped reading.
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = written.load(Ordering::Relaxed);
        if now == last || now == SENT {
            break;
        }
        last = now;
    }
    let stalled_at = written.load(Ordering::Relaxed);
    assert!(
        stalled_at < SENT / 2,
        "the server kept reading while nobody read its answers: {stalled_at} of {SENT} written"
    );
    // Reading again lets everything through, every request answered once.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answered = 0usize;
    while answered < SENT + 1 {
        let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("answers keep coming")
            .unwrap()
            .expect("server closed stdout");
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert!(answer.get("result").is_some(), "{answer}");
        answered += 1;
    }
    drop(writer.await.unwrap());
    let _ = child.kill().await;
}

/// The JSON-RPC reader under corrupted input: 3,000 messages with bytes replaced, inserted or
/// deleted (a fixed seed, so the same bytes every run) go to one `baton serve`; it never
/// crashes, answers at most once per line, and still answers a good request at the end.
#[tokio::test]
async fn corrupted_messages_never_crash_the_reader() {
    const LINES: usize = 3_000;
    let templates = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"knowledge_search","arguments":{"query":"gate"}}}"#,
        r#"{"jsonrpc":"2.0","id":"x","method":"tools/list","params":{"cursor":"0"}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"knowledge://docs/gate.md"}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"knowledge_brief","arguments":{"topic":"gate"}}}"#,
    ];
    // xorshift64*: a fixed seed, so the corpus is the same every run.
    let mut state = 0x5eed_0016_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut corpus = Vec::with_capacity(LINES);
    for _ in 0..LINES {
        let mut bytes = templates[(next() % templates.len() as u64) as usize]
            .as_bytes()
            .to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len().max(1) as u64) as usize;
            let byte = (next() & 0xff) as u8;
            match next() % 3 {
                0 if !bytes.is_empty() => bytes[at] = byte,
                1 => bytes.insert(at.min(bytes.len()), byte),
                _ if !bytes.is_empty() => {
                    bytes.remove(at);
                }
                _ => bytes.push(byte),
            }
        }
        // A newline inside would split the message in two: keep one message a line.
        bytes.retain(|&b| b != b'\n');
        corpus.push(bytes);
    }
    let home = Home::new("");
    let mut child = home
        .baton(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut answers = 0usize;
        while let Ok(Some(line)) = lines.next_line().await {
            let answer: Value = serde_json::from_str(&line).unwrap();
            answers += 1;
            if answer["id"] == "final" {
                return (answers, answer);
            }
        }
        (answers, Value::Null)
    });
    stdin
        .write_all(format!("{INIT}\n").as_bytes())
        .await
        .unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    for line in &corpus {
        stdin.write_all(line).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
    }
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"final\",\"method\":\"tools/call\",\"params\":{\"name\":\"baton_info\"}}\n")
        .await
        .unwrap();
    let (answers, last) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the server kept answering")
        .unwrap();
    assert_eq!(
        last["result"]["structuredContent"]["name"], "baton",
        "{last}"
    );
    assert!(answers <= LINES + 2, "at most one answer a line: {answers}");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}
