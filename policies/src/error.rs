use std::path::PathBuf;

/// Why a policy file could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy `{}`: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// The file is not valid TOML for a policy.
    #[error("invalid policy `{}`: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Line, column, key and what is wrong.
        message: String,
    },
    /// A value parses but cannot be used.
    #[error("invalid policy `{}`: {key}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file watcher could not start.
    #[error("cannot watch policy `{}`: {message}", path.display())]
    Watch {
        /// The file.
        path: PathBuf,
        /// The watcher's error.
        message: String,
    },
}

/// `Result` with [`PolicyError`].
pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
