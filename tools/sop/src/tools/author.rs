use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{TaskSummary, blocking, check_slug};
use crate::fsx::write_atomic;
use crate::gates::{SpecCheck, check_specs};
use crate::mirror::{Mirror, append_section};
use crate::model::{Feature, Phase, Status, Task};
use crate::repo::Access;
use crate::spec::SpecMeta;
use crate::time::{now_rfc3339, today};
use crate::{Brief, Repo, Requirement, SopError, render};

const REPO_PATH: &[&str] = &["/repo"];

/// Arguments of `sop_prd_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrdArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Feature slug: lowercase letters, digits, dashes (e.g. `rate-limiting`).
    pub feature: String,
    /// The structured brief. Without one, give `text`: the PRD is then a skeleton with
    /// NEEDS CLARIFICATION markers.
    #[serde(default)]
    pub brief: Option<Brief>,
    /// A free-text brief (an issue body, notes), used when `brief` is absent.
    #[serde(default)]
    pub text: Option<String>,
    /// Require a passing test report (besides a diff) before any task of the feature is done.
    #[serde(default)]
    pub require_tests: Option<bool>,
}

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

/// `sop_prd_create`.
#[derive(Debug)]
pub struct PrdCreate;

impl Tool for PrdCreate {
    type Args = PrdArgs;
    type Output = PrdOutput;

    const NAME: &'static str = "sop_prd_create";
    const TITLE: Option<&'static str> = Some("Write a feature's PRD");
    const DESCRIPTION: &'static str = "Writes tasks/prd-<feature>.md from a structured brief \
        (title, problem, goals, requirements…) or, from free text, a skeleton with NEEDS \
        CLARIFICATION markers; registers the feature in tasks/index.json and appends a dated \
        section to docs/PRD.md. Re-running revises the PRD; the mirror keeps every version.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: PrdArgs, ctx: ToolContext) -> baton_kit::Result<PrdOutput> {
        check_slug(&args.feature)?;
        let brief = match (args.brief, args.text) {
            (Some(mut brief), text) => {
                if brief.title.trim().is_empty() {
                    return Err(SopError::invalid("brief.title", "is empty").into());
                }
                if brief.text.is_none() {
                    brief.text = text;
                }
                brief
            }
            (None, Some(text)) if !text.trim().is_empty() => Brief {
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
            },
            (None, _) => {
                return Err(SopError::invalid(
                    "brief",
                    "give a structured `brief` or a free-text `text`",
                )
                .into());
            }
        };
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let slug = args.feature;
        let require_tests = args.require_tests;
        let out = blocking(move || {
            repo.update(|index| {
                let date = today().to_string();
                let markdown = render::prd(&slug, &brief, &date);
                let prd = format!("tasks/prd-{slug}.md");
                write_atomic(repo.files()?, &repo.state(&prd), markdown.as_bytes())?;
                let now = now_rfc3339();
                let feature = index
                    .features
                    .entry(slug.clone())
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
                    phase: feature.phase,
                    prd,
                    clarifications,
                    requirements: brief.requirements.len(),
                })
            })
        })
        .await?;
        Ok(out)
    }
}

/// Arguments of `sop_tasks_generate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TasksArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Feature slug; its PRD must exist.
    pub feature: String,
    /// The tasks to add. Absent: one task per requirement of the feature's brief.
    #[serde(default)]
    pub tasks: Option<Vec<Requirement>>,
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

/// `sop_tasks_generate`.
#[derive(Debug)]
pub struct TasksGenerate;

impl Tool for TasksGenerate {
    type Args = TasksArgs;
    type Output = TasksOutput;

    const NAME: &'static str = "sop_tasks_generate";
    const TITLE: Option<&'static str> = Some("Generate a feature's tasks");
    const DESCRIPTION: &'static str = "Adds tasks to a feature — the given ones, or one per \
        requirement of its PRD brief — with collision-free ids, short aliases, dependencies \
        and spec triggers (security, migration, cross_service, novel_pattern: such tasks need \
        a mini-spec). Renders tasks/tasks-<feature>.md; appends to docs/TECH_SPEC.md.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: TasksArgs, ctx: ToolContext) -> baton_kit::Result<TasksOutput> {
        check_slug(&args.feature)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let slug = args.feature;
        let given = args.tasks;
        let out = blocking(move || {
            repo.update(|index| {
                let feature = index.feature(&slug)?;
                if !repo.state(&format!("tasks/prd-{slug}.md")).exists() {
                    return Err(SopError::Gate {
                        gate: "missing_prd",
                        reason: format!("feature `{slug}` has no PRD; write it with sop_prd_create"),
                    });
                }
                let drafts = match given {
                    Some(tasks) => tasks,
                    None => feature.brief.as_ref().map(|b| b.requirements.clone()).unwrap_or_default(),
                };
                if drafts.is_empty() {
                    return Err(SopError::invalid(
                        "tasks",
                        "there is nothing to generate: the brief lists no requirements; pass `tasks` or revise the PRD",
                    ));
                }
                for (n, draft) in drafts.iter().enumerate() {
                    if draft.title.trim().is_empty() {
                        return Err(SopError::invalid("tasks", format!("task {} has an empty title", n + 1)));
                    }
                    if let Some(bad) = draft.depends_on.iter().find(|&&d| d == 0 || d > drafts.len() || d == n + 1) {
                        return Err(SopError::invalid(
                            "tasks",
                            format!("task {} depends on {bad}, which is not another task of this list (1–{})", n + 1, drafts.len()),
                        ));
                    }
                }
                let now = now_rfc3339();
                let ids: Vec<String> = drafts.iter().map(|_| ulid::Ulid::new().to_string()).collect();
                let mut created = Vec::new();
                for (draft, id) in drafts.iter().zip(&ids) {
                    let triggers = draft.spec_triggers();
                    let task = Task {
                        id: id.clone(),
                        alias: index.fresh_alias(id),
                        feature: slug.clone(),
                        title: draft.title.trim().to_owned(),
                        description: draft.description.clone().unwrap_or_default(),
                        status: Status::Pending,
                        dependencies: draft.depends_on.iter().map(|&d| ids[d - 1].clone()).collect(),
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
                if let Some(feature) = index.features.get_mut(&slug) {
                    feature.phase = feature.phase.max(Phase::Tasks);
                    feature.updated = now;
                }
                let tasks_doc = format!("tasks/tasks-{slug}.md");
                write_atomic(repo.files()?, &repo.state(&tasks_doc), render::tasks(index, &slug).as_bytes())?;
                let summaries: Vec<TaskSummary> =
                    created.iter().map(|&at| TaskSummary::of(index, &index.tasks[at])).collect();
                let lines: Vec<String> = summaries
                    .iter()
                    .map(|t| format!("- {} {}{}", t.alias, t.title, if t.spec_required { " (spec required)" } else { "" }))
                    .collect();
                append_section(
                    &repo,
                    Mirror::TechSpec,
                    &slug,
                    "tasks generated",
                    &format!("{} task(s):\n\n{}", summaries.len(), lines.join("\n")),
                    &tasks_doc,
                )?;
                Ok(TasksOutput {
                    feature: slug.clone(),
                    phase: index.feature(&slug)?.phase,
                    created: summaries,
                    tasks_doc,
                })
            })
        })
        .await?;
        Ok(out)
    }
}

/// Arguments of `sop_spec_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Task id or alias.
    pub task: String,
    /// What the change does and why, in a paragraph.
    pub summary: String,
    /// Files the spec governs (relative to the repository root): when they change after this
    /// review, the spec is stale.
    #[serde(default)]
    pub files: Vec<String>,
    /// The design: interfaces, data, flows.
    #[serde(default)]
    pub design: Option<String>,
    /// Risks and how they are handled.
    #[serde(default)]
    pub risks: Vec<String>,
    /// How the change is tested.
    #[serde(default)]
    pub test_plan: Vec<String>,
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

/// `sop_spec_create`.
#[derive(Debug)]
pub struct SpecCreate;

impl Tool for SpecCreate {
    type Args = SpecArgs;
    type Output = SpecOutput;

    const NAME: &'static str = "sop_spec_create";
    const TITLE: Option<&'static str> = Some("Write or re-review a task's mini-spec");
    const DESCRIPTION: &'static str = "Writes tasks/specs/<task id>.md: summary, design, risks, \
        test plan, and front matter recording today as last_review, HEAD as reviewed_ref and \
        the files it governs. Re-running re-reviews it (a stale spec becomes fresh). Appends \
        to docs/TECH_SPEC.md.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: SpecArgs, ctx: ToolContext) -> baton_kit::Result<SpecOutput> {
        if args.summary.trim().is_empty() {
            return Err(SopError::invalid("summary", "is empty").into());
        }
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        for file in &args.files {
            crate::repo::confine(&repo.home, file, Access::Read)?;
        }
        let reviewed_ref = crate::git::head(&repo.home).await;
        let out = blocking(move || {
            repo.update(|index| {
                let at = index.find(&args.task)?;
                let task = index.tasks[at].clone();
                let meta = SpecMeta {
                    task: task.id.clone(),
                    last_review: today().to_string(),
                    reviewed_ref,
                    files: args.files.clone(),
                };
                let mut body = format!(
                    "# Spec: {} ({})\n\n## Summary\n\n{}\n\n",
                    task.title,
                    task.alias,
                    args.summary.trim()
                );
                if !task.spec_triggers.is_empty() {
                    let names: Vec<&str> = task.spec_triggers.iter().map(|t| t.as_str()).collect();
                    body.push_str(&format!("Triggers: {}\n\n", names.join(", ")));
                }
                body.push_str(&format!(
                    "## Design\n\n{}\n\n",
                    args.design
                        .as_deref()
                        .unwrap_or("NEEDS CLARIFICATION: interfaces, data and flows.")
                ));
                for (heading, items) in [("Risks", &args.risks), ("Test plan", &args.test_plan)] {
                    body.push_str(&format!("## {heading}\n\n"));
                    if items.is_empty() {
                        body.push_str("- NEEDS CLARIFICATION\n");
                    }
                    for item in items {
                        body.push_str(&format!("- {item}\n"));
                    }
                    body.push('\n');
                }
                if !meta.files.is_empty() {
                    body.push_str("## Files\n\n");
                    for file in &meta.files {
                        body.push_str(&format!("- `{file}`\n"));
                    }
                }
                let spec = format!("tasks/specs/{}.md", task.id);
                write_atomic(
                    repo.files()?,
                    &repo.state(&spec),
                    crate::spec::render(&meta, &body)?.as_bytes(),
                )?;
                let now = now_rfc3339();
                let entry = &mut index.tasks[at];
                entry.spec_ref = Some(spec.clone());
                entry.updated = now.clone();
                if let Some(feature) = index.features.get_mut(&task.feature)
                    && feature.phase == Phase::Tasks
                {
                    feature.phase = Phase::Spec;
                    feature.updated = now;
                }
                write_atomic(
                    repo.files()?,
                    &repo.state(&format!("tasks/tasks-{}.md", task.feature)),
                    render::tasks(index, &task.feature).as_bytes(),
                )?;
                append_section(
                    &repo,
                    Mirror::TechSpec,
                    &task.feature,
                    &format!("spec for {}", task.alias),
                    &format!(
                        "**{}** — reviewed {} at `{}`; governs {}.",
                        task.title,
                        meta.last_review,
                        meta.reviewed_ref.as_deref().unwrap_or("no commit"),
                        if meta.files.is_empty() {
                            "no files".to_owned()
                        } else {
                            meta.files.join(", ")
                        }
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
        .await?;
        Ok(out)
    }
}

/// Arguments of `sop_plan_create`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Feature slug.
    pub feature: String,
    /// Notes to put at the top of the plan (milestones, rollout).
    #[serde(default)]
    pub notes: Option<String>,
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

/// `sop_plan_create`.
#[derive(Debug)]
pub struct PlanCreate;

impl Tool for PlanCreate {
    type Args = PlanArgs;
    type Output = PlanOutput;

    const NAME: &'static str = "sop_plan_create";
    const TITLE: Option<&'static str> = Some("Write a feature's action plan");
    const DESCRIPTION: &'static str = "Writes tasks/plan-<feature>.md: the open tasks in the \
        order to do them (dependencies, then priority). Refuses while a task that requires a \
        mini-spec has none or a stale one (gates spec_missing, spec_stale). Appends to \
        docs/ACTION_PLAN.md.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: PlanArgs, ctx: ToolContext) -> baton_kit::Result<PlanOutput> {
        check_slug(&args.feature)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let before = repo.read_index()?;
        let specs = check_specs(&repo, &before.tasks).await?;
        let slug = args.feature;
        let out = blocking(move || {
            repo.update(|index| {
                index.feature(&slug)?;
                let tasks: Vec<&Task> = index.tasks.iter().filter(|t| t.feature == slug).collect();
                if tasks.is_empty() {
                    return Err(SopError::Gate {
                        gate: "no_tasks",
                        reason: format!("feature `{slug}` has no tasks; generate them with sop_tasks_generate"),
                    });
                }
                for task in tasks.iter().filter(|t| t.spec_required && !t.status.is_closed()) {
                    let check = specs.get(&task.id).cloned().unwrap_or_else(SpecCheck::default);
                    if task.spec_ref.is_none() || !check.present {
                        return Err(SopError::Gate {
                            gate: "spec_missing",
                            reason: format!("task {} requires a mini-spec and has none; write it with sop_spec_create", task.alias),
                        });
                    }
                    if let Some(why) = check.stale.first() {
                        return Err(SopError::Gate {
                            gate: "spec_stale",
                            reason: format!("the spec of task {} is stale: {}", task.alias, why.describe()),
                        });
                    }
                }
                let date = today().to_string();
                let plan = format!("tasks/plan-{slug}.md");
                write_atomic(repo.files()?, &repo.state(&plan), render::plan(index, &slug, args.notes.as_deref(), &date).as_bytes())?;
                let order: Vec<String> = render::plan_order(index, &slug).iter().map(|t| t.alias.clone()).collect();
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
        .await?;
        Ok(out)
    }
}

/// Arguments of `sop_mirror`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MirrorArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Which mirror.
    pub doc: Mirror,
    /// Feature slug.
    pub feature: String,
    /// A note to add to the snapshot.
    #[serde(default)]
    pub note: Option<String>,
}

/// The section appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MirrorOutput {
    /// The mirror, relative to the repository root.
    pub path: String,
    /// What the section says.
    pub summary: String,
}

/// `sop_mirror`.
#[derive(Debug)]
pub struct MirrorTool;

impl Tool for MirrorTool {
    type Args = MirrorArgs;
    type Output = MirrorOutput;

    const NAME: &'static str = "sop_mirror";
    const TITLE: Option<&'static str> = Some("Append a status snapshot to a docs/ mirror");
    const DESCRIPTION: &'static str = "Appends a dated snapshot of a feature (phase, task counts, \
        an optional note) to docs/PRD.md, docs/TECH_SPEC.md or docs/ACTION_PLAN.md. Mirrors are \
        append-only; the SOP tools already add a section at every step.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = REPO_PATH;

    async fn call(&self, args: MirrorArgs, ctx: ToolContext) -> baton_kit::Result<MirrorOutput> {
        check_slug(&args.feature)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let out = blocking(move || {
            repo.update(|index| {
                let feature = index.feature(&args.feature)?;
                let mut counts = std::collections::BTreeMap::<&str, usize>::new();
                for task in index.tasks.iter().filter(|t| t.feature == args.feature) {
                    *counts.entry(task.status.as_str()).or_default() += 1;
                }
                let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                let mut summary = format!(
                    "Phase `{}`; tasks: {}.",
                    feature.phase.as_str(),
                    if counts.is_empty() {
                        "none".to_owned()
                    } else {
                        counts.join(", ")
                    }
                );
                if let Some(note) = &args.note {
                    summary.push_str(&format!("\n\n{note}"));
                }
                append_section(
                    &repo,
                    args.doc,
                    &args.feature,
                    "snapshot",
                    &summary,
                    crate::state::INDEX,
                )?;
                Ok(MirrorOutput {
                    path: args.doc.path().into(),
                    summary,
                })
            })
        })
        .await?;
        Ok(out)
    }
}
