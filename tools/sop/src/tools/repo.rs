use std::time::Duration;

use baton_kit::{Effect, Tool, ToolContext};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{agent_of, blocking};
use crate::diff::DiffOutput;
use crate::exec::ExecOutcome;
use crate::fsx::write_atomic;
use crate::repo::Access;
use crate::worktree::{WorktreeAction, WorktreeOutput};
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
        let agent = agent_of(None, &ctx)?;
        Ok(crate::diff::record(repo, args.task.as_deref(), args.base, agent).await?)
    }
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
        let agent = agent_of(args.agent, &ctx)?;
        let repo = Repo::open(args.repo.as_deref(), &ctx).await?;
        Ok(
            crate::worktree::change(repo, &args.task, &agent, args.action, args.base, args.force)
                .await?,
        )
    }
}
