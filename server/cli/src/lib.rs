//! `baton-cli`: the `baton` binary — its commands (clap), `baton.toml`, and the wiring of an
//! [`App`]: every pack registered in one registry behind one [`Gate`], the policy, the store,
//! the knowledge library, and the agent runtime's journal and approvals in the store.
//!
//! The key design choice: this crate is thin. The call path is `baton-gate`, the MCP face is
//! `baton-mcp`, the store is `baton-runs`; what is here only reads configuration and connects
//! them, so every face — `baton serve`, `baton tools call`, `baton run` — reaches tools the
//! same way, and a new pack is one registration line in `app.rs`.

pub mod agents;
pub mod app;
pub mod builtin;
pub mod cli;
pub mod config;
pub mod error;
pub mod goals;
pub mod telemetry;
pub mod workers;

pub use app::App;
pub use baton_gate::Gate;
pub use baton_mcp::BatonMcp;
pub use config::Config;
pub use error::{Result, ServerError};
