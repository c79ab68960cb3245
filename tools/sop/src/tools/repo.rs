use std::time::Duration;

use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{agent_of, blocking};
use crate::exec::ExecOutcome;
use crate::fsx::write_atomic;
use crate::git::{git, git_accepting};
use crate::mirror::{Mirror, append_section};
use crate::repo::Access;
use crate::runlog::{RunMeta, dir};
use crate::time::now_rfc3339;
use crate::{Repo, SopError};

const DEFAULT_MAX_LINES: usize = 400;
const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;
const DEFAULT_TIMEOUT_S: u64 = 120;
const MAX_TIMEOUT_S: u64 = 3600;

/// Arguments of `repo_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// File, relative to `repo`.
    pub path: String,
    /// First line to return, 1-based (default 1).
    #[serde(default)]
    pub start_line: Option<usize>,
    /// Most lines to return (default 400).
    #[serde(default)]
    pub max_lines: Option<usize>,
}

/// Part of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReadOutput {
    /// The file, relative to `repo`.
    pub path: String,
    /// The lines asked for.
    pub content: String,
    /// Lines in the file.
    pub total_lines: usize,
    /// Pass as `start_line` to read on; absent at the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_line: Option<usize>,
}

/// `repo_read`.
#[derive(Debug)]
pub struct RepoRead;

impl Tool for RepoRead {
    type Args = ReadArgs;
    type Output = ReadOutput;

    const NAME: &'static str = "repo_read";
    const TITLE: Option<&'static str> = Some("Read a file of the repository");
    const DESCRIPTION: &'static str = "Reads a text file inside the repository or a task \
        worktree, a page of lines at a time. Paths are relative; `..`, absolute paths, `.git` \
        and symlinks leading outside are refused.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: ReadArgs, ctx: ToolContext) -> baton_kit::Result<ReadOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let path = repo.resolve(&args.path, Access::Read)?;
        // Opened beneath the root by the kernel: a folder swapped for a symlink since the
        // check above cannot lead the read outside.
        let mut file = baton_kit::Confined::open(&repo.root)
            .and_then(|root| root.read(&path))
            .map_err(|_| SopError::NotFound(format!("file `{}`", args.path)))?;
        let meta = file.metadata().map_err(SopError::io(&path))?;
        if !meta.is_file() {
            return Err(SopError::invalid("path", format!("`{}` is not a file", args.path)).into());
        }
        if meta.len() > MAX_READ_BYTES {
            return Err(SopError::invalid(
                "path",
                format!(
                    "`{}` is {} bytes; repo_read reads files up to {MAX_READ_BYTES}",
                    args.path,
                    meta.len()
                ),
            )
            .into());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(SopError::io(&path))?;
        if bytes.contains(&0) {
            return Err(SopError::invalid("path", format!("`{}` is binary", args.path)).into());
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let start = args.start_line.unwrap_or(1).max(1);
        let max = args.max_lines.unwrap_or(DEFAULT_MAX_LINES).max(1);
        let end = (start - 1 + max).min(lines.len());
        let content = lines
            .get(start - 1..end)
            .map(|l| l.join("\n"))
            .unwrap_or_default();
        Ok(ReadOutput {
            path: args.path,
            content,
            total_lines: lines.len(),
            next_line: (end < lines.len()).then_some(end + 1),
        })
    }
}

/// Arguments of `repo_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// File, relative to `repo`; folders are created.
    pub path: String,
    /// The whole new content.
    pub content: String,
}

/// A file written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WriteOutput {
    /// The file, relative to `repo`.
    pub path: String,
    /// Bytes written.
    pub bytes: usize,
    /// Whether the file is new.
    pub created: bool,
}

/// `repo_write`.
#[derive(Debug)]
pub struct RepoWrite;

impl Tool for RepoWrite {
    type Args = WriteArgs;
    type Output = WriteOutput;

    const NAME: &'static str = "repo_write";
    const TITLE: Option<&'static str> = Some("Write a file of the repository");
    const DESCRIPTION: &'static str = "Creates or replaces a file inside the repository or a \
        task worktree, atomically. Paths are relative; `..`, absolute paths, `.git` and \
        symlinks leading outside are refused. Passes the policy gate as a write.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = &["/path"];
    const ROOT_ARG: Option<&'static str> = Some("/repo");

    async fn call(&self, args: WriteArgs, ctx: ToolContext) -> baton_kit::Result<WriteOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let path = repo.resolve(&args.path, Access::Write)?;
        if path.is_dir() {
            return Err(SopError::invalid("path", format!("`{}` is a folder", args.path)).into());
        }
        let created = !path.exists();
        let bytes = args.content.len();
        blocking(move || write_atomic(repo.files()?, &path, args.content.as_bytes())).await?;
        Ok(WriteOutput {
            path: args.path,
            bytes,
            created,
        })
    }
}

/// Arguments of `repo_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// The program and its arguments, e.g. `["cargo", "test"]`. Run directly, not by a shell.
    pub argv: Vec<String>,
    /// Folder to run in, relative to `repo` (default: `repo`).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Kill it (and everything it started) after this many seconds, 1–3600 (default 120).
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Run `argv[0]` as a `sh -c` script instead (`argv` must then hold exactly one string).
    #[serde(default)]
    pub shell: bool,
}

/// `repo_exec`.
#[derive(Debug)]
pub struct RepoExec;

impl Tool for RepoExec {
    type Args = ExecArgs;
    type Output = ExecOutcome;

    const NAME: &'static str = "repo_exec";
    const TITLE: Option<&'static str> = Some("Run a command in the repository");
    const DESCRIPTION: &'static str = "Runs a program in the repository or a task worktree \
        with a time limit, capturing exit code, stdout and stderr (last 64 KiB each). No \
        shell unless `shell` is set. Passes the policy gate as exec.";
    const EFFECT: Effect = Effect::Exec;
    const PATH_ARGS: &'static [&'static str] = &["/cwd"];
    const ROOT_ARG: Option<&'static str> = Some("/repo");

    async fn call(&self, args: ExecArgs, ctx: ToolContext) -> baton_kit::Result<ExecOutcome> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let cwd = match &args.cwd {
            Some(cwd) => repo.resolve(cwd, Access::Read)?,
            None => repo.root.clone(),
        };
        if !cwd.is_dir() {
            return Err(
                SopError::invalid("cwd", format!("`{}` is not a folder", cwd.display())).into(),
            );
        }
        let timeout = args.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
        if !(1..=MAX_TIMEOUT_S).contains(&timeout) {
            return Err(SopError::invalid(
                "timeout_s",
                format!("{timeout} is not in 1–{MAX_TIMEOUT_S}"),
            )
            .into());
        }
        let argv = if args.shell {
            match args.argv.as_slice() {
                [script] => vec!["sh".to_owned(), "-c".to_owned(), script.clone()],
                _ => {
                    return Err(SopError::invalid(
                        "argv",
                        "with `shell`, give exactly one string: the script",
                    )
                    .into());
                }
            }
        } else {
            args.argv
        };
        tokio::select! {
            outcome = crate::exec::run(&argv, &cwd, Duration::from_secs(timeout), ctx.sandbox()) => Ok(outcome?),
            () = ctx.cancellation().cancelled() => Err(baton_kit::ToolError::Cancelled),
        }
    }
}

/// Arguments of `repo_diff`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffArgs {
    /// Repository root or task worktree (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// The task whose work to record (its worktree, if it has one, is diffed; the diff goes
    /// into its latest run). Without a task, `repo` is diffed into a new run.
    #[serde(default)]
    pub task: Option<String>,
    /// Diff against this commit (default: the commit the run started from).
    #[serde(default)]
    pub base: Option<String>,
}

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

/// `repo_diff`.
#[derive(Debug)]
pub struct RepoDiff;

impl Tool for RepoDiff {
    type Args = DiffArgs;
    type Output = DiffOutput;

    const NAME: &'static str = "repo_diff";
    const TITLE: Option<&'static str> = Some("Record the diff of a task's work");
    const DESCRIPTION: &'static str = "Records what changed — committed and uncommitted, new \
        files included — against the run's base commit, as .runs/<run_id>/diff.patch. A task \
        can be advanced to review or done only with a non-empty recorded diff.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = &["/repo"];

    async fn call(&self, args: DiffArgs, ctx: ToolContext) -> baton_kit::Result<DiffOutput> {
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let task = match &args.task {
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
        let base = args
            .base
            .clone()
            .or_else(|| meta.as_ref().and_then(|m| m.base_ref.clone()))
            .unwrap_or_else(|| "HEAD".to_owned());
        let base_ref = git(
            &workdir,
            &["rev-parse", "--verify", &format!("{base}^{{commit}}")],
        )
        .await
        .map_err(|_| {
            SopError::invalid(
                "base",
                format!("`{base}` is not a commit of this repository"),
            )
        })?;
        let scoped = |args: &[&str]| -> Vec<String> {
            args.iter()
                .chain(WORK_SCOPE)
                .map(|a| (*a).to_owned())
                .collect()
        };
        let run = |args: Vec<String>| {
            let workdir = workdir.clone();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                git(&workdir, &args).await
            }
        };
        let mut patch = run(scoped(&[
            "diff",
            "--binary",
            "--no-color",
            "--no-ext-diff",
            &base_ref,
        ]))
        .await?;
        if !patch.is_empty() {
            patch.push('\n');
        }
        let numstat = run(scoped(&["diff", "--numstat", "--no-color", &base_ref])).await?;
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
                &workdir,
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
                &workdir,
                &["diff", "--no-index", "--numstat", "--", "/dev/null", file],
                &[1],
            )
            .await?;
            files.extend(stat.lines().filter_map(parse_numstat).map(|mut f| {
                f.path = file.to_owned();
                f
            }));
        }
        let head_ref = crate::git::head(&workdir).await;
        let agent = agent_of(None, &ctx)?;
        let run_id = existing
            .clone()
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        let mut meta = meta.unwrap_or_else(|| RunMeta {
            run_id: run_id.clone(),
            task: task.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
            agent: agent.clone(),
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
        let patch_rel = format!("{}/diff.patch", dir(&run_id));
        let bytes = patch.len();
        let out = DiffOutput {
            run_id: run_id.clone(),
            patch: patch_rel.clone(),
            bytes,
            files,
            base_ref,
            head_ref,
        };
        let summary = out.clone();
        blocking(move || {
            write_atomic(repo.files()?, &repo.state(&patch_rel), patch.as_bytes())?;
            repo.write_run_meta(&meta)?;
            repo.log_run(&run_id, "diff", serde_json::json!({"bytes": bytes, "files": summary.files.len(), "head_ref": summary.head_ref}))?;
            if let Some(task) = task {
                repo.update(|index| {
                    let at = index.find(&task.id)?;
                    if !index.tasks[at].runs.contains(&run_id) {
                        index.tasks[at].runs.push(run_id.clone());
                    }
                    let added: u64 = summary.files.iter().filter_map(|f| f.added).sum();
                    let removed: u64 = summary.files.iter().filter_map(|f| f.removed).sum();
                    append_section(
                        &repo,
                        Mirror::ActionPlan,
                        &task.feature,
                        &format!("diff for {}", task.alias),
                        &format!("{} file(s), +{added} −{removed}, in run `{run_id}`.", summary.files.len()),
                        &patch_rel,
                    )
                })?;
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }
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

/// What `repo_worktree` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorktreeAction {
    /// Create the task's worktree and branch.
    Create,
    /// Remove the task's worktree (the branch stays).
    Remove,
}

/// Arguments of `repo_worktree`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorktreeArgs {
    /// Repository root (default: the server's working directory).
    #[serde(default)]
    pub repo: Option<String>,
    /// `create` or `remove`.
    pub action: WorktreeAction,
    /// Task id or alias; the caller must hold its claim.
    pub task: String,
    /// The agent acting (must be the caller, if given).
    #[serde(default)]
    pub agent: Option<String>,
    /// Commit to branch from (default: HEAD of the main checkout).
    #[serde(default)]
    pub base: Option<String>,
    /// Remove even with uncommitted changes.
    #[serde(default)]
    pub force: bool,
}

/// A worktree created or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorktreeOutput {
    /// Absolute path: pass it as `repo` to the other tools to work inside the worktree.
    pub path: String,
    /// Relative to the repository root.
    pub worktree: String,
    /// The task's branch.
    pub branch: String,
    /// The commit it branched from.
    pub base_ref: Option<String>,
}

/// `repo_worktree`.
#[derive(Debug)]
pub struct RepoWorktree;

impl Tool for RepoWorktree {
    type Args = WorktreeArgs;
    type Output = WorktreeOutput;

    const NAME: &'static str = "repo_worktree";
    const TITLE: Option<&'static str> = Some("Create or remove a task's git worktree");
    const DESCRIPTION: &'static str = "Creates a per-task git worktree (.worktrees/<alias>) on \
        its own branch (task/<alias>) for the agent holding the task's claim, or removes it. \
        Work inside it by passing the returned path as `repo`; the SOP state stays in the main \
        checkout.";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = &["/repo"];

    async fn call(
        &self,
        args: WorktreeArgs,
        ctx: ToolContext,
    ) -> baton_kit::Result<WorktreeOutput> {
        let agent = agent_of(args.agent.clone(), &ctx)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        let index = repo.read_index()?;
        let task = index.tasks[index.find(&args.task)?].clone();
        let now = jiff::Timestamp::now();
        match &task.claimed_by {
            Some(claim) if claim.agent == agent && claim.is_live(now) => {}
            _ => {
                return Err(SopError::Gate {
                    gate: "unclaimed",
                    reason: format!("task {} has no live claim by `{agent}`; claim it with sop_task_claim first", task.alias),
                }
                .into());
            }
        }
        let relative = format!(".worktrees/{}", task.alias);
        let branch = format!("task/{}", task.alias.to_ascii_lowercase());
        let path = repo.home.join(&relative);
        // git takes its own locks (branch refs, `.git/worktrees`) and fails rather than waits
        // when another `git worktree` holds them: agents on parallel goals take turns here.
        let lock_path = repo.state(".worktrees/.lock");
        let locker = repo.clone();
        let _turn = blocking(move || crate::fsx::lock(locker.files()?, &lock_path)).await?;
        let base_ref = match args.action {
            WorktreeAction::Create => {
                if path.exists() {
                    return Err(
                        SopError::invalid("task", format!("{relative} exists already")).into(),
                    );
                }
                let base = args.base.clone().unwrap_or_else(|| "HEAD".into());
                let base_ref = git(
                    &repo.home,
                    &["rev-parse", "--verify", &format!("{base}^{{commit}}")],
                )
                .await
                .map_err(|_| {
                    SopError::invalid(
                        "base",
                        format!("`{base}` is not a commit of this repository"),
                    )
                })?;
                let ignore = repo.state(".worktrees/.gitignore");
                if !ignore.exists() {
                    write_atomic(
                        repo.files()?,
                        &ignore,
                        b"# Task worktrees made by Baton; not part of the repository.\n*\n",
                    )?;
                }
                let exists = git(
                    &repo.home,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("refs/heads/{branch}"),
                    ],
                )
                .await
                .is_ok();
                if exists {
                    git(&repo.home, &["worktree", "add", &relative, &branch]).await?;
                } else {
                    git(
                        &repo.home,
                        &["worktree", "add", "-b", &branch, &relative, &base_ref],
                    )
                    .await?;
                }
                Some(base_ref)
            }
            WorktreeAction::Remove => {
                let mut command = vec!["worktree", "remove"];
                if args.force {
                    command.push("--force");
                }
                command.push(&relative);
                git(&repo.home, &command).await?;
                None
            }
        };
        let action = args.action;
        let out = WorktreeOutput {
            path: path.display().to_string(),
            worktree: relative.clone(),
            branch: branch.clone(),
            base_ref: base_ref.clone(),
        };
        blocking(move || {
            repo.update(|index| {
                let at = index.find(&task.id)?;
                if let Some(claim) = index.tasks[at].claimed_by.as_mut() {
                    match action {
                        WorktreeAction::Create => {
                            claim.worktree = Some(relative.clone());
                            claim.branch = Some(branch.clone());
                        }
                        WorktreeAction::Remove => claim.worktree = None,
                    }
                }
                if let Some(run) = index.tasks[at].runs.last() {
                    let mut meta = repo.run_meta(run)?;
                    if action == WorktreeAction::Create {
                        meta.worktree = Some(relative.clone());
                        meta.branch = Some(branch.clone());
                        meta.base_ref.clone_from(&base_ref);
                    }
                    repo.write_run_meta(&meta)?;
                    repo.log_run(
                        run,
                        if action == WorktreeAction::Create {
                            "worktree_created"
                        } else {
                            "worktree_removed"
                        },
                        serde_json::json!({"worktree": relative}),
                    )?;
                }
                append_section(
                    &repo,
                    Mirror::ActionPlan,
                    &task.feature,
                    &format!(
                        "worktree for {} {}",
                        task.alias,
                        if action == WorktreeAction::Create {
                            "created"
                        } else {
                            "removed"
                        }
                    ),
                    &format!("`{relative}` on branch `{branch}`."),
                    crate::state::INDEX,
                )
            })
        })
        .await?;
        Ok(out)
    }
}
