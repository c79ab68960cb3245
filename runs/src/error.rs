use std::path::PathBuf;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunsError {
    /// Another process holds the store (sled allows one at a time).
    #[error("the store at `{}` is in use by another process", .0.display())]
    Locked(PathBuf),
    /// The database does not open: its files fail sled's own checks (edited or damaged).
    /// `salvage_audit` can still name the audit records that were damaged.
    #[error("the store at `{}` is damaged and does not open ({detail}); `baton audit verify` names the damaged records", path.display())]
    Damaged {
        /// The database folder.
        path: PathBuf,
        /// sled's message.
        detail: String,
    },
    /// The database failed.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// PostgreSQL failed an operation, or the connection to it was lost.
    #[error("store (PostgreSQL): {}", crate::postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to PostgreSQL could be had.
    #[error("store (PostgreSQL): {}", crate::postgres::describe_pool(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The database's schema is newer than this binary knows: an older Baton must not write
    /// to it.
    #[error(
        "store (PostgreSQL): the database's schema is version {found}, newer than this binary's {known}; run a Baton at least as new as the one that migrated it"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// The newest this binary knows.
        known: i64,
    },
    /// The store's URL cannot be used.
    #[error("store URL `{url}`: {reason}")]
    StoreUrl {
        /// The URL, password removed.
        url: String,
        /// Why not.
        reason: String,
    },
    /// An artifact is larger than the backend keeps.
    #[error(
        "the artifact is {size} bytes, over the {limit}-byte limit for artifacts kept in PostgreSQL ([store] max_artifact_mb)"
    )]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A batch of audit records could not be written (its callers are not answered as done).
    #[error("the audit record was not written: {detail}")]
    AuditUnwritten {
        /// What failed.
        detail: String,
    },
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
    /// An upload would take a principal past its quota.
    #[error(
        "`{principal}` would keep {would} bytes of uploads, over its {quota}-byte quota (limits.upload_quota_mb); old uploads go with `baton artifacts gc`"
    )]
    Quota {
        /// Whose uploads.
        principal: String,
        /// What it would keep with this upload.
        would: u64,
        /// Its quota.
        quota: u64,
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
    /// A work item is not leased to the worker that acts on it (its lease ran out and
    /// another worker took it, or it was finished).
    #[error("work item `{id}`: {reason}")]
    Lease {
        /// The item.
        id: String,
        /// Why not.
        reason: String,
    },
    /// The audit writer has stopped (the store was closed).
    #[error("the audit log is closed")]
    Closed,
    /// The audit log found itself damaged at open and takes no records until an operator
    /// recovers it (`baton audit recover --accept-loss --reason TEXT`).
    #[error("the audit log refuses new records: {0}")]
    AuditRefused(Box<crate::Problem>),
    /// A recovery was asked for, but the audit log is not refusing anything.
    #[error("the audit log has nothing to recover: it takes records")]
    AuditIntact,
    /// The checkpoint signing key cannot be used.
    #[error("audit checkpoint key `{}`: {reason}", path.display())]
    CheckpointKey {
        /// The key file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
}

/// `Result` with [`RunsError`].
pub type Result<T, E = RunsError> = std::result::Result<T, E>;

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
