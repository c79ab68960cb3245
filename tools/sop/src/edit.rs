//! Edits of one task: its fields, metadata, test report and status, made in one locked index
//! update so concurrent edits from many agents are serialized and none is lost.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::gates::{SpecCheck, move_task};
use crate::mirror::{Mirror, append_section};
use crate::model::{Index, Priority, Status, Task, TestReport};
use crate::time::now_rfc3339;
use crate::{Repo, Result, SopError};

/// What to change; `None` leaves a field as it is.
#[derive(Debug)]
pub(crate) struct Changes {
    pub(crate) title: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) priority: Option<Priority>,
    /// Ids or aliases, replacing the old dependencies.
    pub(crate) dependencies: Option<Vec<String>>,
    /// Merged in; a key set to null is removed.
    pub(crate) metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub(crate) status: Option<Status>,
    pub(crate) test_report: Option<TestReport>,
}

/// The task after the update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateOutput {
    /// The task.
    pub task: Task,
    /// The fields that changed.
    pub changed: Vec<String>,
}

/// Inside the index lock: apply `changes` to the task `key` as `agent` (a status change
/// passes the gates, with `spec` checked beforehand), and re-render its feature's task list.
pub(crate) fn update(
    repo: &Repo,
    index: &mut Index,
    key: &str,
    agent: &str,
    changes: &Changes,
    spec: &SpecCheck,
) -> Result<UpdateOutput> {
    let at = index.find(key)?;
    let dependencies = match &changes.dependencies {
        Some(keys) => Some(dependency_ids(index, at, keys)?),
        None => None,
    };
    let mut changed = edit_fields(repo, &mut index.tasks[at], changes, dependencies)?;
    if let Some(to) = changes.status {
        let from = move_task(repo, index, at, to, agent, spec, jiff::Timestamp::now())?;
        changed.push("status".to_owned());
        let task = &index.tasks[at];
        append_section(
            repo,
            Mirror::ActionPlan,
            &task.feature,
            &format!("{}: {} → {}", task.alias, from.as_str(), to.as_str()),
            &format!("`{agent}` moved **{}** to `{}`.", task.title, to.as_str()),
            crate::state::INDEX,
        )?;
    }
    if changed.is_empty() {
        return Err(SopError::invalid(
            "task",
            "nothing to change: give at least one field",
        ));
    }
    let feature = index.tasks[at].feature.clone();
    repo.write_task_list(index, &feature)?;
    Ok(UpdateOutput {
        task: index.tasks[at].clone(),
        changed,
    })
}

/// The ids of the tasks `keys` name; a task may not depend on itself.
fn dependency_ids(index: &Index, at: usize, keys: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for key in keys {
        let dep = index.find(key)?;
        if dep == at {
            return Err(SopError::invalid(
                "dependencies",
                "a task cannot depend on itself",
            ));
        }
        ids.push(index.tasks[dep].id.clone());
    }
    Ok(ids)
}

/// Apply every change but the status; the names of the fields changed.
fn edit_fields(
    repo: &Repo,
    task: &mut Task,
    changes: &Changes,
    dependencies: Option<Vec<String>>,
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    if let Some(title) = &changes.title {
        if title.trim().is_empty() {
            return Err(SopError::invalid("title", "is empty"));
        }
        task.title = title.trim().to_owned();
        changed.push("title".to_owned());
    }
    if let Some(description) = &changes.description {
        task.description.clone_from(description);
        changed.push("description".to_owned());
    }
    if let Some(priority) = changes.priority {
        task.priority = priority;
        changed.push("priority".to_owned());
    }
    if let Some(ids) = dependencies {
        task.dependencies = ids;
        changed.push("dependencies".to_owned());
    }
    if let Some(metadata) = &changes.metadata {
        for (key, value) in metadata {
            if value.is_null() {
                task.metadata.remove(key);
            } else {
                task.metadata.insert(key.clone(), value.clone());
            }
            changed.push(format!("metadata.{key}"));
        }
    }
    if let Some(report) = &changes.test_report {
        let run = task.runs.last().ok_or_else(|| {
            SopError::invalid(
                "test_report",
                format!(
                    "task {} has no run to record it in: claim it first",
                    task.alias
                ),
            )
        })?;
        repo.write_test_report(run, report)?;
        changed.push("test_report".to_owned());
    }
    if !changed.is_empty() {
        task.updated = now_rfc3339();
    }
    Ok(changed)
}
