//! A closed-loop stdio load generator: one child process, `concurrency` requests in flight,
//! each answer immediately replaced by the next request.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Spawn `command`, shake hands (2025-11-25), then keep `concurrency` `tools/call`s in flight
/// for `warmup + window`. Returns the round trips that started after the warm-up.
pub async fn run(
    mut command: Command,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Vec<Duration>> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child: Child = command.spawn().context("spawn stdio server")?;
    let mut stdin = child.stdin.take().context("child stdin")?;
    let mut stdout = BufReader::new(child.stdout.take().context("child stdout")?).lines();

    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"baton-bench","version":"1"}}}"#;
    stdin.write_all(format!("{init}\n").as_bytes()).await?;
    stdin.flush().await?;
    stdout.next_line().await?.context("no initialize answer")?;
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await?;

    let call = |id: u64| {
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"baton_info\",\"arguments\":{{}}}}}}\n"
        )
    };
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut next_id = 1u64;
    let mut burst = String::new();
    for _ in 0..concurrency {
        burst.push_str(&call(next_id));
        sent.insert(next_id, Instant::now());
        next_id += 1;
    }
    stdin.write_all(burst.as_bytes()).await?;
    stdin.flush().await?;

    let mut samples = Vec::with_capacity(65_536);
    while !sent.is_empty() {
        let line = stdout.next_line().await?.context("server closed stdout")?;
        let value: serde_json::Value = serde_json::from_str(&line).context("answer is not JSON")?;
        let Some(id) = value.get("id").and_then(serde_json::Value::as_u64) else {
            continue; // a notification
        };
        if value.pointer("/result/structuredContent").is_none() {
            bail!("tools/call failed: {line}");
        }
        let Some(started) = sent.remove(&id) else {
            bail!("answer to an unknown id {id}");
        };
        if started >= measure_from {
            samples.push(started.elapsed());
        }
        if Instant::now() < end {
            sent.insert(next_id, Instant::now());
            stdin.write_all(call(next_id).as_bytes()).await?;
            stdin.flush().await?;
            next_id += 1;
        }
    }
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Ok(samples)
}
