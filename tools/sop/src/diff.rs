//! Recording a task's work as a diff in its run: what changed against the run's base commit,
//! committed and uncommitted, new files included.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsx::write_atomic;
use crate::git::{git, git_accepting};
use crate::mirror::{Mirror, append_section};
use crate::model::Task;
use crate::runlog::{RunMeta, dir};
use crate::time::now_rfc3339;
use crate::tools::blocking;
use crate::{Repo, Result, SopError};

/// A diff recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DiffOutput {
    /// The run it was recorded in.
    pub run_id: String,
    /// The patch, relative to the repository root.
    pub patch: String,
    /// Bytes of the patch (0: no change).
    pub bytes: usize,
    /// Changed files with lines added and removed.
    pub files: Vec<FileChange>,
    /// The commit diffed against.
    pub base_ref: String,
    /// The commit the work tree was at.
    pub head_ref: Option<String>,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileChange {
    /// Path.
    pub path: String,
    /// Lines added (`None` for binary files).
    pub added: Option<u64>,
    /// Lines removed (`None` for binary files).
    pub removed: Option<u64>,
}

/// What a task's diff covers: the work, not the SOP's own bookkeeping (the index, rendered
/// task files, specs, mirrors, run records), which would otherwise count as a change and let a
/// task with no real work pass the `no_diff` gate.
const WORK_SCOPE: &[&str] = &[
    "--",
    ".",
    ":(exclude)tasks",
    ":(exclude).runs",
    ":(exclude).worktrees",
    ":(exclude)docs/PRD.md",
    ":(exclude)docs/TECH_SPEC.md",
    ":(exclude)docs/ACTION_PLAN.md",
];

/// Diff the work of `task` (its worktree, if it has one, into its latest run) or, without a
/// task, of `repo` into a new run, against `base` (default: the commit the run started from).
pub(crate) async fn record(
    repo: Repo,
    task: Option<&str>,
    base: Option<String>,
    agent: String,
) -> Result<DiffOutput> {
    let index = repo.read_index()?;
    let task = match task {
        Some(key) => Some(index.tasks[index.find(key)?].clone()),
        None => None,
    };
    let existing = task.as_ref().and_then(|t| t.runs.last().cloned());
    let meta = match &existing {
        Some(run) => Some(repo.run_meta(run)?),
        None => None,
    };
    let workdir = match task
        .as_ref()
        .and_then(|t| t.claimed_by.as_ref())
        .and_then(|c| c.worktree.as_ref())
    {
        Some(worktree) => repo.home.join(worktree),
        None => repo.root.clone(),
    };
    let base = base
        .or_else(|| meta.as_ref().and_then(|m| m.base_ref.clone()))
        .unwrap_or_else(|| "HEAD".to_owned());
    let base_ref = commit(&workdir, &base).await?;
    let (patch, files) = changes(&workdir, &base_ref).await?;
    let head_ref = crate::git::head(&workdir).await;
    let run_id = existing
        .clone()
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    let mut meta = meta.unwrap_or_else(|| RunMeta {
        run_id: run_id.clone(),
        task: task.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
        agent,
        base_ref: Some(base_ref.clone()),
        head_ref: None,
        worktree: None,
        branch: None,
        created: now_rfc3339(),
        tool_versions: Default::default(),
    });
    if existing.is_none() {
        repo.create_run(&meta).await?;
    }
    meta.head_ref.clone_from(&head_ref);
    let out = DiffOutput {
        patch: format!("{}/diff.patch", dir(&run_id)),
        run_id,
        bytes: patch.len(),
        files,
        base_ref,
        head_ref,
    };
    let summary = out.clone();
    blocking(move || store(&repo, task.as_ref(), &meta, &patch, &summary)).await?;
    Ok(out)
}

/// The commit `base` names, or an error saying it names none.
pub(crate) async fn commit(workdir: &Path, base: &str) -> Result<String> {
    git(
        workdir,
        &["rev-parse", "--verify", &format!("{base}^{{commit}}")],
    )
    .await
    .map_err(|_| {
        SopError::invalid(
            "base",
            format!("`{base}` is not a commit of this repository"),
        )
    })
}

/// The patch of the work in `workdir` against `base_ref`, new files included, and its files.
async fn changes(workdir: &Path, base_ref: &str) -> Result<(String, Vec<FileChange>)> {
    let scoped = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(WORK_SCOPE)
            .map(|a| (*a).to_owned())
            .collect()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(workdir, &args).await
    };
    let mut patch = run(scoped(&[
        "diff",
        "--binary",
        "--no-color",
        "--no-ext-diff",
        base_ref,
    ]))
    .await?;
    if !patch.is_empty() {
        patch.push('\n');
    }
    let numstat = run(scoped(&["diff", "--numstat", "--no-color", base_ref])).await?;
    let mut files: Vec<FileChange> = numstat.lines().filter_map(parse_numstat).collect();
    let untracked = run(scoped(&[
        "ls-files",
        "--others",
        "--exclude-standard",
        "-z",
    ]))
    .await?;
    for file in untracked.split('\0').filter(|f| !f.is_empty()) {
        let one = git_accepting(
            workdir,
            &[
                "diff",
                "--no-index",
                "--binary",
                "--no-color",
                "--",
                "/dev/null",
                file,
            ],
            &[1],
        )
        .await?;
        patch.push_str(&one);
        let stat = git_accepting(
            workdir,
            &["diff", "--no-index", "--numstat", "--", "/dev/null", file],
            &[1],
        )
        .await?;
        files.extend(stat.lines().filter_map(parse_numstat).map(|mut f| {
            f.path = file.to_owned();
            f
        }));
    }
    Ok((patch, files))
}

/// Write the patch and the run record, log it, and list the run on the task with a line in
/// the action plan.
fn store(
    repo: &Repo,
    task: Option<&Task>,
    meta: &RunMeta,
    patch: &str,
    summary: &DiffOutput,
) -> Result<()> {
    let run_id = &summary.run_id;
    write_atomic(repo.files()?, &repo.state(&summary.patch), patch.as_bytes())?;
    repo.write_run_meta(meta)?;
    repo.log_run(
        run_id,
        "diff",
        serde_json::json!({"bytes": summary.bytes, "files": summary.files.len(), "head_ref": summary.head_ref}),
    )?;
    let Some(task) = task else { return Ok(()) };
    repo.update(|index| {
        let at = index.find(&task.id)?;
        if !index.tasks[at].runs.contains(run_id) {
            index.tasks[at].runs.push(run_id.clone());
        }
        let added: u64 = summary.files.iter().filter_map(|f| f.added).sum();
        let removed: u64 = summary.files.iter().filter_map(|f| f.removed).sum();
        append_section(
            repo,
            Mirror::ActionPlan,
            &task.feature,
            &format!("diff for {}", task.alias),
            &format!(
                "{} file(s), +{added} −{removed}, in run `{run_id}`.",
                summary.files.len()
            ),
            &summary.patch,
        )
    })
}

fn parse_numstat(line: &str) -> Option<FileChange> {
    let mut parts = line.splitn(3, '\t');
    let added = parts.next()?;
    let removed = parts.next()?;
    let path = parts.next()?;
    Some(FileChange {
        path: path.to_owned(),
        added: added.parse().ok(),
        removed: removed.parse().ok(),
    })
}
