use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::Deserialize;

use super::check_slug;
use crate::author::{self, PlanOutput, PrdOutput, SpecDraft, SpecOutput, TasksOutput};
use crate::mirror::MirrorOutput;
use crate::{Brief, Mirror, Repo, Requirement, SopError};

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
        let brief = author::brief_of(args.brief, args.text)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        Ok(author::prd(repo, args.feature, brief, args.require_tests).await?)
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
        Ok(author::tasks(repo, args.feature, args.tasks).await?)
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
        let draft = SpecDraft {
            summary: args.summary,
            files: args.files,
            design: args.design,
            risks: args.risks,
            test_plan: args.test_plan,
        };
        Ok(author::spec(repo, args.task, draft).await?)
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
        Ok(author::plan(repo, args.feature, args.notes).await?)
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
        Ok(crate::mirror::snapshot(repo, args.doc, args.feature, args.note).await?)
    }
}
