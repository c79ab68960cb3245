//! What a running tool asks of the gate on its caller's behalf: another program working for
//! the caller (Codex, behind `codex mcp-server`) wants to run a command or apply a patch, and
//! the caller's policy — not the tool — decides, with a reviewer when it says so. And what a
//! running tool reports as it goes, for the run's journal (the commands Codex ran).

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Effect, Result};

/// An action a tool's helper program asks to take for the caller, decided like a call of a
/// tool named `name` (e.g. `codex:exec`), so policy rules can name it.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedAction {
    /// What is asked, as rules name it: `<source>:<kind>` (`codex:exec`, `codex:patch`).
    pub name: String,
    /// The pack rules may name (the source).
    pub pack: String,
    /// What it does.
    pub effect: Effect,
    /// What a reviewer sees and the audit digests: the command and its folder, the changes.
    pub args: Value,
    /// JSON pointers to the paths it touches, checked against the writable roots.
    pub path_args: Vec<String>,
    /// Why the program asks, in its words.
    pub reason: String,
}

/// The gate's answer to a [`NestedAction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It may go ahead.
    Allowed {
        /// The approval a reviewer granted, when one was needed.
        approval_id: Option<String>,
    },
    /// It may not.
    Refused {
        /// The rule that refused it, or `approval` when a reviewer did.
        rule: String,
        /// Why, for the program (Codex tells its model).
        reason: String,
        /// The approval a reviewer refused (or let expire), when one was asked.
        approval_id: Option<String>,
    },
}

/// Decides nested actions for one call's caller. The gate hands every call it lets through
/// one; a tool run outside the gate has none, and its nested actions are refused.
pub trait Oversight: Send + Sync {
    /// Decide `action`: at once by a rule, or after a reviewer decides (waiting for as long as
    /// the approval lives, or until `cancel` fires: then the request is withdrawn). Every
    /// request and its outcome is audited.
    fn decide(
        &self,
        action: NestedAction,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Verdict>>;
}

/// Where a running tool's own steps go (the commands its helper ran, the patches it applied,
/// the tokens it used): the run's journal, when an agent made the call.
pub trait StepSink: Send + Sync {
    /// Keep `step` (an object with a `type`); returns once it is kept.
    fn step(&self, step: Value) -> BoxFuture<'_, ()>;
}
