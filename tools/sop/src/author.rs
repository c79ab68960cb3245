//! Writing the SOP's documents — a feature's PRD, its tasks, a task's mini-spec, the plan —
//! each inside one locked index update, so the files, the index and the mirror section that
//! records the step stay consistent with one another.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsx::write_atomic;
use crate::gates::{SpecCheck, check_specs};
use crate::mirror::{Mirror, append_section};
use crate::model::{Feature, Index, Phase, Status, Task};
use crate::repo::Access;
use crate::spec::SpecMeta;
use crate::time::{now_rfc3339, today};
use crate::tools::{TaskSummary, blocking};
use crate::{Brief, Repo, Requirement, Result, SopError, render};

/// A written PRD.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PrdOutput {
    /// Feature slug.
    pub feature: String,
    /// Its phase now.
    pub phase: Phase,
    /// The PRD, relative to the repository root.
    pub prd: String,
    /// NEEDS CLARIFICATION markers left in it.
    pub clarifications: usize,
    /// Requirements it lists (each becomes a task with sop_tasks_generate).
    pub requirements: usize,
}

/// Tasks added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TasksOutput {
    /// Feature slug.
    pub feature: String,
    /// Its phase now.
    pub phase: Phase,
    /// The tasks created.
    pub created: Vec<TaskSummary>,
    /// The rendered task list, relative to the repository root.
    pub tasks_doc: String,
}

/// A written mini-spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SpecOutput {
    /// The task's alias.
    pub task: String,
    /// The spec, relative to the repository root.
    pub spec: String,
    /// Its front matter.
    pub meta: SpecMeta,
}

/// A written plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanOutput {
    /// Feature slug.
    pub feature: String,
    /// Its phase now.
    pub phase: Phase,
    /// The plan, relative to the repository root.
    pub plan: String,
    /// Task aliases in the order to do them.
    pub order: Vec<String>,
}

/// What a mini-spec says, as its author gave it.
#[derive(Debug)]
pub(crate) struct SpecDraft {
    pub(crate) summary: String,
    /// Files it governs, relative to the repository root.
    pub(crate) files: Vec<String>,
    pub(crate) design: Option<String>,
    pub(crate) risks: Vec<String>,
    pub(crate) test_plan: Vec<String>,
}

/// The brief a PRD is written from: the structured one (its free text filled from `text`),
/// or a skeleton titled by the first line of `text`.
pub(crate) fn brief_of(brief: Option<Brief>, text: Option<String>) -> Result<Brief> {
    match (brief, text) {
        (Some(mut brief), text) => {
            if brief.title.trim().is_empty() {
                return Err(SopError::invalid("brief.title", "is empty"));
            }
            if brief.text.is_none() {
                brief.text = text;
            }
            Ok(brief)
        }
        (None, Some(text)) if !text.trim().is_empty() => Ok(Brief {
            title: text
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .trim_start_matches('#')
                .trim()
                .to_owned(),
            text: Some(text),
            ..Brief::default()
        }),
        (None, _) => Err(SopError::invalid(
            "brief",
            "give a structured `brief` or a free-text `text`",
        )),
    }
}

/// Write (or revise) the PRD of feature `slug`, registering the feature.
pub(crate) async fn prd(
    repo: Repo,
    slug: String,
    brief: Brief,
    require_tests: Option<bool>,
) -> Result<PrdOutput> {
    blocking(move || {
        repo.update(|index| {
            let date = today().to_string();
            let markdown = render::prd(&slug, &brief, &date);
            let prd = format!("tasks/prd-{slug}.md");
            write_atomic(repo.files()?, &repo.state(&prd), markdown.as_bytes())?;
            let phase = register(index, &slug, &brief, require_tests);
            let clarifications = markdown.matches(render::NEEDS_CLARIFICATION).count();
            append_section(
                &repo,
                Mirror::Prd,
                &slug,
                "PRD written",
                &format!(
                    "**{}** — {} requirement(s), {clarifications} open question(s).",
                    brief.title,
                    brief.requirements.len()
                ),
                &prd,
            )?;
            Ok(PrdOutput {
                feature: slug.clone(),
                phase,
                prd,
                clarifications,
                requirements: brief.requirements.len(),
            })
        })
    })
    .await
}

/// Register feature `slug` with `brief` (or update it), at least at phase `prd`; its phase.
fn register(index: &mut Index, slug: &str, brief: &Brief, require_tests: Option<bool>) -> Phase {
    let now = now_rfc3339();
    let feature = index
        .features
        .entry(slug.to_owned())
        .or_insert_with(|| Feature {
            title: brief.title.clone(),
            phase: Phase::Scaffold,
            brief: None,
            require_tests: false,
            created: now.clone(),
            updated: now.clone(),
        });
    feature.title.clone_from(&brief.title);
    feature.brief = Some(brief.clone());
    if let Some(require) = require_tests {
        feature.require_tests = require;
    }
    feature.phase = feature.phase.max(Phase::Prd);
    feature.updated = now;
    feature.phase
}

/// Add tasks to feature `slug`: `given`, or one per requirement of its brief.
pub(crate) async fn tasks(
    repo: Repo,
    slug: String,
    given: Option<Vec<Requirement>>,
) -> Result<TasksOutput> {
    blocking(move || repo.update(|index| generate(&repo, index, &slug, given))).await
}

/// Inside the index lock: check the drafts, add them as tasks, render the list, note it.
fn generate(
    repo: &Repo,
    index: &mut Index,
    slug: &str,
    given: Option<Vec<Requirement>>,
) -> Result<TasksOutput> {
    let feature = index.feature(slug)?;
    if !repo.state(&format!("tasks/prd-{slug}.md")).exists() {
        return Err(SopError::Gate {
            gate: "missing_prd",
            reason: format!("feature `{slug}` has no PRD; write it with sop_prd_create"),
        });
    }
    let drafts = match given {
        Some(tasks) => tasks,
        None => feature
            .brief
            .as_ref()
            .map(|b| b.requirements.clone())
            .unwrap_or_default(),
    };
    check_drafts(&drafts)?;
    let created = add_tasks(index, slug, &drafts);
    let tasks_doc = repo.write_task_list(index, slug)?;
    let summaries: Vec<TaskSummary> = created
        .iter()
        .map(|&at| TaskSummary::of(index, &index.tasks[at]))
        .collect();
    let lines: Vec<String> = summaries
        .iter()
        .map(|t| {
            let spec = if t.spec_required {
                " (spec required)"
            } else {
                ""
            };
            format!("- {} {}{spec}", t.alias, t.title)
        })
        .collect();
    append_section(
        repo,
        Mirror::TechSpec,
        slug,
        "tasks generated",
        &format!("{} task(s):\n\n{}", summaries.len(), lines.join("\n")),
        &tasks_doc,
    )?;
    Ok(TasksOutput {
        feature: slug.to_owned(),
        phase: index.feature(slug)?.phase,
        created: summaries,
        tasks_doc,
    })
}

/// Refuse an empty list, an untitled task, or a dependency that is not another task of it.
fn check_drafts(drafts: &[Requirement]) -> Result<()> {
    if drafts.is_empty() {
        return Err(SopError::invalid(
            "tasks",
            "there is nothing to generate: the brief lists no requirements; pass `tasks` or revise the PRD",
        ));
    }
    for (n, draft) in drafts.iter().enumerate() {
        if draft.title.trim().is_empty() {
            return Err(SopError::invalid(
                "tasks",
                format!("task {} has an empty title", n + 1),
            ));
        }
        if let Some(bad) = draft
            .depends_on
            .iter()
            .find(|&&d| d == 0 || d > drafts.len() || d == n + 1)
        {
            return Err(SopError::invalid(
                "tasks",
                format!(
                    "task {} depends on {bad}, which is not another task of this list (1–{})",
                    n + 1,
                    drafts.len()
                ),
            ));
        }
    }
    Ok(())
}

/// Push one task per draft (fresh ids, dependencies by position) and move the feature to at
/// least `tasks`; the positions of the new tasks in the index.
fn add_tasks(index: &mut Index, slug: &str, drafts: &[Requirement]) -> Vec<usize> {
    let now = now_rfc3339();
    let ids: Vec<String> = drafts
        .iter()
        .map(|_| ulid::Ulid::new().to_string())
        .collect();
    let mut created = Vec::new();
    for (draft, id) in drafts.iter().zip(&ids) {
        let triggers = draft.spec_triggers();
        let task = Task {
            id: id.clone(),
            alias: index.fresh_alias(id),
            feature: slug.to_owned(),
            title: draft.title.trim().to_owned(),
            description: draft.description.clone().unwrap_or_default(),
            status: Status::Pending,
            dependencies: draft
                .depends_on
                .iter()
                .map(|&d| ids[d - 1].clone())
                .collect(),
            priority: draft.priority.unwrap_or_default(),
            spec_required: !triggers.is_empty(),
            spec_triggers: triggers,
            spec_ref: None,
            claimed_by: None,
            runs: Vec::new(),
            metadata: Default::default(),
            created: now.clone(),
            updated: now.clone(),
        };
        index.tasks.push(task);
        created.push(index.tasks.len() - 1);
    }
    if let Some(feature) = index.features.get_mut(slug) {
        feature.phase = feature.phase.max(Phase::Tasks);
        feature.updated = now;
    }
    created
}

/// Write (or re-review) the mini-spec of task `key`, reviewed at HEAD today.
pub(crate) async fn spec(repo: Repo, key: String, draft: SpecDraft) -> Result<SpecOutput> {
    for file in &draft.files {
        crate::repo::confine(&repo.home, file, Access::Read)?;
    }
    let reviewed_ref = crate::git::head(&repo.home).await;
    blocking(move || {
        repo.update(|index| {
            let at = index.find(&key)?;
            let task = index.tasks[at].clone();
            let meta = SpecMeta {
                task: task.id.clone(),
                last_review: today().to_string(),
                reviewed_ref,
                files: draft.files.clone(),
            };
            let spec = format!("tasks/specs/{}.md", task.id);
            write_atomic(
                repo.files()?,
                &repo.state(&spec),
                crate::spec::render(&meta, &spec_body(&task, &draft, &meta))?.as_bytes(),
            )?;
            link_spec(index, at, &spec);
            repo.write_task_list(index, &task.feature)?;
            let governs = if meta.files.is_empty() {
                "no files".to_owned()
            } else {
                meta.files.join(", ")
            };
            append_section(
                &repo,
                Mirror::TechSpec,
                &task.feature,
                &format!("spec for {}", task.alias),
                &format!(
                    "**{}** — reviewed {} at `{}`; governs {governs}.",
                    task.title,
                    meta.last_review,
                    meta.reviewed_ref.as_deref().unwrap_or("no commit"),
                ),
                &spec,
            )?;
            Ok(SpecOutput {
                task: task.alias,
                spec,
                meta,
            })
        })
    })
    .await
}

/// The spec's Markdown below its front matter.
fn spec_body(task: &Task, draft: &SpecDraft, meta: &SpecMeta) -> String {
    let mut body = format!(
        "# Spec: {} ({})\n\n## Summary\n\n{}\n\n",
        task.title,
        task.alias,
        draft.summary.trim()
    );
    if !task.spec_triggers.is_empty() {
        let names: Vec<&str> = task.spec_triggers.iter().map(|t| t.as_str()).collect();
        let _ = write!(body, "Triggers: {}\n\n", names.join(", "));
    }
    let _ = write!(
        body,
        "## Design\n\n{}\n\n",
        draft
            .design
            .as_deref()
            .unwrap_or("NEEDS CLARIFICATION: interfaces, data and flows.")
    );
    for (heading, items) in [("Risks", &draft.risks), ("Test plan", &draft.test_plan)] {
        let _ = write!(body, "## {heading}\n\n");
        if items.is_empty() {
            body.push_str("- NEEDS CLARIFICATION\n");
        }
        for item in items {
            let _ = writeln!(body, "- {item}");
        }
        body.push('\n');
    }
    if !meta.files.is_empty() {
        body.push_str("## Files\n\n");
        for file in &meta.files {
            let _ = writeln!(body, "- `{file}`");
        }
    }
    body
}

/// Point task `at` at its spec, and move its feature from `tasks` to `spec`.
fn link_spec(index: &mut Index, at: usize, spec: &str) {
    let now = now_rfc3339();
    let entry = &mut index.tasks[at];
    entry.spec_ref = Some(spec.to_owned());
    entry.updated = now.clone();
    let feature = entry.feature.clone();
    if let Some(feature) = index.features.get_mut(&feature)
        && feature.phase == Phase::Tasks
    {
        feature.phase = Phase::Spec;
        feature.updated = now;
    }
}

/// Write the plan of feature `slug`: its open tasks in the order to do them.
pub(crate) async fn plan(repo: Repo, slug: String, notes: Option<String>) -> Result<PlanOutput> {
    // The specs are checked (which runs git) before the lock, on the index as it is now.
    let before = repo.read_index()?;
    let specs = check_specs(&repo, &before.tasks).await?;
    blocking(move || {
        repo.update(|index| {
            plan_gates(index, &slug, &specs)?;
            let date = today().to_string();
            let plan = format!("tasks/plan-{slug}.md");
            write_atomic(
                repo.files()?,
                &repo.state(&plan),
                render::plan(index, &slug, notes.as_deref(), &date).as_bytes(),
            )?;
            let order: Vec<String> = render::plan_order(index, &slug)
                .iter()
                .map(|t| t.alias.clone())
                .collect();
            if let Some(feature) = index.features.get_mut(&slug) {
                feature.phase = feature.phase.max(Phase::Plan);
                feature.updated = now_rfc3339();
            }
            append_section(
                &repo,
                Mirror::ActionPlan,
                &slug,
                "plan written",
                &format!("Order of work: {}.", order.join(" → ")),
                &plan,
            )?;
            Ok(PlanOutput {
                feature: slug.clone(),
                phase: index.feature(&slug)?.phase,
                plan,
                order,
            })
        })
    })
    .await
}

/// A plan needs the feature to have tasks, and every open one that requires a spec to have
/// a fresh one.
fn plan_gates(index: &Index, slug: &str, specs: &BTreeMap<String, SpecCheck>) -> Result<()> {
    index.feature(slug)?;
    let tasks: Vec<&Task> = index.tasks.iter().filter(|t| t.feature == slug).collect();
    if tasks.is_empty() {
        return Err(SopError::Gate {
            gate: "no_tasks",
            reason: format!("feature `{slug}` has no tasks; generate them with sop_tasks_generate"),
        });
    }
    for task in tasks
        .iter()
        .filter(|t| t.spec_required && !t.status.is_closed())
    {
        let check = specs.get(&task.id).cloned().unwrap_or_default();
        if task.spec_ref.is_none() || !check.present {
            return Err(SopError::Gate {
                gate: "spec_missing",
                reason: format!(
                    "task {} requires a mini-spec and has none; write it with sop_spec_create",
                    task.alias
                ),
            });
        }
        if let Some(why) = check.stale.first() {
            return Err(SopError::Gate {
                gate: "spec_stale",
                reason: format!(
                    "the spec of task {} is stale: {}",
                    task.alias,
                    why.describe()
                ),
            });
        }
    }
    Ok(())
}
