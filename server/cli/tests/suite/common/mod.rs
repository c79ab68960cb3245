//! Helpers shared by the server's integration tests: a temporary Baton home with a known
//! knowledge pack and config, and the real `baton` binary started as a child process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Every tool a default Baton serves, in registration order (each new pack adds its tools
/// here once, for every test that lists them).
pub const BATON_TOOLS: &[&str] = &[
    "baton_info",
    "knowledge_search",
    "approvals_list",
    "approvals_decide",
    "sop_status",
    "sop_scaffold_check",
    "sop_prd_create",
    "sop_tasks_generate",
    "sop_task_get",
    "sop_task_next",
    "sop_task_claim",
    "sop_task_update",
    "sop_spec_create",
    "sop_plan_create",
    "sop_advance",
    "sop_spec_guard",
    "sop_mirror",
    "repo_diff",
    "repo_read",
    "repo_write",
    "repo_exec",
    "repo_worktree",
    "patterns_harvest",
    "dsp_analyze",
    "dsp_spectrum",
    "dsp_filter",
    "dsp_normalize",
    "dsp_response",
    "dsp_separate",
    "dsp_latency",
    "rx_validate",
    "rx_validate_batch",
    "rx_classify_product",
    "rx_rules",
    "vision_qa",
    "vision_segment",
    "vision_tag",
    "vision_process",
    "vision_batch",
];

/// A temporary folder with `baton.toml`, `knowledge/docs/*.md` and a data dir.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A home whose `baton.toml` holds `extra` after the knowledge root line.
    pub fn new(extra: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("knowledge/docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(
            docs.join("gate.md"),
            "# The gate\n\nEvery tool call passes one gate.\n\n## Approvals\n\n\
             An elevated call waits for a reviewer's approval before it runs.\n\n\
             ## Audit\n\nEach call leaves a hash-chained audit record.\n",
        )
        .unwrap();
        std::fs::write(
            docs.join("packs.md"),
            "# Tool packs\n\nDSP, vision, prescription rules and repository orchestration.\n",
        )
        .unwrap();
        // On the PostgreSQL pass, every home's store is a database of its own.
        let store = match extra.contains("[store]") {
            true => None,
            false => baton_test_support::store_url(),
        }
        .map(|url| format!("\n[store]\nurl = \"{url}\"\n"))
        .unwrap_or_default();
        std::fs::write(
            dir.path().join("baton.toml"),
            format!("[knowledge]\nroot = \"knowledge\"\n{extra}\n{store}"),
        )
        .unwrap();
        Home { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("baton.toml")
    }

    /// `baton ARGS` with this home's config, data dir and working directory.
    pub fn baton(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
        command
            .args(args)
            .env("BATON_CONFIG", self.config())
            .env("BATON_HOME", self.path().join(".baton"))
            .env("BATON_LOG", "info")
            .current_dir(self.path())
            .kill_on_drop(true);
        command
    }

    /// The same as a blocking `std::process::Command` (for CLI tests).
    pub fn baton_std(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_baton"));
        command
            .args(args)
            .env("BATON_CONFIG", self.config())
            .env("BATON_HOME", self.path().join(".baton"))
            .env("BATON_LOG", "warn")
            .env_remove("NO_COLOR")
            .current_dir(self.path());
        command
    }
}

/// A `baton serve --http` child process.
pub struct HttpServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl HttpServer {
    pub async fn start(home: &Home, extra: &[&str]) -> HttpServer {
        HttpServer::start_with_env(home, extra, &[]).await
    }

    /// Start with extra environment variables (tokens for `token_env`).
    pub async fn start_with_env(home: &Home, extra: &[&str], env: &[(&str, &str)]) -> HttpServer {
        let mut args = vec!["serve", "--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut command = home.baton(&args);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim_end_matches("/mcp").trim().to_owned());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("server did not start in 30 s")
            .expect("server exited before listening");
        HttpServer {
            child,
            addr: addr.parse().unwrap(),
            stderr: log,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// `s` with every RFC 3339 UTC timestamp (`2026-11-22T05:04:06Z`, `…06.123Z`) replaced by
/// `[TIME]`.
pub fn mask_timestamps(s: &str) -> String {
    let b = s.as_bytes();
    let shape = |i: usize| -> Option<usize> {
        let digits = |from: usize, to: usize| {
            b.get(from..to)
                .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        };
        let at = |k: usize, c: u8| b.get(i + k) == Some(&c);
        if !(digits(i, i + 4)
            && at(4, b'-')
            && digits(i + 5, i + 7)
            && at(7, b'-')
            && digits(i + 8, i + 10)
            && at(10, b'T')
            && digits(i + 11, i + 13)
            && at(13, b':')
            && digits(i + 14, i + 16)
            && at(16, b':')
            && digits(i + 17, i + 19))
        {
            return None;
        }
        let mut end = i + 19;
        if b.get(end) == Some(&b'.') {
            end += 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
        }
        (b.get(end) == Some(&b'Z')).then_some(end + 1)
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        match shape(i) {
            Some(end) => {
                out.push_str("[TIME]");
                i = end;
            }
            None => {
                let c = s[i..].chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

/// `s` with the store's location — the sled store in the home's data folder, or a PostgreSQL
/// database on that pass — replaced by `[STORE]`, so one snapshot holds for both backends.
fn mask_store(s: &str) -> String {
    let mut out = s.replace("[HOME]/.baton/store", "[STORE]");
    while let Some(start) = out.find("postgres://") {
        let end = out[start..]
            .find(['"', '\\', ' '])
            .map_or(out.len(), |n| start + n);
        out.replace_range(start..end, "[STORE]");
    }
    out
}

/// Replace values that differ from machine to machine before snapshotting.
pub fn redact(mut value: serde_json::Value, home: &Home) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value, prefix: &str) {
        match value {
            serde_json::Value::String(s) => {
                *s = mask_store(&mask_timestamps(&s.replace(prefix, "[HOME]")));
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, prefix)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(v, prefix)),
            _ => {}
        }
    }
    let prefix = home.path().display().to_string();
    walk(&mut value, &prefix);
    value
}

/// A 2026-07-28 (stateless, `server/discover`) client over `transport`.
pub async fn modern_client<T, E, A>(
    transport: T,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()>
where
    T: rmcp::transport::IntoTransport<rmcp::RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    use rmcp::ClientServiceExt;
    ().serve_with_lifecycle(
        transport,
        rmcp::ClientLifecycleMode::Discover {
            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .unwrap()
}

pub use baton_test_support::git;
