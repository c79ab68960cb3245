//! Loading ONNX Runtime and running a model with one tensor in and one out: the tiny mask model
//! `fixtures/models/make.py` writes (`split.onnx`: `[1, bins, frames]` in, two masks out).

use std::path::{Path, PathBuf};

use baton_onnx::{OnnxError, TensorModel};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models")
}

#[test]
fn without_a_runtime_a_model_says_why() {
    let error = TensorModel::open(None, &models().join("split.onnx"), "separation").unwrap_err();
    assert!(matches!(error, OnnxError::NoRuntime), "{error:?}");
    assert_eq!(
        error.to_string(),
        "ONNX Runtime not available: no runtime configured: set ORT_DYLIB_PATH to \
         libonnxruntime.so.1.31.1 (PyPI onnxruntime==1.31.1)"
    );
    // A path that does not exist is refused before the process-wide load, whatever else
    // this process has loaded.
    let nowhere = Path::new("/nowhere/libonnxruntime.so.1.31.1");
    let error =
        TensorModel::open(Some(nowhere), &models().join("split.onnx"), "separation").unwrap_err();
    assert_eq!(
        error.to_string(),
        "ONNX Runtime not available: `/nowhere/libonnxruntime.so.1.31.1` does not exist"
    );
}

#[test]
fn a_model_runs_on_the_runtime_and_a_bad_file_is_named() {
    let Some(runtime) = baton_test_support::provided(
        "ORT_DYLIB_PATH",
        "a_model_runs_on_the_runtime_and_a_bad_file_is_named",
    ) else {
        return;
    };
    let model =
        TensorModel::open(Some(&runtime), &models().join("split.onnx"), "separation").unwrap();
    let shape = model.input_shape().unwrap();
    assert_eq!(shape.len(), 3, "{shape:?}");
    let bins = usize::try_from(shape[1]).unwrap_or(1025);
    let frames = 4;
    let (out, masks) = model
        .run(&[1, bins, frames], vec![1.0; bins * frames])
        .unwrap();
    assert_eq!(out, [1, 2, bins as i64, frames as i64]);
    // The two masks split every bin between them.
    for i in 0..bins * frames {
        assert!((masks[i] + masks[bins * frames + i] - 1.0).abs() < 1e-6);
    }

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("model.onnx");
    std::fs::write(&broken, b"not a protobuf").unwrap();
    let error = TensorModel::open(Some(&runtime), &broken, "separation").unwrap_err();
    assert!(matches!(error, OnnxError::Open { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("separation model `{}`: ", broken.display())),
        "{error}"
    );
}
