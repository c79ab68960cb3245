//! `baton-sop`: the repo-orchestration pack — a guardrailed PRD → tasks → spec → plan →
//! implement SOP as typed tools, with the repository itself as the store.
//!
//! The key design choice: `tasks/index.json` in the **main checkout** is the single source of
//! truth, shared by every worktree of the repository (found through git's common directory), and
//! it changes only under an exclusive `flock` with a fresh read inside the lock, through an
//! atomic rename. Concurrent agents therefore cannot lose updates or double-claim, ids are
//! ULIDs (no collisions across branches), and a file that fails validation is moved aside and
//! refused — never "recovered" to empty. Gates refuse unsafe transitions by name; a task is
//! done only with a recorded diff. Nothing here knows about MCP: the tools are `baton-kit`
//! tools, and the server's gate decides whether they may run.

mod advance;
mod author;
mod brief;
mod claim;
pub mod confinement;
pub mod coordination;
mod diff;
mod edit;
mod error;
pub mod exec;
mod fsx;
mod gates;
mod git;
mod guard;
mod kernel;
mod mirror;
mod model;
mod patterns;
mod render;
mod repo;
mod runlog;
mod scaffold;
mod spec;
mod state;
mod status;
mod time;
mod tools;
mod worktree;

pub use brief::{Brief, Requirement};
pub use confinement::{Backend, HostConfinement, host_confinement};
pub use coordination::Coordination;
pub use error::{Result, SopError};
pub use exec::ExecOutcome;
pub use git::remote_git;
pub use guard::{Finding, GuardReport, guard, sarif};
pub use mirror::Mirror;
pub use model::{
    Claim, Feature, Index, Phase, Priority, SCHEMA_VERSION, SpecTrigger, Status, Task, TestReport,
};
pub use repo::{Access, Repo, confine};
pub use runlog::RunMeta;
pub use spec::{SpecMeta, Staleness};
pub use state::INDEX;
pub use time::today;
pub use tools::*;

/// A mini-spec not reviewed for longer than this is stale.
pub const SPEC_MAX_AGE_DAYS: i64 = 30;
