use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunsError {
    /// Another process holds the store (sled allows one at a time).
    #[error("the store at `{}` is in use by another process", .0.display())]
    Locked(PathBuf),
    /// The database failed.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored value does not decode (a bug, or an edited database).
    #[error("store: stored {what} does not decode: {detail}")]
    Corrupt {
        /// Which kind of value.
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// A value could not be encoded.
    #[error("store: cannot encode {what}: {detail}")]
    Encode {
        /// Which kind of value.
        what: &'static str,
        /// The encoder's message.
        detail: String,
    },
    /// A file of the store could not be read or written.
    #[error("store: `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No record with this id (or id prefix).
    #[error("no {what} `{id}`")]
    NotFound {
        /// `approval`, `run`, `artifact`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// An id prefix matches several records.
    #[error("`{prefix}` matches {count} {what}s; give more characters")]
    Ambiguous {
        /// `approval`, `run`.
        what: &'static str,
        /// The prefix.
        prefix: String,
        /// How many match.
        count: usize,
    },
    /// An approval cannot make this transition.
    #[error("approval `{id}`: {reason}")]
    Approval {
        /// The approval.
        id: String,
        /// Why not, for the person who tried.
        reason: String,
    },
    /// The audit writer has stopped (the store was closed).
    #[error("the audit log is closed")]
    Closed,
}

/// `Result` with [`RunsError`].
pub type Result<T, E = RunsError> = std::result::Result<T, E>;

impl RunsError {
    /// A short machine-readable kind, stable across processes (`not_found`, `approval`…).
    pub fn kind(&self) -> &'static str {
        match self {
            RunsError::Locked(_) => "locked",
            RunsError::Sled(_) | RunsError::Io { .. } => "storage",
            RunsError::Corrupt { .. } | RunsError::Encode { .. } => "corrupt",
            RunsError::NotFound { .. } => "not_found",
            RunsError::Ambiguous { .. } => "ambiguous",
            RunsError::Approval { .. } => "approval",
            RunsError::Closed => "closed",
        }
    }
}

pub(crate) fn corrupt(what: &'static str, error: impl std::fmt::Display) -> RunsError {
    RunsError::Corrupt {
        what,
        detail: error.to_string(),
    }
}

pub(crate) fn encode(what: &'static str, error: impl std::fmt::Display) -> RunsError {
    RunsError::Encode {
        what,
        detail: error.to_string(),
    }
}
