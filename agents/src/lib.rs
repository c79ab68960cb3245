//! `baton-agents`: the agent runtime — agents, the runner's turn loop, model providers (any
//! OpenAI-compatible endpoint through `async-openai`, and a replay of recorded responses).
//!
//! The key design choice: agents never touch a tool directly. The runner is handed a
//! `baton-kit` [`baton_kit::Invoker`] — in Baton, the server's gate — so an agent's call is
//! decided, approved, executed and audited exactly like an outside client's. An approval the
//! gate asks for pauses the run; every model response and tool result is journaled under a
//! key the same run reaches again, so running a paused or crashed run again replays what was
//! done and continues, never repeating a call.

mod agent;
mod budget;
mod error;
mod events;
mod journal;
mod message;
mod output;
mod provider;
mod runner;

pub use agent::{Agent, AgentSet, Guardrails};
pub use budget::{Budget, OverBudget, Price, RunUsage, Spent};
pub use error::{AgentError, Result};
pub use events::RunEvent;
pub use journal::{Approvals, Journal, JournalKey, MemoryJournal, Review, StepKind};
pub use message::{FunctionCall, FunctionSpec, Message, ToolCall, ToolSpec};
pub use output::{JsonSchemaFormat, ResponseFormat, strict_allowed};
pub use provider::{
    Api, ByApi, Delta, Deltas, ModelRequest, ModelResponse, OpenAiProvider, Provider,
    RecordingProvider, ReplayProvider, ResponsesProvider, Usage,
};
pub use runner::{Interruption, RunOutcome, Runner, Timing};
