//! The spec guard: tasks whose mini-spec is missing or stale, as JSON or SARIF 2.1.0 — for
//! `sop_spec_guard`, a pre-commit hook and CI (`baton sop guard`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::{Staleness, read_meta, staleness};
use crate::{Repo, Result};

/// One problem with a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// `missing`, `unreadable`, `age`, `changed` or `unknown_ref`.
    pub kind: String,
    /// Whether it blocks a commit (every kind does, for an open task).
    pub blocking: bool,
    /// The task's alias.
    pub task: String,
    /// The spec file, relative to the repository root, when there is one.
    pub spec: Option<String>,
    /// In words.
    pub message: String,
    /// Files involved (for `changed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// What the guard found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GuardReport {
    /// Specs checked.
    pub checked: usize,
    /// Problems, in task order.
    pub findings: Vec<Finding>,
    /// Whether any finding blocks.
    pub blocking: bool,
}

/// Check every spec-required task that is not cancelled. Done tasks are reported but do not
/// block: their specs document history.
pub async fn guard(
    repo: &Repo,
    max_age_days: i64,
    today: jiff::civil::Date,
) -> Result<GuardReport> {
    let index = repo.read_index()?;
    let mut findings = Vec::new();
    let mut checked = 0;
    for task in index
        .tasks
        .iter()
        .filter(|t| t.spec_required && t.status != crate::Status::Cancelled)
    {
        let blocking = !task.status.is_closed();
        let finding = |kind: &str, message: String, files: Vec<String>| Finding {
            kind: kind.into(),
            blocking,
            task: task.alias.clone(),
            spec: task.spec_ref.clone(),
            message,
            files,
        };
        let Some(spec_ref) = &task.spec_ref else {
            findings.push(finding(
                "missing",
                format!(
                    "task {} ({}) requires a mini-spec and has none",
                    task.alias, task.title
                ),
                Vec::new(),
            ));
            continue;
        };
        let path = repo.state(spec_ref);
        if !path.exists() {
            findings.push(finding(
                "missing",
                format!("task {}: its spec {spec_ref} does not exist", task.alias),
                Vec::new(),
            ));
            continue;
        }
        checked += 1;
        let meta = match read_meta(&path) {
            Ok(meta) => meta,
            Err(error) => {
                findings.push(finding("unreadable", error.to_string(), Vec::new()));
                continue;
            }
        };
        for stale in staleness(&repo.home, &meta, today, max_age_days).await? {
            let message = format!(
                "task {}: spec {spec_ref} is stale: {}",
                task.alias,
                stale.describe()
            );
            findings.push(match stale {
                Staleness::Age { .. } => finding("age", message, Vec::new()),
                Staleness::Changed { files } => finding("changed", message, files),
                Staleness::UnknownRef { .. } => finding("unknown_ref", message, Vec::new()),
            });
        }
    }
    let blocking = findings.iter().any(|f| f.blocking);
    Ok(GuardReport {
        checked,
        findings,
        blocking,
    })
}

/// The report as a SARIF 2.1.0 log (what GitHub code scanning and most CI viewers read).
pub fn sarif(report: &GuardReport) -> serde_json::Value {
    let rules = [
        ("missing", "A task that requires a mini-spec has none."),
        ("unreadable", "A mini-spec's front matter does not read."),
        (
            "age",
            "A mini-spec has not been reviewed within the allowed number of days.",
        ),
        (
            "changed",
            "Files a mini-spec governs changed after the commit it was reviewed at.",
        ),
        (
            "unknown_ref",
            "A mini-spec names a reviewed commit the repository does not have.",
        ),
    ];
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut locations = Vec::new();
            if let Some(spec) = &f.spec {
                locations.push(serde_json::json!({
                    "physicalLocation": {"artifactLocation": {"uri": spec}}
                }));
            }
            for file in &f.files {
                locations.push(serde_json::json!({
                    "physicalLocation": {"artifactLocation": {"uri": file}}
                }));
            }
            serde_json::json!({
                "ruleId": format!("spec/{}", f.kind),
                "level": if f.blocking { "error" } else { "note" },
                "message": {"text": f.message},
                "locations": locations,
                "properties": {"task": f.task},
            })
        })
        .collect();
    serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "baton-sop-guard",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/baton-dev/baton/blob/main/docs/sop.md",
                "rules": rules.iter().map(|(id, text)| serde_json::json!({
                    "id": format!("spec/{id}"),
                    "shortDescription": {"text": text},
                })).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    })
}
