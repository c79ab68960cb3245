/// Why a run, a model call or an agent definition failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The model endpoint failed for good (after retries where retrying made sense).
    #[error("model provider `{provider}`: {message}")]
    Provider {
        /// Which provider.
        provider: String,
        /// What went wrong.
        message: String,
    },
    /// The replay provider has no recorded response for a request.
    #[error("cassette `{cassette}`: no recorded response matches this request ({detail})")]
    NoRecording {
        /// The cassette file.
        cassette: String,
        /// What the request was.
        detail: String,
    },
    /// An agent definition (TOML or code) is wrong.
    #[error("agent `{agent}`: {message}")]
    Definition {
        /// The agent, or the file.
        agent: String,
        /// What is wrong.
        message: String,
    },
    /// The run used all its turns without a final answer.
    #[error("agent `{agent}` reached max_turns ({max_turns}) without a final answer")]
    MaxTurns {
        /// The agent.
        agent: String,
        /// The limit.
        max_turns: u32,
    },
    /// The final answer does not fit the agent's output schema.
    #[error("agent `{agent}` answered with output that does not fit its schema: {message}")]
    Output {
        /// The agent.
        agent: String,
        /// What is wrong.
        message: String,
    },
    /// The run was cancelled.
    #[error("the run was cancelled")]
    Cancelled,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The run's journal failed; the run stops rather than continue unrecorded.
    #[error("journal: {0}")]
    Journal(String),
}

/// `Result` with [`AgentError`].
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
