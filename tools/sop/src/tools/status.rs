use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::model::Status;
use crate::scaffold::ScaffoldOutput;
use crate::status::{Page, StatusOutput};
use crate::{Repo, SopError};

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
            return Err(
                SopError::invalid("limit", format!("{limit} is not in 1–{MAX_LIMIT}")).into(),
            );
        }
        let page = Page {
            feature: args.feature.as_deref(),
            status: args.status,
            cursor: args.cursor.as_deref(),
            limit,
        };
        Ok(crate::status::status(&index, &page)?)
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
        Ok(crate::scaffold::check(&repo).await)
    }
}
