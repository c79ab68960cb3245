//! `baton-bench console`: the reviewers' console over a store the size a busy team reaches
//! (100,000 audit records, 1,000 runs): how long its pages take, against a static asset served
//! by the same stack; and how soon a decision posted in the console wakes a run waiting in
//! another process, against the polling the runs used before (every 250 ms).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use baton_runs::{
    ApprovalDraft, AuditDraft, DecisionKind, DecisionRecord, OutcomeRecord, OutcomeStatus,
    Ownership, StoreApi as _, StoreHandle, now_millis,
};
use clap::Args;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::stats::{Measured, ms};

/// `baton-bench console`
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Audit records in the store.
    #[arg(long, default_value_t = 100_000)]
    pub audit: u64,
    /// Runs in the store (8 journal steps each).
    #[arg(long, default_value_t = 1_000)]
    pub runs: usize,
    /// Requests measured per page (after 5 unmeasured).
    #[arg(long, default_value_t = 50)]
    pub requests: usize,
    /// Decisions whose wake-up is measured, per waiting mechanism.
    #[arg(long, default_value_t = 30)]
    pub wakes: usize,
    /// Write the results into this Markdown file's `console` section.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// `baton-bench waiter` (started by `console`): wait for each approval id read from stdin,
/// through the store's owner like a `baton run` does, and say when it woke.
#[derive(Debug, Args)]
pub struct WaiterArgs {
    /// The store's data folder (owned by the `console` process).
    #[arg(long)]
    pub data: PathBuf,
    /// Poll every this many milliseconds instead of waiting on the change feed (how runs
    /// waited before).
    #[arg(long)]
    pub poll_ms: Option<u64>,
}

const TOKEN: &str = "bench-reviewer-token";

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The waiter process.
pub async fn waiter(args: WaiterArgs) -> anyhow::Result<()> {
    let store = StoreHandle::new(args.data, Ownership::Borrow);
    store.connect().await?;
    let approvals = baton_cli::agents::StoreApprovals(store.clone());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    while let Some(id) = lines.next_line().await? {
        out.write_all(format!("waiting {id}\n").as_bytes()).await?;
        out.flush().await?;
        match args.poll_ms {
            None => approvals.wait(&id).await,
            Some(every) => loop {
                let approval = store.approval(id.clone()).await?;
                if approval.state != baton_runs::ApprovalState::Pending {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(every)).await;
            },
        }
        out.write_all(format!("woke {id} {}\n", unix_nanos()).as_bytes())
            .await?;
        out.flush().await?;
    }
    Ok(())
}

fn draft(n: u64) -> AuditDraft {
    let principals = [
        "agent:builder",
        "agent:tester",
        "agent:reviewer",
        "codex",
        "alice",
    ];
    let tools = [
        "repo_write",
        "repo_read",
        "repo_exec",
        "vision_qa",
        "rx_validate",
    ];
    AuditDraft {
        time_ms: now_millis(),
        principal: principals[(n % 5) as usize].into(),
        tool: tools[(n / 5 % 5) as usize].into(),
        args_digest: format!("{n:064x}"),
        decision: DecisionRecord {
            kind: DecisionKind::Allow,
            reason: None,
            rule: "sandbox.workspace-write".into(),
        },
        approval_id: None,
        decided_by: None,
        outcome: OutcomeRecord {
            error_kind: None,
            message: None,
            status: if n.is_multiple_of(17) {
                OutcomeStatus::Error
            } else {
                OutcomeStatus::Ok
            },
        },
        duration_us: 1_000 + n % 5_000,
        sandbox: None,
    }
}

/// Fill the store: `audit` records (plus one of a principal seen nowhere else, first), `runs`
/// runs of 8 steps, 50 pending and 500 decided approvals.
async fn fill(store: &StoreHandle, audit: u64, runs: usize) -> anyhow::Result<String> {
    let mut rare = draft(0);
    rare.principal = "agent:rare".into();
    store.append_audit(rare).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..64u64 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut n = lane;
            while n < audit {
                store.append_audit(draft(n)).await?;
                n += 64;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let mut last_run = String::new();
    for n in 0..runs {
        let run = store
            .create_run(
                format!("goal {n}: add rate limiting to the gateway"),
                "manager".into(),
                json!({"repo": "/srv/repo"}),
                now_millis(),
            )
            .await?;
        for (step, kind) in [
            "model_call",
            "tool_call",
            "tool_result",
            "model_call",
            "tool_call",
            "approval_wait",
            "tool_result",
            "model_call",
        ]
        .iter()
        .enumerate()
        {
            let data = match *kind {
                "model_call" => {
                    json!({"key": format!("manager/turn-{step}/model"), "value": {"message": {"role": "assistant", "content": "Working on it.", "tool_calls": []}, "usage": {"prompt_tokens": 900, "completion_tokens": 120}}})
                }
                "tool_call" => {
                    json!({"key": format!("manager/turn-{step}/tool/c{step}/intent"), "value": {"tool": "repo_write", "args": {"path": "src/lib.rs", "content": "fn main() {}"}}})
                }
                "tool_result" => {
                    json!({"key": format!("manager/turn-{step}/tool/c{step}"), "value": {"ok": true, "content": "{\"bytes\":12}"}})
                }
                _ => {
                    json!({"key": format!("manager/turn-{step}/tool/c{step}/approval"), "value": "01NONE"})
                }
            };
            store
                .append_step(run.id.clone(), (*kind).into(), data, now_millis())
                .await?;
        }
        store
            .set_run_state(run.id.clone(), baton_runs::RunState::Done, now_millis())
            .await?;
        last_run = run.id;
    }
    for n in 0..550u64 {
        let approval = store
            .create_approval(approval_draft(n), now_millis())
            .await?;
        if n >= 50 {
            store
                .decide_approval(
                    approval.id,
                    "alice".into(),
                    baton_runs::Verdict::Approve,
                    None,
                    now_millis(),
                )
                .await?;
        }
    }
    Ok(last_run)
}

fn approval_draft(n: u64) -> ApprovalDraft {
    ApprovalDraft {
        requester: "agent:builder".into(),
        tool: "repo_exec".into(),
        args_digest: format!("{n:064x}"),
        args: json!({"repo": "/srv/repo", "argv": ["cargo", "test", "-p", format!("crate-{n}")]}),
        reason: "commands are reviewed".into(),
        rule: "rules.exec-needs-review".into(),
        ttl_ms: 3_600_000,
    }
}

/// A console served in this process over the store in `home`; its base URL.
async fn serve(
    home: &Path,
) -> anyhow::Result<(String, baton_cli::App, tokio_util::sync::DropGuard)> {
    std::fs::write(
        home.join("baton.toml"),
        format!(
            "data_dir = \"{}\"\n[[http.tokens]]\nprincipal = \"rev\"\nroles = [\"reviewer\"]\ntoken_sha256 = \"{}\"\n",
            home.join("data").display(),
            sha256_hex(TOKEN)
        ),
    )?;
    let config = baton_cli::Config::load(Some(&home.join("baton.toml")))?;
    let app = baton_cli::App::builder(config)
        .ownership(Ownership::Serve)
        .build()?;
    app.store().connect().await?;
    let served = app.served.clone();
    let handler = baton_cli::BatonMcp::new(served.clone(), None)?;
    let console =
        baton_console::Console::new(served.clone())?.context("console is on by default")?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (ready, bound) = tokio::sync::oneshot::channel();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let settings = served.settings.clone();
        let served = baton_mcp::transport::http::serve(
            handler,
            &settings,
            "127.0.0.1:0"
                .parse()
                .unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            token,
            |bound| Some(console.router(bound)),
            |addr| {
                let _ = ready.send(addr);
            },
        )
        .await;
        if let Err(error) = served {
            tracing::error!(%error, "console server stopped");
        }
    });
    let addr = bound.await.context("the console did not start")?;
    Ok((format!("http://{addr}"), app, shutdown.drop_guard()))
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sign in as the bench's reviewer: the session cookie and its CSRF token.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<(String, String)> {
    let form = http.get(format!("{base}/console/signin")).send().await?;
    let nonce = cookie(&form, "baton_signin").context("no sign-in nonce")?;
    let signed = http
        .post(format!("{base}/console/signin"))
        .header("cookie", format!("baton_signin={nonce}"))
        .form(&[("token", TOKEN), ("nonce", nonce.as_str())])
        .send()
        .await?;
    let session = format!(
        "baton_session={}",
        cookie(&signed, "baton_session").context("not signed in")?
    );
    let page = http
        .get(format!("{base}/console/audit"))
        .header("cookie", &session)
        .send()
        .await?
        .text()
        .await?;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .context("no CSRF token on the page")?
        .to_owned();
    Ok((session, csrf))
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// `requests` GETs of `path` (after 5 unmeasured): their latencies.
async fn time_page(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    path: &str,
    requests: usize,
) -> anyhow::Result<(Measured, usize)> {
    let mut samples = Vec::with_capacity(requests);
    let mut size = 0;
    for n in 0..requests + 5 {
        let started = Instant::now();
        let response = http
            .get(format!("{base}{path}"))
            .header("cookie", session)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{path}: {}", response.status());
        }
        size = response.bytes().await?.len();
        if n >= 5 {
            samples.push(started.elapsed());
        }
    }
    let window = samples.iter().sum();
    Ok((Measured::from_samples(samples, window), size))
}

/// Decide `wakes` approvals in the console while a waiter process (polling every `poll_ms`,
/// or on the change feed) waits for each: from the POST to the wake-up.
async fn time_wakes(
    store: &StoreHandle,
    http: &reqwest::Client,
    base: &str,
    (session, csrf): (&str, &str),
    poll_ms: Option<u64>,
    wakes: usize,
) -> anyhow::Result<Measured> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command.arg("waiter").arg("--data").arg(store.data_dir());
    if let Some(every) = poll_ms {
        command.arg("--poll-ms").arg(every.to_string());
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child.stdin.take().context("waiter stdin")?;
    let mut lines = BufReader::new(child.stdout.take().context("waiter stdout")?).lines();
    let mut samples = Vec::new();
    for n in 0..wakes {
        let approval = store
            .create_approval(approval_draft(1_000_000 + n as u64), now_millis())
            .await?;
        stdin
            .write_all(format!("{}\n", approval.id).as_bytes())
            .await?;
        let line = lines.next_line().await?.context("waiter ended")?;
        if !line.starts_with("waiting") {
            bail!("waiter said {line}");
        }
        // Let the waiter settle into its wait (or into a random phase of its polling).
        tokio::time::sleep(Duration::from_millis(60 + (n as u64 * 37) % 250)).await;
        let posted = unix_nanos();
        let response = http
            .post(format!("{base}/console/approvals/{}", approval.id))
            .header("cookie", session)
            .form(&[("csrf", csrf), ("decision", "approve")])
            .send()
            .await?;
        if response.status() != 303 {
            bail!("deciding answered {}", response.status());
        }
        let line = lines.next_line().await?.context("waiter ended")?;
        let woke: u128 = line
            .rsplit(' ')
            .next()
            .and_then(|t| t.parse().ok())
            .context("waiter's wake line")?;
        samples.push(Duration::from_nanos(woke.saturating_sub(posted) as u64));
    }
    drop(stdin);
    let _ = child.wait().await;
    let window = samples.iter().sum();
    Ok(Measured::from_samples(samples, window))
}

/// `baton-bench console`.
pub async fn run(args: ConsoleArgs) -> anyhow::Result<()> {
    let home = tempfile_dir()?;
    let (base, app, _stop) = serve(&home).await?;
    let store = app.store().clone();
    let filling = Instant::now();
    let run_id = fill(&store, args.audit, args.runs).await?;
    let newest = store
        .query_audit(baton_runs::AuditQuery {
            limit: 1,
            scan: 1,
            ..Default::default()
        })
        .await?
        .newest;
    let runs = store.runs().await?.len();
    if newest != args.audit + 1 || runs != args.runs {
        bail!("the store holds {newest} audit records and {runs} runs, not what was asked");
    }
    tracing::info!(
        seconds = filling.elapsed().as_secs_f64(),
        newest,
        runs,
        "store filled"
    );
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (session, csrf) = sign_in(&http, &base).await?;
    // The chain's verification runs in the background; let it finish before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pages = [
        (
            "static asset (reference)",
            "/console/assets/console.css".to_owned(),
        ),
        (
            "approvals (50 pending, 500 decided)",
            "/console/approvals".to_owned(),
        ),
        ("runs (first page of 1,000)", "/console/runs".to_owned()),
        ("one run's timeline", format!("/console/runs/{run_id}")),
        ("audit, newest 100", "/console/audit".to_owned()),
        (
            "audit, filter matching nothing in 20,000",
            "/console/audit?principal=agent:rare".to_owned(),
        ),
    ];
    let mut rows = Vec::new();
    for (name, path) in &pages {
        let (measured, size) = time_page(&http, &base, &session, path, args.requests).await?;
        rows.push((*name, measured, size));
    }
    let feed = time_wakes(&store, &http, &base, (&session, &csrf), None, args.wakes).await?;
    let polled = time_wakes(
        &store,
        &http,
        &base,
        (&session, &csrf),
        Some(250),
        args.wakes,
    )
    .await?;
    let table = report(&args, &rows, &feed, &polled);
    std::io::Write::write_all(&mut std::io::stdout().lock(), table.as_bytes())?;
    if let Some(path) = &args.write {
        crate::write_section(path, "console", &table)?;
    }
    drop(app);
    let _ = std::fs::remove_dir_all(&home);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("baton-bench-console-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn report(
    args: &ConsoleArgs,
    rows: &[(&str, Measured, usize)],
    feed: &Measured,
    polled: &Measured,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Measured by `baton-bench console --audit {} --runs {} --requests {} --wakes {}` \
         (release build; client and server on this machine's 2 cores; latency seen by the client over loopback HTTP).\n",
        args.audit, args.runs, args.requests, args.wakes
    );
    let reference = rows.first().map_or(Duration::ZERO, |r| r.1.p50);
    let _ = writeln!(
        out,
        "| page | p50 ms | p99 ms | p50 / static asset | bytes |\n|---|---:|---:|---:|---:|"
    );
    for (name, measured, size) in rows {
        let ratio = measured.p50.as_secs_f64() / reference.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {ratio:.1}× | {size} |",
            ms(measured.p50),
            ms(measured.p99)
        );
    }
    let slowest = rows.iter().map(|r| r.1.p99).max().unwrap_or_default();
    let _ = writeln!(
        out,
        "\nSlowest page p99: **{} ms** (target: under 50 ms).\n",
        ms(slowest)
    );
    let _ = writeln!(
        out,
        "| a run waiting in another process, woken by | p50 ms | p99 ms |\n|---|---:|---:|\n\
         | the store's change feed (what `baton run` does now) | {} | {} |\n\
         | polling every 250 ms (how runs waited before; reference) | {} | {} |",
        ms(feed.p50),
        ms(feed.p99),
        ms(polled.p50),
        ms(polled.p99)
    );
    let _ = writeln!(
        out,
        "\nFrom the console's POST to the waiting process's wake-up, p99: **{} ms** (target: under 100 ms); \
         {:.0}× sooner than polling at the median.\n",
        ms(feed.p99),
        polled.p50.as_secs_f64() / feed.p50.as_secs_f64().max(1e-9)
    );
    out
}
