//! Helpers every crate's tests share, written once: git in temporary repositories, byte
//! mutation for property tests, skipping a test whose runtime or model the environment does not
//! provide, audit drafts and tampering with a stored audit log, and a real gate over a registry
//! for tests that need the call path without a transport.
//!
//! Test-only: a helper that cannot do its job panics, which is how a test reports it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers: a panic is the test's failure report"
)]

mod audit;
mod gate;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use audit::{audit_draft, tamper_audit};
pub use gate::GateFixture;

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
/// Runtime, a fetched model); `None` when it does not, with `SKIPPED <test>: …` written straight
/// to stderr, past the test harness's capture, so plain `cargo test` on a fresh checkout skips
/// `test` instead of failing. A path that is set but missing fails the test.
pub fn provided(name: &str, test: &str) -> Option<PathBuf> {
    let Some(path) = std::env::var_os(name).filter(|v| !v.is_empty()) else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {name} is not set; ./scripts/test.sh sets it (ONNX Runtime from the \
             onnxruntime==1.31.1 wheel, ISNet from npm)"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(path.exists(), "{name}={} does not exist", path.display());
    Some(path)
}
