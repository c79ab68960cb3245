use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A pack registered a bad tool (a bug in the pack).
    #[error("tool registry: {0}")]
    Registry(#[from] baton_kit::RegistryError),
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
    /// A bearer token's environment variable is not set.
    #[error("http.tokens: environment variable `{0}` (token_env) is not set or empty")]
    MissingTokenEnv(String),
    /// The policy file is unusable at start-up.
    #[error(transparent)]
    Policy(#[from] baton_policies::PolicyError),
    /// The knowledge root cannot be watched.
    #[error(transparent)]
    Knowledge(#[from] baton_knowledge::KnowledgeError),
    /// The store cannot be reached.
    #[error("store: {0}")]
    Store(#[from] baton_runs::StoreError),
    /// The key that seals multi-round request state could not be made.
    #[error("cannot make the request-state key: {0}")]
    Sealing(String),
    /// The MCP session ended abnormally.
    #[error("MCP session: {0}")]
    Session(String),
}

/// `Result` with [`ServerError`].
pub type Result<T, E = ServerError> = std::result::Result<T, E>;
