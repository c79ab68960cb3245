use std::sync::Arc;

use baton_gate::Gate;
use baton_knowledge::Shelf;

use crate::Settings;

/// What an MCP server serves: the gate (and the tools behind it), the knowledge library its
/// resources and prompts come from, and the settings of its transports.
#[derive(Debug)]
pub struct Served {
    /// The gate every call passes.
    pub gate: Gate,
    /// Knowledge documents in force, served as resources and the `brief` prompt.
    pub knowledge: Arc<Shelf>,
    /// `[server]`, `[http]`, `[stdio]` and `[approvals]`.
    pub settings: Settings,
}
