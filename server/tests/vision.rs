//! The vision pack's ONNX settings come from `[vision]` in baton.toml, the environment
//! overriding them; a bad setting is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Home;
use pretty_assertions::assert_eq;

#[tokio::test]
async fn onnx_paths_come_from_the_config_and_are_named_when_wrong() {
    let home = Home::new(
        "[vision]\nonnx_runtime = \"/nowhere/libonnxruntime.so.1.31.1\"\nsegmentation_model = \"isnet.onnx\"\n",
    );
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\".\"]\n",
    )
    .unwrap();
    image::RgbImage::from_pixel(64, 48, image::Rgb([200, 30, 30]))
        .save(home.path().join("red.png"))
        .unwrap();
    let args = serde_json::json!({
        "path": home.path().join("red.png"),
        "out": home.path().join("cut.png"),
        "method": "onnx"
    });
    let output = home
        .baton(&[
            "tools",
            "call",
            "vision_segment",
            "--args",
            &args.to_string(),
        ])
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("BATON_SEGMENTATION_MODEL")
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "ONNX Runtime not available: `/nowhere/libonnxruntime.so.1.31.1` does not exist"
        ),
        "{stderr}"
    );

    let output = home
        .baton(&["tools", "list"])
        .env("BATON_SEGMENTATION_NORMALIZE", "imagenette")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BATON_SEGMENTATION_NORMALIZE")
            && stderr.contains("\"imagenette\" is not `isnet` or `imagenet`"),
        "{stderr}"
    );
}
