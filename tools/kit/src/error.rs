use std::time::Duration;

use serde::Serialize;

/// Why a tool call did not produce a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments do not fit the tool's input schema, or fit it but make no sense.
    #[error("invalid arguments at `{path}`: {message}")]
    InvalidArgs {
        /// JSON path of the offending value (`.` for the whole object).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Something the call names does not exist: the tool itself, or a file, task, record.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for, e.g. ``tool `dsp_foo` `` or ``file `a.wav` ``.
        what: String,
    },
    /// A policy refused the call.
    #[error("denied by rule `{rule}`: {reason}")]
    Denied {
        /// The rule that decided, e.g. `sandbox.read-only`.
        rule: String,
        /// Why, in words a reviewer understands.
        reason: String,
    },
    /// The tool ran and failed.
    #[error("{message}")]
    Failed {
        /// What went wrong, for the caller.
        message: String,
    },
    /// The caller cancelled the call before it finished.
    #[error("cancelled")]
    Cancelled,
    /// The call ran past its time limit.
    #[error("timed out after {}", humantime(*.0))]
    Timeout(Duration),
    /// The server had no room for the call within the wait: too many calls of this caller, or
    /// of heavy tools, were running. Nothing ran; try again later.
    #[error("busy: {what}; waited {}, nothing ran — try again later", humantime(*.waited))]
    Busy {
        /// What was full, naming the setting.
        what: String,
        /// How long the call waited for room.
        waited: Duration,
    },
    /// Something every call needs is unreachable — the store, or its audit log — so the call
    /// is not answered: whatever it did is withheld, never reported without its record. Try
    /// again (another server, or once the store is back).
    #[error("unavailable: {message}")]
    Unavailable {
        /// What is unreachable, and why.
        message: String,
    },
}

/// `Result` with [`ToolError`].
pub type Result<T, E = ToolError> = std::result::Result<T, E>;

/// The kind of a [`ToolError`], as it appears in structured results and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolErrorKind {
    /// See [`ToolError::InvalidArgs`].
    InvalidArgs,
    /// See [`ToolError::NotFound`].
    NotFound,
    /// See [`ToolError::Denied`].
    Denied,
    /// See [`ToolError::Failed`].
    Failed,
    /// See [`ToolError::Cancelled`].
    Cancelled,
    /// See [`ToolError::Timeout`].
    Timeout,
    /// See [`ToolError::Busy`].
    Busy,
    /// See [`ToolError::Unavailable`].
    Unavailable,
}

impl ToolErrorKind {
    /// The snake_case name used on the wire and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolErrorKind::InvalidArgs => "invalid_args",
            ToolErrorKind::NotFound => "not_found",
            ToolErrorKind::Denied => "denied",
            ToolErrorKind::Failed => "failed",
            ToolErrorKind::Cancelled => "cancelled",
            ToolErrorKind::Timeout => "timeout",
            ToolErrorKind::Busy => "busy",
            ToolErrorKind::Unavailable => "unavailable",
        }
    }
}

impl ToolError {
    /// A failure with a message for the caller.
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed {
            message: message.into(),
        }
    }

    /// The store or its audit log is unreachable: see [`ToolError::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        ToolError::Unavailable {
            message: message.into(),
        }
    }

    /// Invalid arguments at `path`.
    pub fn invalid_args(path: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError::InvalidArgs {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Something named by the call does not exist.
    pub fn not_found(what: impl Into<String>) -> Self {
        ToolError::NotFound { what: what.into() }
    }

    /// This error's kind.
    pub fn kind(&self) -> ToolErrorKind {
        match self {
            ToolError::InvalidArgs { .. } => ToolErrorKind::InvalidArgs,
            ToolError::NotFound { .. } => ToolErrorKind::NotFound,
            ToolError::Denied { .. } => ToolErrorKind::Denied,
            ToolError::Failed { .. } => ToolErrorKind::Failed,
            ToolError::Cancelled => ToolErrorKind::Cancelled,
            ToolError::Timeout(_) => ToolErrorKind::Timeout,
            ToolError::Busy { .. } => ToolErrorKind::Busy,
            ToolError::Unavailable { .. } => ToolErrorKind::Unavailable,
        }
    }
}

fn humantime(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.1} s")
    } else {
        format!("{} ms", duration.as_millis())
    }
}
