//! `baton-bench abuse`: well-behaved callers measured alone, then again while, at the same
//! time, a session flood, thousands of slow connections and repeated maximum-size calls hit
//! the same server — with the server's memory (RSS) sampled throughout.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Era, Measured, Server, http_load, spawn_http, stats::ms, tempfile_dir};

/// `baton-bench abuse`
#[derive(Debug, Args)]
pub struct AbuseArgs {
    /// Seconds measured in each phase (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rounds of (alone, under attack), each on a fresh server; the median ratio is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Well-behaved callers.
    #[arg(long, default_value_t = 32)]
    pub callers: usize,
    /// Slow connections (each trickling a header forever, reconnecting when closed).
    #[arg(long, default_value_t = 2000)]
    pub slow: usize,
    /// Tasks flooding `initialize` (each a new session).
    #[arg(long, default_value_t = 4)]
    pub flooders: usize,
    /// Tasks sending maximum-size calls back to back.
    #[arg(long, default_value_t = 2)]
    pub big: usize,
    /// Write the results into this Markdown file, in its `abuse` section.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// What the attackers managed, counted.
#[derive(Debug, Default)]
struct Counts {
    sessions: AtomicU64,
    slow_connects: AtomicU64,
    big_calls: AtomicU64,
    max_rss_kb: AtomicU64,
}

/// Run the benchmark.
pub async fn run(args: AbuseArgs) -> anyhow::Result<()> {
    let mut rounds = Vec::new();
    for _ in 0..args.rounds.max(1) {
        rounds.push(round(&args).await?);
    }
    let table = render(&args, &rounds);
    {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(table.as_bytes())?;
    }
    if let Some(path) = &args.write {
        super::write_section(path, "abuse", &table)?;
    }
    Ok(())
}

/// One round's figures.
#[derive(Debug)]
struct Round {
    alone: Measured,
    loaded: Measured,
    rss_alone_kb: u64,
    counts: Counts,
}

/// One round on a fresh server: the callers alone, then under attack.
async fn round(args: &AbuseArgs) -> anyhow::Result<Round> {
    let exe = super::Binaries {
        bench: std::env::current_exe().context("locate the baton-bench binary")?,
        reference: None,
        store_url: None,
        telemetry: None,
    };
    let home = tempfile_dir()?;
    let (mut child, addr) = spawn_http(&exe, Server::Baton, &home).await?;
    let pid = child.id().context("server pid")?;
    let warmup = Duration::from_secs(1);
    let window = Duration::from_secs(args.seconds.max(1));
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn(sample_rss(pid, counts.clone(), stop.clone()));
    let alone = Measured::from_samples(
        http_load::run(addr, Era::Stateless, args.callers, warmup, window, None).await?,
        window,
    );
    let rss_alone_kb = counts.max_rss_kb.load(Ordering::Relaxed);
    // The callers connect first (their keep-alive connections are theirs for the phase); the
    // attack starts a moment later and runs through the warm-up and the whole window.
    let attack = {
        let (counts, stop) = (counts.clone(), stop.clone());
        let (flooders, big, slow_count) = (args.flooders, args.big, args.slow);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut attackers = Vec::new();
            for _ in 0..flooders {
                attackers.push(tokio::spawn(flood(addr, counts.clone(), stop.clone())));
            }
            for _ in 0..big {
                attackers.push(tokio::spawn(big_calls(addr, counts.clone(), stop.clone())));
            }
            for _ in 0..slow_count {
                attackers.push(tokio::spawn(slow(addr, counts.clone(), stop.clone())));
            }
            attackers
        })
    };
    let loaded = Measured::from_samples(
        http_load::run(addr, Era::Stateless, args.callers, warmup, window, None).await?,
        window,
    );
    stop.store(true, Ordering::Relaxed);
    for attacker in attack.await.context("the attack task")? {
        attacker.abort();
    }
    let _ = sampler.await;
    let _ = child.kill().await;
    let _ = std::fs::remove_dir_all(&home);
    let counts = Arc::try_unwrap(counts).unwrap_or_default();
    Ok(Round {
        alone,
        loaded,
        rss_alone_kb,
        counts,
    })
}

fn render(args: &AbuseArgs, rounds: &[Round]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `baton-bench abuse --seconds {} --rounds {}` ({} callers; attackers: {} \
         flooding `initialize`, {} slow connections, {} sending maximum-size calls), each round \
         on a fresh server.\n",
        args.seconds, args.rounds, args.callers, args.flooders, args.slow, args.big
    );
    out.push_str(
        "| round | alone calls/s | alone p99 ms | attacked calls/s | attacked p99 ms | p99 ratio | RSS alone | RSS attacked | sessions / slow connects / big calls |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut ratios = Vec::new();
    for (index, round) in rounds.iter().enumerate() {
        let ratio = round.loaded.p99.as_secs_f64() / round.alone.p99.as_secs_f64().max(1e-9);
        ratios.push(ratio);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.0} | {} | {ratio:.2}× | {} MiB | {} MiB | {} / {} / {} |",
            index + 1,
            round.alone.calls_per_s,
            ms(round.alone.p99),
            round.loaded.calls_per_s,
            ms(round.loaded.p99),
            round.rss_alone_kb / 1024,
            round.counts.max_rss_kb.load(Ordering::Relaxed) / 1024,
            round.counts.sessions.load(Ordering::Relaxed),
            round.counts.slow_connects.load(Ordering::Relaxed),
            round.counts.big_calls.load(Ordering::Relaxed),
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
    let worst_rss = rounds
        .iter()
        .map(|r| r.counts.max_rss_kb.load(Ordering::Relaxed) / 1024)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "\nMedian p99 under attack / alone: **{median:.2}×**; highest RSS under attack: \
         **{worst_rss} MiB**.\n"
    );
    out
}

/// The server's resident memory, every 100 ms, as the maximum seen.
async fn sample_rss(pid: u32, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            counts.max_rss_kb.fetch_max(kb, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One HTTP/1.1 request on a fresh connection; the status line's code.
async fn request(addr: SocketAddr, head: &str, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let head = format!(
        "{head}Host: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, \
         text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(body).await.ok()?;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    std::str::from_utf8(answer.get(9..12)?).ok()?.parse().ok()
}

/// `initialize` after `initialize`: a new session each time, never used again.
async fn flood(addr: SocketAddr, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"flood","version":"1"}}}"#;
    while !stop.load(Ordering::Relaxed) {
        let head = "POST /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2025-11-25\r\n";
        if request(addr, head, body).await == Some(200) {
            counts.sessions.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A `tools/call` whose body is just under the message limit, back to back.
async fn big_calls(addr: SocketAddr, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let query = "x".repeat(4 * 1024 * 1024 - 400);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"knowledge_search","arguments":{{"query":"{query}"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    while !stop.load(Ordering::Relaxed) {
        let head = "POST /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: knowledge_search\r\n";
        if request(addr, head, body.as_bytes()).await.is_some() {
            counts.big_calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A header trickled one line a second, forever; reconnect when the server closes it.
async fn slow(addr: SocketAddr, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        counts.slow_connects.fetch_add(1, Ordering::Relaxed);
        if stream.write_all(b"POST /mcp HTTP/1.1\r\n").await.is_err() {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
    }
}
