//! The gates between phases and task states. Each refusal names its gate, so an agent (or
//! its reviewer) knows exactly what is missing.

use crate::model::{Index, Phase, Status, Task};
use crate::spec::Staleness;
use crate::{Repo, Result, SopError};

/// What is known about a task's mini-spec, checked before the index is locked (the checks
/// run git).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecCheck {
    /// The spec file exists and its front matter reads.
    pub present: bool,
    /// Why it is stale, if it is.
    pub stale: Vec<Staleness>,
}

fn refuse(gate: &'static str, reason: String) -> SopError {
    SopError::Gate { gate, reason }
}

/// Whether any run linked to `task` recorded a non-empty diff.
pub fn has_diff(repo: &Repo, task: &Task) -> bool {
    task.runs.iter().any(|run| repo.diff_bytes(run) > 0)
}

fn spec_gates(task: &Task, spec: &SpecCheck) -> Result<()> {
    if !task.spec_required {
        return Ok(());
    }
    if task.spec_ref.is_none() || !spec.present {
        return Err(refuse(
            "spec_missing",
            format!(
                "task {} requires a mini-spec and has none; write it with sop_spec_create",
                task.alias
            ),
        ));
    }
    if let Some(why) = spec.stale.first() {
        return Err(refuse(
            "spec_stale",
            format!(
                "the spec of task {} is stale: {}; review it and re-run sop_spec_create",
                task.alias,
                why.describe()
            ),
        ));
    }
    Ok(())
}

fn claimed_by_caller(task: &Task, agent: &str, now: jiff::Timestamp) -> Result<()> {
    match &task.claimed_by {
        Some(claim) if claim.agent == agent && claim.is_live(now) => Ok(()),
        Some(claim) if claim.is_live(now) => Err(refuse(
            "unclaimed",
            format!(
                "task {} is claimed by `{}`, not `{agent}`",
                task.alias, claim.agent
            ),
        )),
        Some(_) | None => Err(refuse(
            "unclaimed",
            format!(
                "task {} has no live claim by `{agent}`; claim it with sop_task_claim first",
                task.alias
            ),
        )),
    }
}

fn dependencies_done(index: &Index, task: &Task) -> Result<()> {
    let open: Vec<&str> = task
        .dependencies
        .iter()
        .filter_map(|id| index.tasks.iter().find(|t| t.id == *id))
        .filter(|t| t.status != Status::Done)
        .map(|t| t.alias.as_str())
        .collect();
    if open.is_empty() {
        Ok(())
    } else {
        Err(refuse(
            "dependencies_open",
            format!("task {} waits for {}", task.alias, open.join(", ")),
        ))
    }
}

/// Check that task `at` may move to `to` by `agent`, and move it (releasing the claim when it
/// closes or returns to `pending`).
pub fn move_task(
    repo: &Repo,
    index: &mut Index,
    at: usize,
    to: Status,
    agent: &str,
    spec: &SpecCheck,
    now: jiff::Timestamp,
) -> Result<Status> {
    let task = &index.tasks[at];
    let from = task.status;
    if from == to {
        return Err(refuse(
            "invalid_transition",
            format!("task {} is already `{}`", task.alias, to.as_str()),
        ));
    }
    if from == Status::Done {
        return Err(refuse(
            "invalid_transition",
            format!("task {} is done; done is final", task.alias),
        ));
    }
    match to {
        Status::Pending | Status::Blocked | Status::Cancelled => {}
        Status::InProgress => {
            claimed_by_caller(task, agent, now)?;
            dependencies_done(index, task)?;
            spec_gates(task, spec)?;
        }
        Status::Review => {
            if from != Status::InProgress {
                return Err(refuse(
                    "invalid_transition",
                    format!(
                        "task {} is `{}`; only `in_progress` goes to review",
                        task.alias,
                        from.as_str()
                    ),
                ));
            }
            claimed_by_caller(task, agent, now)?;
            if !has_diff(repo, task) {
                return Err(no_diff(task));
            }
        }
        Status::Done => done_gates(repo, index, task, from, agent, spec, now)?,
    }
    let task = &mut index.tasks[at];
    task.status = to;
    if matches!(to, Status::Pending | Status::Done | Status::Cancelled) {
        task.claimed_by = None;
    }
    task.updated = crate::time::now_rfc3339();
    Ok(from)
}

/// What `done` needs: work on the task (by the caller, unless it passed review), its
/// dependencies done, a fresh spec if it needs one, a recorded diff, and a passing test report
/// (required by some features; a failing one always blocks).
fn done_gates(
    repo: &Repo,
    index: &Index,
    task: &Task,
    from: Status,
    agent: &str,
    spec: &SpecCheck,
    now: jiff::Timestamp,
) -> Result<()> {
    match from {
        Status::Review => {}
        Status::InProgress => claimed_by_caller(task, agent, now)?,
        Status::Pending | Status::Blocked | Status::Cancelled | Status::Done => {
            return Err(refuse(
                "invalid_transition",
                format!(
                    "task {} is `{}`; it must be worked on (`in_progress`) before it is done",
                    task.alias,
                    from.as_str()
                ),
            ));
        }
    }
    dependencies_done(index, task)?;
    spec_gates(task, spec)?;
    if !has_diff(repo, task) {
        return Err(no_diff(task));
    }
    let required = index
        .features
        .get(&task.feature)
        .is_some_and(|f| f.require_tests);
    match repo.latest_test_report(&task.runs) {
        Some(report) if !report.passed => Err(refuse(
            "tests_failing",
            format!(
                "task {}: the latest test report ({}) failed: {}",
                task.alias, report.command, report.summary
            ),
        )),
        None if required => Err(refuse(
            "tests_missing",
            format!(
                "task {}: feature `{}` requires a passing test report; record one with sop_task_update (test_report)",
                task.alias, task.feature
            ),
        )),
        Some(_) | None => Ok(()),
    }
}

fn no_diff(task: &Task) -> SopError {
    refuse(
        "no_diff",
        format!(
            "task {} has no recorded change: none of its runs ({}) holds a non-empty diff; record one with repo_diff",
            task.alias,
            if task.runs.is_empty() {
                "none".to_owned()
            } else {
                task.runs.join(", ")
            }
        ),
    )
}

/// Check that feature `slug` may move to `to`, and move it. Moving back needs no gate.
pub fn move_feature(
    repo: &Repo,
    index: &mut Index,
    slug: &str,
    to: Phase,
    specs: &std::collections::BTreeMap<String, SpecCheck>,
) -> Result<Phase> {
    let from = index.feature(slug)?.phase;
    if from == to {
        return Err(refuse(
            "invalid_transition",
            format!("feature `{slug}` is already at `{}`", to.as_str()),
        ));
    }
    if to > from {
        let tasks: Vec<&Task> = index.tasks.iter().filter(|t| t.feature == slug).collect();
        let file = |name: &str| repo.state(&format!("tasks/{name}-{slug}.md")).exists();
        if to >= Phase::Prd && !file("prd") {
            return Err(refuse(
                "missing_prd",
                format!(
                    "feature `{slug}` has no tasks/prd-{slug}.md; write it with sop_prd_create"
                ),
            ));
        }
        if to >= Phase::Tasks && tasks.is_empty() {
            return Err(refuse(
                "no_tasks",
                format!("feature `{slug}` has no tasks; generate them with sop_tasks_generate"),
            ));
        }
        if to >= Phase::Plan {
            for task in tasks.iter().filter(|t| !t.status.is_closed()) {
                spec_gates(task, specs.get(&task.id).unwrap_or(&SpecCheck::default()))?;
            }
            if !file("plan") {
                return Err(refuse(
                    "missing_plan",
                    format!(
                        "feature `{slug}` has no tasks/plan-{slug}.md; write it with sop_plan_create"
                    ),
                ));
            }
        }
        if to >= Phase::Done {
            finished(repo, slug, &tasks)?;
        }
    }
    let now = crate::time::now_rfc3339();
    if let Some(feature) = index.features.get_mut(slug) {
        feature.phase = to;
        feature.updated = now;
    }
    Ok(from)
}

/// A feature is done when none of its `tasks` is open and each done one recorded a diff.
fn finished(repo: &Repo, slug: &str, tasks: &[&Task]) -> Result<()> {
    let open: Vec<&str> = tasks
        .iter()
        .filter(|t| !t.status.is_closed())
        .map(|t| t.alias.as_str())
        .collect();
    if !open.is_empty() {
        return Err(refuse(
            "tasks_open",
            format!("feature `{slug}` still has open tasks: {}", open.join(", ")),
        ));
    }
    match tasks
        .iter()
        .find(|t| t.status == Status::Done && !has_diff(repo, t))
    {
        Some(task) => Err(no_diff(task)),
        None => Ok(()),
    }
}

/// Check every spec-required task's spec (for gates that need them all).
pub async fn check_specs(
    repo: &Repo,
    tasks: &[Task],
) -> Result<std::collections::BTreeMap<String, SpecCheck>> {
    let mut out = std::collections::BTreeMap::new();
    for task in tasks.iter().filter(|t| t.spec_required) {
        out.insert(task.id.clone(), check_spec(repo, task).await?);
    }
    Ok(out)
}

/// Check one task's spec.
pub async fn check_spec(repo: &Repo, task: &Task) -> Result<SpecCheck> {
    let Some(spec_ref) = &task.spec_ref else {
        return Ok(SpecCheck::default());
    };
    let path = repo.state(spec_ref);
    if !path.exists() {
        return Ok(SpecCheck::default());
    }
    let meta = crate::spec::read_meta(&path)?;
    let stale = crate::spec::staleness(
        &repo.home,
        &meta,
        crate::time::today(),
        crate::SPEC_MAX_AGE_DAYS,
    )
    .await?;
    Ok(SpecCheck {
        present: true,
        stale,
    })
}
