/// What can go wrong setting the HTTP face up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The bearer tokens could not be read.
    #[error(transparent)]
    Tokens(#[from] baton_mcp::McpError),
}

/// `Result` with [`RestError`].
pub type Result<T, E = RestError> = std::result::Result<T, E>;
