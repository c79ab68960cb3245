use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::guard::{GuardReport, guard, sarif};
use crate::{Repo, SPEC_MAX_AGE_DAYS};

/// Output format of the spec guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardFormat {
    /// The report only.
    #[default]
    Json,
    /// The report and a SARIF 2.1.0 log.
    Sarif,
}

/// Arguments of `sop_spec_guard`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// A spec older than this many days is stale (default 30).
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// `json` (default) or `sarif`.
    #[serde(default)]
    pub format: GuardFormat,
}

/// The guard's findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GuardOutput {
    /// What was found.
    pub report: GuardReport,
    /// The SARIF 2.1.0 log, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "baton_kit::any_object")]
    pub sarif: Option<serde_json::Value>,
}

/// `sop_spec_guard`.
#[derive(Debug)]
pub struct SpecGuard;

impl Tool for SpecGuard {
    type Args = GuardArgs;
    type Output = GuardOutput;

    const NAME: &'static str = "sop_spec_guard";
    const TITLE: Option<&'static str> = Some("Find missing and stale mini-specs");
    const DESCRIPTION: &'static str = "Lists tasks whose required mini-spec is missing or \
        stale: last_review older than 30 days (or max_age_days), or files the spec names \
        changed since the commit it was reviewed at. JSON, or SARIF for CI. The same check \
        runs as `baton sop guard` in a pre-commit hook.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: GuardArgs, ctx: ToolContext) -> baton_kit::Result<GuardOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let max_age = args.max_age_days.map_or(SPEC_MAX_AGE_DAYS, i64::from);
        let report = guard(&repo, max_age, crate::time::today()).await?;
        let sarif = match args.format {
            GuardFormat::Sarif => Some(sarif(&report)),
            GuardFormat::Json => None,
        };
        Ok(GuardOutput { report, sarif })
    }
}
