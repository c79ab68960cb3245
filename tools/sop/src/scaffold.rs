//! Whether a repository is ready for the SOP: git with a commit, a valid index, run records
//! and worktrees ignored by git, and no PRD still waiting for clarification.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Repo;
use crate::git::git;

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

impl Check {
    fn new(name: &str, ok: bool, required: bool, detail: String) -> Check {
        Check {
            name: name.into(),
            ok,
            required,
            detail,
        }
    }
}

/// Run every check on `repo`; a failed check is a finding, never an error.
pub(crate) async fn check(repo: &Repo) -> ScaffoldOutput {
    let mut checks = git_checks(repo).await;
    checks.push(match repo.read_index() {
        Ok(index) => Check::new(
            "index",
            true,
            true,
            format!(
                "{} feature(s), {} task(s)",
                index.features.len(),
                index.tasks.len()
            ),
        ),
        Err(error) => Check::new("index", false, true, error.to_string()),
    });
    for dir in [".runs", ".worktrees"] {
        let ignored = git(&repo.home, &["check-ignore", "-q", &format!("{dir}/x")])
            .await
            .is_ok();
        checks.push(Check::new(
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
        ));
    }
    checks.push(clarifications(repo));
    let ready = checks.iter().all(|c| c.ok || !c.required);
    ScaffoldOutput { ready, checks }
}

/// A git work tree, with a commit.
async fn git_checks(repo: &Repo) -> Vec<Check> {
    let is_git = git(&repo.root, &["rev-parse", "--is-inside-work-tree"])
        .await
        .is_ok();
    let head = crate::git::head(&repo.root).await;
    vec![
        Check::new(
            "git_repository",
            is_git,
            true,
            if is_git {
                "a git work tree".into()
            } else {
                "not a git repository: run `git init`".into()
            },
        ),
        Check::new(
            "has_commit",
            head.is_some(),
            true,
            match &head {
                Some(head) => format!("HEAD is {head}"),
                None => {
                    "no commit yet: specs and worktrees need one; commit something first".into()
                }
            },
        ),
    ]
}

/// PRDs still carrying NEEDS CLARIFICATION markers.
fn clarifications(repo: &Repo) -> Check {
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
    Check::new(
        "clarifications",
        open.is_empty(),
        false,
        if open.is_empty() {
            "no NEEDS CLARIFICATION markers".into()
        } else {
            format!("NEEDS CLARIFICATION markers left in {}", open.join(", "))
        },
    )
}
