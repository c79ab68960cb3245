/// Why an audio operation could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DspError {
    /// The file is not audio Baton can read, or its header promises something it cannot be.
    #[error("invalid input `{path}`: {message}")]
    InvalidInput {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A parameter is out of range (a filter above Nyquist, an FFT size that is not a power of
    /// two…).
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter's path in the call, e.g. `chain[2].freq_hz`.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// `read`, `write`, `create`.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The sandbox refused an output path (outside the writable roots, through a symlink…).
    #[error(transparent)]
    Confined(#[from] baton_kit::ConfineError),
    /// The separation model is missing or returned what it should not.
    #[error("separation model: {0}")]
    Model(String),
    /// ONNX Runtime or the separation model would not load or run.
    #[error("separation model: {0}")]
    Onnx(#[from] baton_onnx::OnnxError),
    /// The caller cancelled the work.
    #[error("cancelled")]
    Cancelled,
}

impl DspError {
    /// A parameter error at `name`.
    pub fn parameter(name: impl Into<String>, message: impl Into<String>) -> DspError {
        DspError::InvalidParameter {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// `Result` with [`DspError`].
pub type Result<T, E = DspError> = std::result::Result<T, E>;

impl From<DspError> for baton_kit::ToolError {
    fn from(error: DspError) -> baton_kit::ToolError {
        match error {
            DspError::InvalidParameter { name, message } => {
                baton_kit::ToolError::invalid_args(name, message)
            }
            DspError::Cancelled => baton_kit::ToolError::Cancelled,
            DspError::Confined(error) => error.into(),
            DspError::InvalidInput { .. }
            | DspError::Io { .. }
            | DspError::Model(_)
            | DspError::Onnx(_) => baton_kit::ToolError::failed(error.to_string()),
        }
    }
}
