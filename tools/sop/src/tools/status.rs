use std::collections::BTreeMap;

use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TaskSummary;
use crate::git::git;
use crate::model::{Phase, Status};
use crate::{Repo, SCHEMA_VERSION};

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// Arguments of `sop_status`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// Only this feature's tasks.
    #[serde(default)]
    pub feature: Option<String>,
    /// Only tasks with this status.
    #[serde(default)]
    pub status: Option<Status>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Tasks per page, 1–100 (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Features and a page of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatusOutput {
    /// `schema_version` of the index.
    pub schema_version: u32,
    /// Every feature, with task counts by status.
    pub features: Vec<FeatureSummary>,
    /// This page of tasks.
    pub tasks: Vec<TaskSummary>,
    /// Tasks matching the filters, on all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A feature at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureSummary {
    /// Slug.
    pub feature: String,
    /// Title.
    pub title: String,
    /// Phase.
    pub phase: Phase,
    /// Task counts by status (only non-zero ones).
    pub tasks: BTreeMap<String, usize>,
}

/// `sop_status`.
#[derive(Debug)]
pub struct SopStatus;

impl Tool for SopStatus {
    type Args = StatusArgs;
    type Output = StatusOutput;

    const NAME: &'static str = "sop_status";
    const TITLE: Option<&'static str> = Some("SOP status");
    const DESCRIPTION: &'static str = "Where every feature stands (phase, task counts) and one \
        page of tasks (filter by feature or status; pass next_cursor for more). Start here.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: StatusArgs, ctx: ToolContext) -> baton_kit::Result<StatusOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(crate::SopError::invalid(
                "limit",
                format!("{limit} is not in 1–{MAX_LIMIT}"),
            )
            .into());
        }
        let offset = match &args.cursor {
            Some(cursor) => cursor.parse::<usize>().map_err(|_| {
                crate::SopError::invalid(
                    "cursor",
                    format!("`{cursor}` is not a cursor this tool gave"),
                )
            })?,
            None => 0,
        };
        if let Some(feature) = &args.feature {
            index.feature(feature)?;
        }
        let matching: Vec<_> = index
            .tasks
            .iter()
            .filter(|t| args.feature.as_ref().is_none_or(|f| t.feature == *f))
            .filter(|t| args.status.is_none_or(|s| t.status == s))
            .collect();
        let total = matching.len();
        let tasks = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|t| TaskSummary::of(&index, t))
            .collect();
        let features = index
            .features
            .iter()
            .map(|(slug, feature)| {
                let mut counts = BTreeMap::new();
                for task in index.tasks.iter().filter(|t| t.feature == *slug) {
                    *counts.entry(task.status.as_str().to_owned()).or_insert(0) += 1;
                }
                FeatureSummary {
                    feature: slug.clone(),
                    title: feature.title.clone(),
                    phase: feature.phase,
                    tasks: counts,
                }
            })
            .collect();
        Ok(StatusOutput {
            schema_version: SCHEMA_VERSION,
            features,
            tasks,
            total,
            next_cursor: (offset + limit < total).then(|| (offset + limit).to_string()),
        })
    }
}

/// Arguments of `sop_scaffold_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaffoldArgs {
    /// Repository root (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
}

/// Whether the repository is ready for the SOP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScaffoldOutput {
    /// Every required check passed.
    pub ready: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Whether `ready` depends on it.
    pub required: bool,
    /// What was found, and what to do about it.
    pub detail: String,
}

/// `sop_scaffold_check`.
#[derive(Debug)]
pub struct ScaffoldCheck;

impl Tool for ScaffoldCheck {
    type Args = ScaffoldArgs;
    type Output = ScaffoldOutput;

    const NAME: &'static str = "sop_scaffold_check";
    const TITLE: Option<&'static str> = Some("Check the repository is ready for the SOP");
    const DESCRIPTION: &'static str = "Checks a repository before the SOP starts: a git \
        repository with a commit, a valid tasks/index.json (or none yet), .runs/ and \
        .worktrees/ ignored by git, and PRDs still carrying NEEDS CLARIFICATION markers.";
    const EFFECT: Effect = Effect::Read;

    async fn call(
        &self,
        args: ScaffoldArgs,
        ctx: ToolContext,
    ) -> baton_kit::Result<ScaffoldOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let mut checks = Vec::new();
        let mut check = |name: &str, ok: bool, required: bool, detail: String| {
            checks.push(Check {
                name: name.into(),
                ok,
                required,
                detail,
            });
        };
        let is_git = git(&repo.root, &["rev-parse", "--is-inside-work-tree"])
            .await
            .is_ok();
        check(
            "git_repository",
            is_git,
            true,
            if is_git {
                "a git work tree".into()
            } else {
                "not a git repository: run `git init`".into()
            },
        );
        let head = crate::git::head(&repo.root).await;
        check(
            "has_commit",
            head.is_some(),
            true,
            match &head {
                Some(head) => format!("HEAD is {head}"),
                None => {
                    "no commit yet: specs and worktrees need one; commit something first".into()
                }
            },
        );
        match repo.read_index() {
            Ok(index) => check(
                "index",
                true,
                true,
                format!(
                    "{} feature(s), {} task(s)",
                    index.features.len(),
                    index.tasks.len()
                ),
            ),
            Err(error) => check("index", false, true, error.to_string()),
        }
        for dir in [".runs", ".worktrees"] {
            let ignored = git(&repo.home, &["check-ignore", "-q", &format!("{dir}/x")])
                .await
                .is_ok();
            check(
                &format!("{dir}_ignored"),
                ignored,
                false,
                if ignored {
                    format!("{dir}/ is ignored by git")
                } else {
                    format!(
                        "{dir}/ is not ignored: add `{dir}/` to .gitignore so run records and worktrees stay out of commits"
                    )
                },
            );
        }
        let mut open = Vec::new();
        if let Ok(entries) = std::fs::read_dir(repo.state("tasks")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("prd-") && name.ends_with(".md") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let count = text.matches(crate::render::NEEDS_CLARIFICATION).count();
                    if count > 0 {
                        open.push(format!("tasks/{name} ({count})"));
                    }
                }
            }
        }
        open.sort();
        check(
            "clarifications",
            open.is_empty(),
            false,
            if open.is_empty() {
                "no NEEDS CLARIFICATION markers".into()
            } else {
                format!("NEEDS CLARIFICATION markers left in {}", open.join(", "))
            },
        );
        let ready = checks.iter().all(|c| c.ok || !c.required);
        Ok(ScaffoldOutput { ready, checks })
    }
}
