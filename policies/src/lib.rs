//! Baton's policy: what a call may touch (the **sandbox mode**) and when a human must approve
//! it (the **approval policy**), modelled on Codex CLI, plus per-tool rules that can only
//! tighten. `Policy::decide` answers `Allow`, `NeedsApproval` or `Forbid`, always naming the
//! rule that decided.
//!
//! The key design choice: the sandbox is a hard boundary and the approval policy only acts
//! inside it. A `read-only` sandbox forbids a write outright — no approval can open it —
//! while `untrusted` asks a reviewer before any call that is not a read. Policy files are
//! watched: an edit applies to the next call, and a broken edit keeps the last good policy and
//! says why.

mod decide;
mod error;
mod file;
mod paths;
mod policy;
mod watch;

pub use decide::Decision;
pub use error::{PolicyError, Result};
pub use paths::normalize;
pub use policy::{ApprovalPolicy, Policy, Rule, RuleAction, SandboxMode};
pub use watch::{PolicyStatus, PolicyStore, SETTLE};
