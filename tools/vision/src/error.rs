/// Why an image operation could not be done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VisionError {
    /// The file is not an image Baton can read, or claims more than Baton will decode.
    #[error("invalid input `{path}`: {message}")]
    InvalidInput {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A parameter is out of range.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter, e.g. `background`.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The QA thresholds file does not parse.
    #[error("QA thresholds `{file}`: {message}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong, with the TOML path.
        message: String,
    },
    /// The sandbox refused an output path (outside the writable roots, through a symlink…).
    #[error(transparent)]
    Confined(#[from] baton_kit::ConfineError),
    /// A file could not be read, written or encoded.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// `read`, `write`, `create`, `encode`.
        action: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// ONNX Runtime cannot be loaded, or a model cannot be opened or run.
    #[error(transparent)]
    Onnx(#[from] baton_onnx::OnnxError),
    /// The configured model is missing or does not fit what Baton feeds it.
    #[error("{0}")]
    Model(String),
    /// The caller cancelled the work.
    #[error("cancelled")]
    Cancelled,
}

/// `Result` with [`VisionError`].
pub type Result<T, E = VisionError> = std::result::Result<T, E>;

impl From<VisionError> for baton_kit::ToolError {
    fn from(error: VisionError) -> baton_kit::ToolError {
        match error {
            VisionError::InvalidParameter { name, message } => {
                baton_kit::ToolError::invalid_args(name, message)
            }
            VisionError::Cancelled => baton_kit::ToolError::Cancelled,
            VisionError::Confined(error) => error.into(),
            VisionError::InvalidInput { .. }
            | VisionError::Config { .. }
            | VisionError::Io { .. }
            | VisionError::Onnx(_)
            | VisionError::Model(_) => baton_kit::ToolError::failed(error.to_string()),
        }
    }
}
