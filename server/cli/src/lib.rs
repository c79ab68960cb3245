//! Baton's server: the gate every tool call passes, the MCP adapter over the kit registry, the
//! stdio and Streamable HTTP transports, and the `baton` command line.
//!
//! The key design choice: there is one call path. MCP clients over either transport, the
//! `baton tools call` command and (later) our own agents all reach tools through [`Gate`];
//! the MCP layer only translates, so a new tool pack never touches this crate beyond one
//! registration line.

pub mod agents;
pub mod app;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod error;

pub use app::App;
pub use baton_gate::Gate;
pub use baton_mcp::BatonMcp;
pub use config::Config;
pub use error::{Result, ServerError};
