//! What the tests share.

use std::io::Write as _;
use std::path::PathBuf;

/// The file the environment variable `name` names, when the test command provides it; `None`
/// (the reason written straight to stderr, past the test harness's capture) when it does not,
/// so plain `cargo test` on a fresh checkout skips `test` instead of failing.
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
