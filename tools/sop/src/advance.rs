//! Transitions through the SOP's gates: a feature to a phase, a task to a status. Each is
//! made inside one locked index update and noted in the action plan; a task's verdict —
//! passed, refused by a named gate, or failed — is recorded in its latest run either way.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::gates::{SpecCheck, check_spec, check_specs, move_feature, move_task};
use crate::mirror::{Mirror, append_section};
use crate::model::{Index, Phase, Status};
use crate::time::now_rfc3339;
use crate::tools::blocking;
use crate::{Repo, Result, SopError};

/// A transition made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AdvanceOutput {
    /// The feature slug or task alias.
    pub subject: String,
    /// Where it was.
    pub from: String,
    /// Where it is now.
    pub to: String,
}

/// Move feature `slug` to phase `to` as `agent`; `index` is read before the lock, to check
/// the specs (which runs git) without holding it.
pub(crate) async fn feature(
    repo: Repo,
    index: &Index,
    slug: String,
    to: Phase,
    agent: String,
    note: Option<String>,
) -> Result<AdvanceOutput> {
    let specs = check_specs(&repo, &index.tasks).await?;
    blocking(move || {
        repo.update(|index| {
            let from = move_feature(&repo, index, &slug, to, &specs)?;
            append_section(
                &repo,
                Mirror::ActionPlan,
                &slug,
                &format!("phase {} → {}", from.as_str(), to.as_str()),
                &format!("`{agent}` advanced the feature.{}", suffix(note.as_deref())),
                crate::state::INDEX,
            )?;
            Ok(AdvanceOutput {
                subject: slug.clone(),
                from: from.as_str().into(),
                to: to.as_str().into(),
            })
        })
    })
    .await
}

/// Move the task `key` to status `to` as `agent`, and record the verdict in its latest run
/// (a verdict that cannot be recorded is logged, not an error: the transition stands).
pub(crate) async fn task(
    repo: Repo,
    index: &Index,
    key: String,
    to: Status,
    agent: String,
    note: Option<String>,
) -> Result<AdvanceOutput> {
    let task = index.tasks[index.find(&key)?].clone();
    let spec = check_spec(&repo, &task).await?;
    let result = {
        let repo = repo.clone();
        blocking(move || {
            repo.update(|index| move_noted(&repo, index, &key, to, &agent, &spec, note.as_deref()))
        })
        .await
    };
    if let Some(run) = task.runs.last() {
        let verdict = verdict(to, &result);
        if let Err(error) = repo.record_verdict(run, &verdict) {
            tracing::warn!(%error, run, "gate verdict not recorded");
        }
    }
    result
}

/// Inside the index lock: move the task, note it in the action plan, re-render its list.
fn move_noted(
    repo: &Repo,
    index: &mut Index,
    key: &str,
    to: Status,
    agent: &str,
    spec: &SpecCheck,
    note: Option<&str>,
) -> Result<AdvanceOutput> {
    let at = index.find(key)?;
    let from = move_task(repo, index, at, to, agent, spec, jiff::Timestamp::now())?;
    let task = &index.tasks[at];
    append_section(
        repo,
        Mirror::ActionPlan,
        &task.feature,
        &format!("{}: {} → {}", task.alias, from.as_str(), to.as_str()),
        &format!(
            "`{agent}` moved **{}** to `{}`.{}",
            task.title,
            to.as_str(),
            suffix(note)
        ),
        crate::state::INDEX,
    )?;
    repo.write_task_list(index, &task.feature)?;
    Ok(AdvanceOutput {
        subject: task.alias.clone(),
        from: from.as_str().into(),
        to: to.as_str().into(),
    })
}

/// The note as the mirror appends it: after a space, or nothing.
fn suffix(note: Option<&str>) -> String {
    note.map(|n| format!(" {n}")).unwrap_or_default()
}

/// What a run records of a status change: passed, refused (with the gate) or an error.
fn verdict(to: Status, result: &Result<AdvanceOutput>) -> serde_json::Value {
    match result {
        Ok(_) => {
            serde_json::json!({"time": now_rfc3339(), "to": to.as_str(), "verdict": "passed"})
        }
        Err(SopError::Gate { gate, reason }) => serde_json::json!({
            "time": now_rfc3339(), "to": to.as_str(), "verdict": "refused", "gate": gate, "reason": reason,
        }),
        Err(other) => serde_json::json!({
            "time": now_rfc3339(), "to": to.as_str(), "verdict": "error", "reason": other.to_string(),
        }),
    }
}
