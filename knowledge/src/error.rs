use std::path::PathBuf;

/// Why a knowledge root could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KnowledgeError {
    /// The root folder does not exist or is not a folder.
    #[error("knowledge root `{}` is not a folder", .0.display())]
    NoRoot(PathBuf),
    /// A file or folder could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A document is not UTF-8 text.
    #[error("`{}` is not UTF-8 text", .0.display())]
    NotUtf8(PathBuf),
    /// A document is larger than [`crate::MAX_DOCUMENT_BYTES`].
    #[error("`{}` is {size} bytes; documents are limited to {limit} bytes", path.display())]
    TooLarge {
        /// The document.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file watcher could not start.
    #[error("cannot watch `{}`: {message}", path.display())]
    Watch {
        /// The file or folder.
        path: PathBuf,
        /// The watcher's error.
        message: String,
    },
}

/// `Result` with [`KnowledgeError`].
pub type Result<T, E = KnowledgeError> = std::result::Result<T, E>;
