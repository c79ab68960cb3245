//! `dsp_separate` with `method: onnx`: the tiny mask model `fixtures/models/make.py` writes
//! (bins below 1 kHz to `low`, the rest to `high`) run through `baton-onnx`'s ONNX Runtime
//! loader, against librosa applying the same masks (`fixtures/dsp/make.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_dsp::{DspSeparate, SeparateArgs, SeparationConfig, Separator, read_wav};
use baton_kit::{Tool, ToolContext};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The runtime the test command installs (`ORT_DYLIB_PATH`, from the PyPI
/// `onnxruntime==1.31.1` wheel), or `None` when it provides none: the test is skipped.
fn runtime(test: &str) -> Option<PathBuf> {
    baton_test_support::provided("ORT_DYLIB_PATH", test)
}

fn separator(runtime: &Path, stems: &[&str]) -> Arc<Separator> {
    Arc::new(Separator::new(SeparationConfig {
        runtime: Some(runtime.to_owned()),
        model: Some(fixtures().join("models/split.onnx")),
        stems: stems.iter().map(|s| (*s).to_owned()).collect(),
    }))
}

fn args(out: &Path) -> SeparateArgs {
    serde_json::from_value(json!({
        "path": fixtures().join("dsp/audio/music-48k-mono-16.wav"),
        "out_dir": out,
        "method": "onnx"
    }))
    .unwrap()
}

#[tokio::test]
async fn a_mask_model_splits_like_librosa_and_the_stems_add_up() {
    let Some(runtime) = runtime("a_mask_model_splits_like_librosa_and_the_stems_add_up") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(CancellationToken::new());
    let result = DspSeparate(separator(&runtime, &["low", "high"]))
        .call(args(out.path()), ctx)
        .await
        .unwrap();
    assert!(
        result.reconstruction_error_db.unwrap() < -60.0,
        "{result:?}"
    );
    let names: Vec<&str> = result.stems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["low", "high"]);
    let mut worst = 0.0f32;
    for stem in &result.stems {
        let ours = read_wav(Path::new(&stem.path)).unwrap();
        let reference = read_wav(&fixtures().join(format!(
            "dsp/audio/music-48k-mono-16.split.{}.wav",
            stem.name
        )))
        .unwrap();
        assert_eq!(ours.frames(), reference.frames(), "{}", stem.name);
        let difference = ours.channels[0]
            .iter()
            .zip(&reference.channels[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!(
            "{}: share {:.3}, largest difference from librosa {difference:.2e}",
            stem.name, stem.share
        );
        worst = worst.max(difference);
    }
    assert!(worst < 1e-4, "largest difference {worst}");
    // The chords sit at 220–440 Hz: most of the energy is in the low stem.
    assert!(result.stems[0].share > 0.5, "{result:?}");
}

#[tokio::test]
async fn a_model_with_other_stem_names_or_a_bad_file_is_named() {
    let Some(runtime) = runtime("a_model_with_other_stem_names_or_a_bad_file_is_named") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let error = DspSeparate(separator(&runtime, &["vocals", "drums", "bass"]))
        .call(args(out.path()), ToolContext::new(CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the model returns 2 stems but 3 are named"),
        "{error}"
    );

    let not_a_model = out.path().join("model.onnx");
    std::fs::write(&not_a_model, b"not a protobuf").unwrap();
    let broken = Arc::new(Separator::new(SeparationConfig {
        runtime: Some(runtime.clone()),
        model: Some(not_a_model.clone()),
        stems: Vec::new(),
    }));
    let error = DspSeparate(broken)
        .call(args(out.path()), ToolContext::new(CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("separation model")
            && error
                .to_string()
                .contains(&not_a_model.display().to_string()),
        "{error}"
    );
}
