//! Without ONNX Runtime, `method: onnx` says why and everything classic still works. It shares
//! the binary (and under `cargo test` the process) with the tests that load the runtime: a
//! missing runtime or a path that does not exist is refused before the process-wide load, so
//! neither spoils nor depends on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use baton_kit::{Tool, ToolContext};
use baton_vision::{Onnx, OnnxConfig, SegmentArgs, VisionSegment};
use image::{Rgb, RgbImage};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn onnx_without_a_runtime_is_a_clear_error_and_classic_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disc.png");
    RgbImage::from_fn(400, 300, |x, y| {
        if (x as i32 - 200).pow(2) + (y as i32 - 150).pow(2) < 100 * 100 {
            Rgb([30, 60, 200])
        } else {
            Rgb([240, 240, 240])
        }
    })
    .save(&path)
    .unwrap();
    let call = |method: &str, onnx: Arc<Onnx>| {
        let args = serde_json::from_value::<SegmentArgs>(serde_json::json!({
            "path": path, "out": dir.path().join(format!("{method}.png")), "method": method
        }))
        .unwrap();
        async move {
            VisionSegment(onnx)
                .call(args, ToolContext::new(CancellationToken::new()))
                .await
        }
    };
    let none = Arc::new(Onnx::new(OnnxConfig::default()));
    let error = call("onnx", none.clone()).await.unwrap_err().to_string();
    assert!(
        error.starts_with("ONNX Runtime not available: no runtime configured: set ORT_DYLIB_PATH"),
        "{error}"
    );
    let missing = Arc::new(Onnx::new(OnnxConfig {
        runtime: Some(PathBuf::from("/nowhere/libonnxruntime.so.1.31.1")),
        model: Some(PathBuf::from("model.onnx")),
        normalize: None,
        ..OnnxConfig::default()
    }));
    let error = call("onnx", missing).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "ONNX Runtime not available: `/nowhere/libonnxruntime.so.1.31.1` does not exist"
    );
    let classic = call("classic", none).await.unwrap();
    assert!(
        (classic.coverage - std::f64::consts::PI * 1e4 / 1.2e5).abs() < 0.01,
        "{classic:?}"
    );
}
