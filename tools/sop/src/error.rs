use std::path::PathBuf;

use baton_kit::ToolError;

/// Why an SOP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SopError {
    /// A path argument points outside the repository, into `.git`, or through a symlink
    /// that leaves the repository.
    #[error("path `{path}` refused: {reason}")]
    PathRefused {
        /// The path as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// `tasks/index.json` (or another state file) does not parse or validate; it was moved
    /// aside, never overwritten.
    #[error("{file} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What is wrong and where it was moved.
        detail: String,
    },
    /// A gate refused a transition.
    #[error("gate `{gate}` refused: {reason}")]
    Gate {
        /// The failing gate, e.g. `spec_missing`.
        gate: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// A task, feature, run or file named by the call does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The call's arguments make no sense together.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The task is claimed by someone else under a live lease.
    #[error("task {task} is claimed by `{agent}` until {until}")]
    Claimed {
        /// The task's alias.
        task: String,
        /// Who holds it.
        agent: String,
        /// When the lease ends.
        until: String,
    },
    /// A `git` command failed.
    #[error("git {args}: {message}")]
    Git {
        /// The command's arguments.
        args: String,
        /// Its error output.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A command cannot run as the sandbox requires (no kernel confinement on this host under
    /// `workspace-write`, or a `read-only` call).
    #[error("{0}")]
    Sandbox(String),
    /// A command run by `repo_exec` ran past its time limit.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// `Result` with [`SopError`].
pub type Result<T, E = SopError> = std::result::Result<T, E>;

impl SopError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SopError {
        let path = path.into();
        move |source| SopError::Io { path, source }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> SopError {
        SopError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<SopError> for ToolError {
    fn from(error: SopError) -> ToolError {
        match error {
            SopError::PathRefused { .. } => ToolError::Denied {
                rule: "sop.confinement".into(),
                reason: error.to_string(),
            },
            SopError::Gate { gate, reason } => ToolError::Denied {
                rule: format!("sop.gate.{gate}"),
                reason,
            },
            SopError::Claimed { .. } => ToolError::Denied {
                rule: "sop.claim".into(),
                reason: error.to_string(),
            },
            SopError::Sandbox(reason) => ToolError::Denied {
                rule: "sop.sandbox".into(),
                reason,
            },
            SopError::NotFound(what) => ToolError::not_found(what),
            SopError::Invalid { field, message } => ToolError::invalid_args(field, message),
            SopError::Timeout(after) => ToolError::Timeout(after),
            SopError::Corrupt { .. } | SopError::Git { .. } | SopError::Io { .. } => {
                ToolError::failed(error.to_string())
            }
        }
    }
}
