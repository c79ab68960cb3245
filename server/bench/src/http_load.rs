//! A closed-loop HTTP/1.1 load generator: `concurrency` keep-alive connections, each sending
//! its next `tools/call` as soon as the previous answer is read.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Era;

const TOOL: &str = "baton_info";

/// Run `concurrency` connections against `addr` for `warmup + window`; return the round trips
/// that started after the warm-up.
pub async fn run(
    addr: SocketAddr,
    era: Era,
    concurrency: usize,
    warmup: Duration,
    window: Duration,
    token: Option<String>,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + window;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            connection(addr, era, worker, measure_from, end, token).await
        }));
    }
    let mut samples = Vec::new();
    for worker in workers {
        samples.extend(worker.await.context("load worker panicked")??);
    }
    Ok(samples)
}

async fn connection(
    addr: SocketAddr,
    era: Era,
    worker: usize,
    measure_from: Instant,
    end: Instant,
    token: Option<String>,
) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let host = addr.to_string();
    let session = match era {
        Era::Stateless | Era::Rest => None,
        Era::Session => Some(initialize(&mut sender, &host, token.as_deref()).await?),
    };
    let mut samples = Vec::with_capacity(65_536);
    // One request in flight per connection, so one id per connection is unique among them;
    // building the body once keeps the load generator's own CPU out of the servers' way.
    let id = worker + 1;
    let body = Bytes::from(match era {
        Era::Stateless => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
        ),
        Era::Session => format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{}}}}}}"#
        ),
        Era::Rest => "{}".to_owned(),
    });
    // MCP answers a result envelope; REST the structured result itself.
    let answered: &[u8] = match era {
        Era::Stateless | Era::Session => b"structuredContent",
        Era::Rest => b"\"protocol_versions\"",
    };
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let request = request(
            &host,
            body.clone(),
            era,
            session.as_deref(),
            token.as_deref(),
            true,
        )?;
        // The connection takes the next request only once it has finished with the last
        // answer; sending before that fails with "connection was not ready".
        sender.ready().await.context("connection to the server")?;
        let response = sender
            .send_request(request)
            .await
            .context("send tools/call")?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() || !contains(&bytes, answered) {
            bail!(
                "tools/call failed: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
        if started >= measure_from {
            samples.push(started.elapsed());
        }
    }
    Ok(samples)
}

fn request(
    host: &str,
    body: impl Into<Bytes>,
    era: Era,
    session: Option<&str>,
    token: Option<&str>,
    tool_call: bool,
) -> anyhow::Result<hyper::Request<Full<Bytes>>> {
    let path = match era {
        Era::Stateless | Era::Session => "/mcp".to_owned(),
        Era::Rest => format!("/v1/tools/{TOOL}"),
    };
    let mut builder = hyper::Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    builder = match era {
        Era::Stateless => builder.header("mcp-protocol-version", "2026-07-28"),
        Era::Session => builder.header("mcp-protocol-version", "2025-11-25"),
        Era::Rest => builder,
    };
    if tool_call && era == Era::Stateless {
        builder = builder
            .header("mcp-method", "tools/call")
            .header("mcp-name", TOOL);
    }
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    Ok(builder.body(Full::new(body.into()))?)
}

/// The 2025-11-25 handshake: `initialize`, then `notifications/initialized`. Returns the session id.
async fn initialize(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    host: &str,
    token: Option<&str>,
) -> anyhow::Result<String> {
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"baton-bench","version":"1"}}}"#;
    let mut init = request(host, body, Era::Session, None, token, false)?;
    init.headers_mut().remove("mcp-protocol-version");
    let response = sender.send_request(init).await.context("initialize")?;
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .context("initialize answered without an Mcp-Session-Id")?;
    response.into_body().collect().await?;
    let notify = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    sender.ready().await.context("connection to the server")?;
    let response = sender
        .send_request(request(
            host,
            notify,
            Era::Session,
            Some(&session),
            token,
            false,
        )?)
        .await
        .context("notifications/initialized")?;
    response.into_body().collect().await?;
    Ok(session)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
