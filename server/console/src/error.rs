use std::path::PathBuf;

/// What can go wrong setting the console or the reviewers' watch up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// The bearer tokens could not be read.
    #[error(transparent)]
    Tokens(#[from] baton_mcp::McpError),
    /// `[http] public_url` is not an http(s) URL.
    #[error("[http] public_url `{url}` in {config}: {why}")]
    PublicUrl {
        /// The value given.
        url: String,
        /// The config file.
        config: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A webhook's URL is not an http(s) URL.
    #[error("[[approvals.webhooks]] url `{url}`: {why}")]
    Webhook {
        /// The value given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
}

/// `Result` with [`ConsoleError`].
pub type Result<T, E = ConsoleError> = std::result::Result<T, E>;
