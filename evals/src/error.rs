use std::path::PathBuf;

/// Why an eval could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A case file or folder could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A case file is not a valid case.
    #[error("case `{}`: {message}", path.display())]
    Case {
        /// The case file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// `Result` with [`EvalError`].
pub type Result<T, E = EvalError> = std::result::Result<T, E>;
