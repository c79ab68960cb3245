/// Why the rule tables could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RxError {
    /// A rule table is not valid.
    #[error("rule table `{file}`: {message}")]
    Table {
        /// The table (`knowledge://rx/federal.toml`).
        file: String,
        /// What is wrong, with the TOML path.
        message: String,
    },
    /// The rule tables contradict each other or lack what the engine needs.
    #[error("rule tables: {0}")]
    Book(String),
    /// A prescription file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `Result` with [`RxError`].
pub type Result<T, E = RxError> = std::result::Result<T, E>;

impl From<RxError> for baton_kit::ToolError {
    fn from(error: RxError) -> baton_kit::ToolError {
        baton_kit::ToolError::failed(error.to_string())
    }
}
