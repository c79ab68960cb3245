//! Baton's MCP face: one generic `ServerHandler` over the kit registry, behind the gate; the
//! three approval channels (elicitation, `InputRequiredResult`, a separate reviewer); the stdio
//! and Streamable HTTP transports; artifacts and knowledge as resources; and the MCP client
//! side that lets Baton's agents call tools of other MCP servers through the same gate.
//!
//! The key design choice: this crate only translates. Every call goes to [`baton_gate::Gate`],
//! and the handler is generic over the registry, so adding a tool to a pack never touches it.
//! What is served is a [`Served`] value, not the `baton` binary's app: tests, the conformance
//! fixtures and the benchmarks build one without a command line.

mod approval;
mod artifacts;
mod convert;
mod error;
mod handler;
mod knowledge;
mod page;
mod progress;
mod served;
mod settings;
pub mod sources;
pub mod tasks;
pub mod trace;
pub mod transport;

pub use approval::{APPROVAL_ARG, APPROVAL_META, ClientApproves};
pub use convert::{descriptor_to_tool, error_to_mcp, output_to_result};
pub use error::{McpError, Result};
pub use handler::BatonMcp;
pub use page::page;
pub use progress::ProgressRelay;
pub use served::Served;
pub use settings::{
    AgentsSection, ApprovalsSection, ConsoleSection, HttpSection, McpSource, ServerSection,
    Settings, StdioSection, TelemetrySection, TokenEntry, WebhookEntry, WebhookFormat,
};
