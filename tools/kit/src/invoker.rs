use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::{Principal, Result, ToolContext, ToolDescriptor, ToolOutput};

/// One request to run a tool, as the gate receives it.
#[derive(Debug)]
pub struct Invocation {
    /// Who is calling; shared, since one identity makes many calls.
    pub principal: Arc<Principal>,
    /// The tool's name.
    pub tool: String,
    /// The arguments object (or `null` for none).
    pub args: serde_json::Value,
    /// An approval granted earlier for exactly this call, when re-calling after approval.
    pub approval_id: Option<String>,
    /// Cancellation and progress.
    pub context: ToolContext,
}

/// An elevated call waiting for a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingApproval {
    /// Give this id to a reviewer; re-call with it once approved.
    pub approval_id: String,
    /// Why approval is needed, naming the rule.
    pub reason: String,
}

/// What the gate did with an invocation that raised no error. Generic so that calls whose
/// result is not a [`ToolOutput`] (protocol fixtures, wrapped MCP tools) pass the same gate.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T = ToolOutput> {
    /// The tool ran.
    Completed(T),
    /// The call needs a reviewer's approval first; nothing ran.
    PendingApproval(PendingApproval),
}

/// The one way to call a tool: policy decision, approval, execution, audit. The server
/// implements it; agents and the CLI are handed one and never call a tool directly.
pub trait Invoker: Send + Sync {
    /// Descriptors of the tools `principal` may see.
    fn tools(&self, principal: &Principal) -> Vec<ToolDescriptor>;
    /// Run `invocation` through the gate.
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Outcome>>;
}
