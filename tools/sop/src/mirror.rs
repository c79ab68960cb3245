//! `docs/PRD.md`, `docs/TECH_SPEC.md`, `docs/ACTION_PLAN.md`: append-only, dated sections
//! linking back to their source under `tasks/`. Earlier sections are never rewritten.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsx::append;
use crate::{Repo, Result};

/// Which mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mirror {
    /// `docs/PRD.md`: product requirements.
    Prd,
    /// `docs/TECH_SPEC.md`: task breakdowns and mini-specs.
    TechSpec,
    /// `docs/ACTION_PLAN.md`: plans, claims, diffs and transitions.
    ActionPlan,
}

impl Mirror {
    /// The file, relative to the repository root.
    pub fn path(self) -> &'static str {
        match self {
            Mirror::Prd => "docs/PRD.md",
            Mirror::TechSpec => "docs/TECH_SPEC.md",
            Mirror::ActionPlan => "docs/ACTION_PLAN.md",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Mirror::Prd => "Product requirements",
            Mirror::TechSpec => "Technical specification",
            Mirror::ActionPlan => "Action plan",
        }
    }
}

/// Append one dated section to `mirror`: `## <date> · <feature> · <step>`, the summary, and
/// a link to `source` (relative to the repository root).
pub fn append_section(
    repo: &Repo,
    mirror: Mirror,
    feature: &str,
    step: &str,
    summary: &str,
    source: &str,
) -> Result<()> {
    let path = repo.state(mirror.path());
    let mut text = String::new();
    if !path.exists() {
        text.push_str(&format!(
            "# {} (mirror)\n\nAppend-only: Baton adds one dated section per step, each linking to its source under `tasks/`. Earlier sections are never rewritten; correct them with a new one.\n",
            mirror.title()
        ));
    }
    text.push_str(&format!(
        "\n## {} · {feature} · {step}\n\n{summary}\n\nSource: [{source}](../{source})\n",
        crate::time::now_rfc3339()
    ));
    append(repo.files()?, &path, &text)
}

/// The section appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MirrorOutput {
    /// The mirror, relative to the repository root.
    pub path: String,
    /// What the section says.
    pub summary: String,
}

/// Append a snapshot of feature `slug` (its phase and task counts, and `note`) to `mirror`.
/// It runs under the index lock, so the counts are those of the index at that moment.
pub(crate) async fn snapshot(
    repo: Repo,
    mirror: Mirror,
    slug: String,
    note: Option<String>,
) -> Result<MirrorOutput> {
    crate::tools::blocking(move || {
        repo.update(|index| {
            let feature = index.feature(&slug)?;
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for task in index.tasks.iter().filter(|t| t.feature == slug) {
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
            if let Some(note) = &note {
                summary.push_str(&format!("\n\n{note}"));
            }
            append_section(
                &repo,
                mirror,
                &slug,
                "snapshot",
                &summary,
                crate::state::INDEX,
            )?;
            Ok(MirrorOutput {
                path: mirror.path().into(),
                summary,
            })
        })
    })
    .await
}
