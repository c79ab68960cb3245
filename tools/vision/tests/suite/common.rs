//! What the vision tests share.

use std::io::Write as _;
use std::path::PathBuf;

use image::{GrayImage, RgbImage};

/// Intersection over union of a soft mask (≥ 128 is product) and a true mask drawn as an
/// image (white is product).
pub fn iou(mask: &GrayImage, truth: &RgbImage) -> f64 {
    let (mut both, mut either) = (0u64, 0u64);
    for (m, t) in mask.as_raw().iter().zip(truth.as_raw().chunks_exact(3)) {
        let (a, b) = (*m >= 128, t[0] >= 128);
        both += u64::from(a && b);
        either += u64::from(a || b);
    }
    both as f64 / either.max(1) as f64
}

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
