use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the MCP face could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Serving failed at the transport level.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The HTTP server would be reachable by others without authentication.
    #[error(
        "refusing to serve {addr} without bearer tokens: only loopback addresses may be served \
         unauthenticated; add [[http.tokens]] to baton.toml"
    )]
    Unauthenticated {
        /// The address.
        addr: SocketAddr,
    },
    /// A bearer token's hash is not 64 hex digits.
    #[error("invalid config `{}`: http.tokens.token_sha256: must be 64 hex digits", config.display())]
    TokenHash {
        /// The config file.
        config: PathBuf,
    },
    /// A bearer token's environment variable is not set.
    #[error("http.tokens: environment variable `{0}` (token_env) is not set or empty")]
    MissingTokenEnv(String),
    /// The key that seals multi-round request state could not be made.
    #[error("cannot make the request-state key: {0}")]
    Sealing(String),
    /// The MCP session ended abnormally.
    #[error("MCP session: {0}")]
    Session(String),
}

/// `Result` with [`McpError`].
pub type Result<T, E = McpError> = std::result::Result<T, E>;
