//! The human-readable files under `tasks/`, rendered from the index and the brief.

use std::fmt::Write as _;

use crate::Brief;
use crate::model::{Index, Task};

/// Marker for what the brief left open; `sop_scaffold_check` and reviewers search for it.
pub const NEEDS_CLARIFICATION: &str = "NEEDS CLARIFICATION";

fn list(out: &mut String, heading: &str, items: &[String], missing: &str) {
    let _ = writeln!(out, "## {heading}\n");
    if items.is_empty() {
        let _ = writeln!(out, "- {NEEDS_CLARIFICATION}: {missing}");
    }
    for item in items {
        let _ = writeln!(out, "- {item}");
    }
    out.push('\n');
}

/// `tasks/prd-<feature>.md`.
pub fn prd(slug: &str, brief: &Brief, date: &str) -> String {
    let mut out = format!(
        "# PRD: {}\n\nFeature `{slug}` · written {date}\n\n",
        brief.title
    );
    out.push_str("## Problem\n\n");
    match &brief.problem {
        Some(problem) => {
            let _ = writeln!(out, "{problem}\n");
        }
        None => {
            let _ = writeln!(
                out,
                "{NEEDS_CLARIFICATION}: what problem does this solve, and for whom?\n"
            );
        }
    }
    if let Some(text) = &brief.text {
        let _ = writeln!(out, "## Context (from the brief)\n\n{text}\n");
    }
    list(
        &mut out,
        "Goals",
        &brief.goals,
        "what does success look like?",
    );
    list(
        &mut out,
        "Non-goals",
        &brief.non_goals,
        "what is out of scope?",
    );
    list(&mut out, "Users", &brief.users, "who uses this?");
    out.push_str("## Requirements\n\n");
    if brief.requirements.is_empty() {
        let _ = writeln!(out, "1. {NEEDS_CLARIFICATION}: what must be built?");
    }
    for (n, requirement) in brief.requirements.iter().enumerate() {
        let _ = write!(out, "{}. **{}**", n + 1, requirement.title);
        if let Some(description) = &requirement.description {
            let _ = write!(out, " — {description}");
        }
        let triggers = requirement.spec_triggers();
        if !triggers.is_empty() {
            let names: Vec<&str> = triggers.iter().map(|t| t.as_str()).collect();
            let _ = write!(out, " _(spec: {})_", names.join(", "));
        }
        out.push('\n');
    }
    out.push('\n');
    list(
        &mut out,
        "Success metrics",
        &brief.success_metrics,
        "how will we measure success?",
    );
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

fn task_line(out: &mut String, index: &Index, task: &Task) {
    let _ = write!(
        out,
        "- [{}] **{}** {} — `{}`, {}",
        if task.status.is_closed() { "x" } else { " " },
        task.alias,
        task.title,
        task.status.as_str(),
        task.priority.as_str()
    );
    if task.spec_required {
        match &task.spec_ref {
            Some(spec) => {
                let _ = write!(out, ", spec [{spec}](../{spec})");
            }
            None => out.push_str(", **spec required**"),
        }
    }
    let deps: Vec<&str> = task
        .dependencies
        .iter()
        .filter_map(|id| index.tasks.iter().find(|t| t.id == *id))
        .map(|t| t.alias.as_str())
        .collect();
    if !deps.is_empty() {
        let _ = write!(out, ", after {}", deps.join(", "));
    }
    if let Some(claim) = &task.claimed_by {
        let _ = write!(out, ", claimed by `{}`", claim.agent);
    }
    out.push('\n');
}

/// `tasks/tasks-<feature>.md`: the task list as a checklist, re-rendered on every change.
pub fn tasks(index: &Index, slug: &str) -> String {
    let title = index.features.get(slug).map_or(slug, |f| f.title.as_str());
    let mut out = format!(
        "# Tasks: {title}\n\nRendered from `tasks/index.json` (the source of truth); edits here are overwritten.\n\n"
    );
    for task in index.tasks.iter().filter(|t| t.feature == slug) {
        task_line(&mut out, index, task);
    }
    out
}

/// The feature's open tasks in the order to do them: dependencies first, then priority,
/// then creation order.
pub fn plan_order<'a>(index: &'a Index, slug: &str) -> Vec<&'a Task> {
    let mut left: Vec<&Task> = index
        .tasks
        .iter()
        .filter(|t| t.feature == slug && t.status != crate::Status::Cancelled)
        .collect();
    left.sort_by_key(|t| t.priority);
    let mut done: Vec<&str> = index
        .tasks
        .iter()
        .filter(|t| t.feature != slug || t.status == crate::Status::Cancelled)
        .map(|t| t.id.as_str())
        .collect();
    let mut order = Vec::new();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|t| t.dependencies.iter().all(|d| done.contains(&d.as_str())))
            // A dependency cycle: take the rest as they come rather than loop.
            .unwrap_or(0);
        let task = left.remove(ready);
        done.push(task.id.as_str());
        order.push(task);
    }
    order
}

/// `tasks/plan-<feature>.md`.
pub fn plan(index: &Index, slug: &str, notes: Option<&str>, date: &str) -> String {
    let title = index.features.get(slug).map_or(slug, |f| f.title.as_str());
    let mut out = format!("# Action plan: {title}\n\nFeature `{slug}` · written {date}\n\n");
    if let Some(notes) = notes {
        let _ = writeln!(out, "{notes}\n");
    }
    out.push_str("## Order of work\n\n");
    for (n, task) in plan_order(index, slug).into_iter().enumerate() {
        let _ = write!(out, "{}. ", n + 1);
        let mut line = String::new();
        task_line(&mut line, index, task);
        out.push_str(line.trim_start_matches("- "));
    }
    out.push_str(
        "\n## Definition of done\n\nEach task: claimed, worked in its own worktree, a diff recorded with `repo_diff`, tests passing, advanced with `sop_advance`.\n",
    );
    out
}
