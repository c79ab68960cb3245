//! The pack's tools: thin typed adapters over the modules above.

mod author;
mod guard;
mod patterns;
mod repo;
mod status;
mod task;

use baton_kit::{Registry, RegistryError, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Index, Priority, Status, Task};
use crate::{Result, SopError};

pub use author::{MirrorTool, PlanCreate, PrdCreate, SpecCreate, TasksGenerate};
pub use guard::SpecGuard;
pub use patterns::PatternsHarvest;
pub use repo::{RepoDiff, RepoExec, RepoRead, RepoWorktree, RepoWrite};
pub use status::{ScaffoldCheck, SopStatus};
pub use task::{Advance, TaskClaim, TaskGet, TaskNext, TaskUpdate};

/// Register every tool of the pack under `pack` (normally `sop`).
pub fn register(registry: &mut Registry, pack: &str) -> std::result::Result<(), RegistryError> {
    registry.register(pack, SopStatus)?;
    registry.register(pack, ScaffoldCheck)?;
    registry.register(pack, PrdCreate)?;
    registry.register(pack, TasksGenerate)?;
    registry.register(pack, TaskGet)?;
    registry.register(pack, TaskNext)?;
    registry.register(pack, TaskClaim)?;
    registry.register(pack, TaskUpdate)?;
    registry.register(pack, SpecCreate)?;
    registry.register(pack, PlanCreate)?;
    registry.register(pack, Advance)?;
    registry.register(pack, SpecGuard)?;
    registry.register(pack, MirrorTool)?;
    registry.register(pack, RepoDiff)?;
    registry.register(pack, RepoRead)?;
    registry.register(pack, RepoWrite)?;
    registry.register(pack, RepoExec)?;
    registry.register(pack, RepoWorktree)?;
    registry.register(pack, PatternsHarvest)?;
    Ok(())
}

/// A task as lists show it: enough to choose one, not the whole record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskSummary {
    /// Id (ULID).
    pub id: String,
    /// Display alias.
    pub alias: String,
    /// Feature.
    pub feature: String,
    /// Title.
    pub title: String,
    /// Status.
    pub status: Status,
    /// Priority.
    pub priority: Priority,
    /// Whether it needs a mini-spec.
    pub spec_required: bool,
    /// Who holds the claim, if anyone (the lease may have run out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// How many of its dependencies are not done.
    pub dependencies_open: usize,
}

impl TaskSummary {
    pub(crate) fn of(index: &Index, task: &Task) -> TaskSummary {
        TaskSummary {
            id: task.id.clone(),
            alias: task.alias.clone(),
            feature: task.feature.clone(),
            title: task.title.clone(),
            status: task.status,
            priority: task.priority,
            spec_required: task.spec_required,
            claimed_by: task.claimed_by.as_ref().map(|c| c.agent.clone()),
            dependencies_open: task
                .dependencies
                .iter()
                .filter(|id| {
                    index
                        .tasks
                        .iter()
                        .any(|t| t.id == **id && t.status != Status::Done)
                })
                .count(),
        }
    }
}

/// The agent a call acts for: the calling principal. A claim belongs to a principal, not to
/// a name in the arguments, so `agent` may only repeat the caller's own id; it names someone
/// else only for a tool run directly as a library, with no principal.
pub(crate) fn agent_of(named: Option<String>, ctx: &ToolContext) -> Result<String> {
    let named = named.filter(|a| !a.trim().is_empty());
    match (ctx.principal(), named) {
        (Some(caller), Some(named)) if named != caller.id => Err(SopError::invalid(
            "agent",
            format!(
                "`{named}` is not the caller: the SOP acts as `{}`, who may not act for another agent",
                caller.id
            ),
        )),
        (Some(caller), _) => Ok(caller.id.clone()),
        (None, named) => Ok(named.unwrap_or_else(|| "local".into())),
    }
}

/// Run file work (locks, fsyncs) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SopError::invalid("call", format!("the worker stopped: {e}")))?
}

/// A feature slug: lowercase letters, digits and dashes, as in `tasks/prd-<feature>.md`.
pub(crate) fn check_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(SopError::invalid(
            "feature",
            format!(
                "`{slug}` is not a slug: use lowercase letters, digits and dashes (e.g. `rate-limiting`)"
            ),
        ))
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
