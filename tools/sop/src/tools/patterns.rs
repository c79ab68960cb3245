use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::Repo;
use crate::fsx::write_atomic;
use crate::patterns::{Pattern, harvest};

/// Arguments of `patterns_harvest`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HarvestArgs {
    /// Repository root (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
}

/// What was harvested and where it was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HarvestOutput {
    /// `patterns/catalog.json`.
    pub catalog: String,
    /// One `adapters/<kind>.md` per kind found: how an agent applies those conventions.
    pub adapters: Vec<String>,
    /// Everything found.
    pub patterns: Vec<Pattern>,
}

/// `patterns_harvest`.
#[derive(Debug)]
pub struct PatternsHarvest;

impl Tool for PatternsHarvest {
    type Args = HarvestArgs;
    type Output = HarvestOutput;

    const NAME: &'static str = "patterns_harvest";
    const TITLE: Option<&'static str> = Some("Catalog a repository's conventions");
    const DESCRIPTION: &'static str = "Scans the repository for lint and formatter configs, CI \
        workflows, templates and codemod scripts; writes patterns/catalog.json and one \
        adapters/<kind>.md per kind telling an agent which commands apply them.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = &["/repo"];

    async fn call(&self, args: HarvestArgs, ctx: ToolContext) -> baton_kit::Result<HarvestOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let out = blocking(move || {
            let patterns = harvest(&repo.home)?;
            let catalog = "patterns/catalog.json".to_owned();
            let body = serde_json::json!({"generated": crate::time::now_rfc3339(), "patterns": patterns});
            let mut bytes = serde_json::to_vec_pretty(&body).map_err(|e| crate::SopError::invalid("repo", e.to_string()))?;
            bytes.push(b'\n');
            write_atomic(repo.files()?, &repo.state(&catalog), &bytes)?;
            let mut kinds: Vec<&str> = patterns.iter().map(|p| p.kind.as_str()).collect();
            kinds.dedup();
            let mut adapters = Vec::new();
            for kind in kinds {
                let mut text = format!("# {kind} conventions\n\nHarvested by Baton from this repository; follow them when you change code.\n\n");
                for p in patterns.iter().filter(|p| p.kind == kind) {
                    text.push_str(&format!("- `{}` ({})", p.path, p.tool));
                    if let Some(command) = &p.command {
                        text.push_str(&format!(": run `{command}`"));
                    }
                    text.push('\n');
                }
                let path = format!("adapters/{kind}.md");
                write_atomic(repo.files()?, &repo.state(&path), text.as_bytes())?;
                adapters.push(path);
            }
            Ok(HarvestOutput { catalog, adapters, patterns })
        })
        .await?;
        Ok(out)
    }
}
