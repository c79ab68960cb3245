use std::path::PathBuf;

/// Why ONNX Runtime or a model cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// No runtime library is configured.
    #[error(
        "ONNX Runtime not available: no runtime configured: set ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 (PyPI onnxruntime==1.31.1)"
    )]
    NoRuntime,
    /// The configured runtime library does not exist.
    #[error("ONNX Runtime not available: `{}` does not exist", .0.display())]
    RuntimeMissing(PathBuf),
    /// The runtime library did not load or start; the process keeps this answer.
    #[error("ONNX Runtime not available: {0}")]
    RuntimeFailed(String),
    /// A model could not be opened.
    #[error("{what} model `{}`: {source}", path.display())]
    Open {
        /// What the model is for (`segmentation`, `separation`…).
        what: String,
        /// The model file.
        path: PathBuf,
        /// The runtime's error.
        source: ort::Error,
    },
    /// A model has no input or no output.
    #[error("{what} model `{}` has no {side}", path.display())]
    NoOutlet {
        /// What the model is for.
        what: String,
        /// The model file.
        path: PathBuf,
        /// `input` or `output`.
        side: &'static str,
    },
    /// Running the model failed.
    #[error("the model failed: {0}")]
    Run(#[source] ort::Error),
    /// An earlier run panicked while holding the session.
    #[error("the model was poisoned by an earlier failure")]
    Poisoned,
}

/// `Result` with [`OnnxError`].
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;
