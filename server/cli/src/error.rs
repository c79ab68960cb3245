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
    /// The MCP face could not start or keep serving.
    #[error(transparent)]
    Mcp(#[from] baton_mcp::McpError),
    /// The policy file is unusable at start-up.
    #[error(transparent)]
    Policy(#[from] baton_policies::PolicyError),
    /// The knowledge root cannot be watched.
    #[error(transparent)]
    Knowledge(#[from] baton_knowledge::KnowledgeError),
    /// The store cannot be reached.
    #[error("store: {0}")]
    Store(#[from] baton_runs::StoreError),
}

/// `Result` with [`ServerError`].
pub type Result<T, E = ServerError> = std::result::Result<T, E>;
