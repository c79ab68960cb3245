//! The whole ONNX path — load the runtime the test setup installed (`ORT_DYLIB_PATH`, from the
//! PyPI `onnxruntime==1.31.1` wheel), load a model, pre-process, run, post-process — on the
//! tiny model `fixtures/models/make.py` writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_kit::{Tool, ToolContext};
use baton_vision::{Onnx, OnnxConfig, SegmentArgs, VisionSegment};
use image::{Rgb, RgbImage};
use tokio_util::sync::CancellationToken;

/// The runtime the test command installs (`ORT_DYLIB_PATH`, from the PyPI
/// `onnxruntime==1.31.1` wheel), or `None` when it provides none: the test is skipped.
fn runtime(test: &str) -> Option<PathBuf> {
    baton_test_support::provided("ORT_DYLIB_PATH", test)
}

fn model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/redness.onnx")
}

/// A red disc on grey, and its true mask.
fn disc() -> (RgbImage, Vec<bool>) {
    let (w, h) = (900u32, 700u32);
    let inside = |x: u32, y: u32| {
        (x as f64 - 450.0).powi(2) + (y as f64 - 350.0).powi(2) <= 220.0f64.powi(2)
    };
    let image = RgbImage::from_fn(w, h, |x, y| {
        if inside(x, y) {
            Rgb([210, 35, 40])
        } else {
            Rgb([225, 225, 228])
        }
    });
    let truth = (0..h)
        .flat_map(|y| (0..w).map(move |x| inside(x, y)))
        .collect();
    (image, truth)
}

#[tokio::test]
async fn a_model_segments_through_onnx_runtime() {
    let Some(runtime) = runtime("a_model_segments_through_onnx_runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (image, truth) = disc();
    let path = dir.path().join("disc.png");
    image.save(&path).unwrap();
    let onnx = Arc::new(Onnx::new(OnnxConfig {
        runtime: Some(runtime),
        model: Some(model()),
        normalize: None,
        ..OnnxConfig::default()
    }));
    let out = dir.path().join("cut.png");
    let result = VisionSegment(onnx.clone())
        .call(
            serde_json::from_value::<SegmentArgs>(serde_json::json!({
                "path": path, "out": out, "method": "onnx", "background": "white"
            }))
            .unwrap(),
            ToolContext::new(CancellationToken::new()),
        )
        .await
        .unwrap();
    let mask = image::open(&result.mask).unwrap().into_luma8();
    let (mut both, mut either) = (0u64, 0u64);
    for (m, t) in mask.as_raw().iter().zip(&truth) {
        let ours = *m >= 128;
        both += u64::from(ours && *t);
        either += u64::from(ours || *t);
    }
    let iou = both as f64 / either as f64;
    assert!(iou >= 0.97, "IoU {iou}");
    let bbox = result.bbox.unwrap();
    assert!(
        (bbox.x as i64 - 230).abs() <= 3 && (bbox.width as i64 - 441).abs() <= 6,
        "{bbox:?}"
    );
    // The session is loaded once and reused.
    assert!(Arc::ptr_eq(
        &onnx.segmenter().unwrap(),
        &onnx.segmenter().unwrap()
    ));
}

#[test]
fn a_missing_model_is_named() {
    let Some(runtime) = runtime("a_missing_model_is_named") else {
        return;
    };
    let error = Onnx::new(OnnxConfig {
        runtime: Some(runtime),
        model: None,
        normalize: None,
        ..OnnxConfig::default()
    })
    .segmenter()
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "no segmentation model configured: set BATON_SEGMENTATION_MODEL to an ISNet or U²-Net .onnx file"
    );
}

#[tokio::test]
async fn a_classifier_names_the_product_category() {
    let Some(runtime) = runtime("a_classifier_names_the_product_category") else {
        return;
    };
    use baton_vision::{TagArgs, VisionTag};
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models");
    let onnx = Arc::new(Onnx::new(OnnxConfig {
        runtime: Some(runtime),
        classifier: Some(models.join("colours.onnx")),
        classifier_labels: Some(models.join("colours.labels")),
        ..OnnxConfig::default()
    }));
    let dir = tempfile::tempdir().unwrap();
    for (name, colour) in [
        ("red", Rgb([210, 35, 40])),
        ("blue", Rgb([30, 60, 200])),
        ("green", Rgb([40, 170, 60])),
    ] {
        let image = RgbImage::from_fn(600, 500, |x, y| {
            if (x as i32 - 300).pow(2) + (y as i32 - 250).pow(2) < 170 * 170 {
                colour
            } else {
                Rgb([240, 240, 240])
            }
        });
        let path = dir.path().join(format!("{name}.png"));
        image.save(&path).unwrap();
        let tags = VisionTag(onnx.clone())
            .call(
                TagArgs {
                    path: path.display().to_string(),
                },
                ToolContext::new(CancellationToken::new()),
            )
            .await
            .unwrap();
        let category = tags.category.unwrap();
        assert_eq!(category.label, name);
        assert!(category.score > 0.8, "{category:?}");
    }
    // Without a classifier there is no category.
    let path = dir.path().join("red.png").display().to_string();
    let plain = VisionTag(Arc::default())
        .call(TagArgs { path }, ToolContext::new(CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(plain.category, None);
}
