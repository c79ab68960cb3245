use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use baton_kit::{Confined, SandboxMode, ToolContext};

use crate::git::git;
use crate::{Result, SopError};

/// The repository a call works in, and where the SOP state of that repository lives.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The folder the call works in: the repository root or a task worktree (canonical).
    pub root: PathBuf,
    /// The main checkout, which holds `tasks/`, `docs/` mirrors and `.runs/` for every
    /// worktree of the repository: agents on worktrees share one index, never a copy each.
    pub home: PathBuf,
    /// How this call may write here: `Err` says why it may not.
    files: std::result::Result<Arc<Confined>, String>,
}

/// What a resolved path will be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read it.
    Read,
    /// Create or replace it.
    Write,
}

impl Repo {
    /// The repository at `repo`, or at the working directory when `None`, for a call confined
    /// to `ctx`'s sandbox. Under `workspace-write` the repository (after every symlink is
    /// resolved) must lie in a writable root for the call to write anything; every write then
    /// goes through [`Repo::files`], which follows no symlink.
    pub async fn open(repo: Option<&str>, ctx: &ToolContext) -> Result<Repo> {
        let given = match repo {
            Some(path) if path.trim().is_empty() => {
                return Err(SopError::invalid("repo", "is empty"));
            }
            Some(path) => PathBuf::from(path),
            None => std::env::current_dir().map_err(SopError::io("."))?,
        };
        let root = given.canonicalize().map_err(|error| {
            SopError::NotFound(format!("repository folder `{}` ({error})", given.display()))
        })?;
        if !root.is_dir() {
            return Err(SopError::invalid(
                "repo",
                format!("`{}` is not a folder", root.display()),
            ));
        }
        let home = match git(
            &root,
            &["rev-parse", "--path-format=absolute", "--git-common-dir"],
        )
        .await
        {
            Ok(common) => {
                let common = PathBuf::from(common);
                match (common.file_name(), common.parent()) {
                    (Some(name), Some(parent)) if name == ".git" => parent
                        .canonicalize()
                        .map_err(SopError::io(parent.to_owned()))?,
                    _ => root.clone(),
                }
            }
            Err(_) => root.clone(),
        };
        let files = writable(&root, &home, ctx)?;
        Ok(Repo { root, home, files })
    }

    /// Where this call writes: the file system with no symlink followed (every path the SOP
    /// writes is under the canonical root or home), or why it may not write here.
    pub fn files(&self) -> Result<&Confined> {
        match &self.files {
            Ok(files) => Ok(files),
            Err(why) => Err(SopError::PathRefused {
                path: self.root.display().to_string(),
                reason: why.clone(),
            }),
        }
    }

    /// Whether the call works in a worktree rather than the main checkout.
    pub fn in_worktree(&self) -> bool {
        self.root != self.home
    }

    /// `relative` under the root, refused if it is absolute, climbs out with `..`, names
    /// `.git`, or resolves through a symlink to somewhere outside the root.
    pub fn resolve(&self, relative: &str, access: Access) -> Result<PathBuf> {
        confine(&self.root, relative, access)
    }

    /// A path under the state home (`tasks/…`, `docs/…`, `.runs/…`).
    pub fn state(&self, relative: &str) -> PathBuf {
        self.home.join(relative)
    }
}

/// Whether a call confined to `ctx` may write in `root` (and its state `home`).
fn writable(
    root: &Path,
    home: &Path,
    ctx: &ToolContext,
) -> Result<std::result::Result<Arc<Confined>, String>> {
    let refusal = match ctx.sandbox() {
        None => None,
        Some(sandbox) => match sandbox.mode {
            SandboxMode::DangerFullAccess => None,
            SandboxMode::ReadOnly => Some("the sandbox is `read-only`".to_owned()),
            SandboxMode::WorkspaceWrite => {
                let roots: Vec<PathBuf> = sandbox
                    .writable_roots
                    .iter()
                    .map(|r| r.canonicalize().unwrap_or_else(|_| r.clone()))
                    .collect();
                let inside = |path: &Path| roots.iter().any(|r| path.starts_with(r));
                if inside(root) && inside(home) {
                    None
                } else {
                    Some(format!(
                        "the repository resolves to `{}`, outside the writable roots",
                        root.display()
                    ))
                }
            }
        },
    };
    Ok(match refusal {
        Some(why) => Err(why),
        None => Ok(Arc::new(Confined::filesystem().map_err(|e| {
            SopError::invalid("repo", format!("cannot open the file system: {e}"))
        })?)),
    })
}

/// See [`Repo::resolve`].
pub fn confine(root: &Path, relative: &str, access: Access) -> Result<PathBuf> {
    let refuse = |reason: &str| SopError::PathRefused {
        path: relative.to_owned(),
        reason: reason.to_owned(),
    };
    if relative.trim().is_empty() {
        return Err(SopError::invalid("path", "is empty"));
    }
    let path = Path::new(relative);
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(refuse(
                    "absolute paths are not allowed; give a path relative to the repository",
                ));
            }
            Component::ParentDir => {
                return Err(refuse(
                    "`..` is not allowed; paths stay inside the repository",
                ));
            }
            Component::Normal(name) if name == ".git" => {
                return Err(refuse(match access {
                    Access::Write => "`.git` is never written by tools; use git itself",
                    Access::Read => "`.git` is not readable through tools; use git itself",
                }));
            }
            Component::Normal(_) | Component::CurDir => {}
        }
    }
    let joined = root.join(path);
    // The deepest part that exists decides where the path really goes.
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    while !existing.exists() && existing.symlink_metadata().is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => break,
        }
    }
    let real = existing
        .canonicalize()
        .map_err(|_| refuse("it goes through a broken symlink"))?;
    if !real.starts_with(root) {
        return Err(refuse(&format!(
            "it resolves to `{}`, outside the repository (through a symlink)",
            real.display()
        )));
    }
    if real
        .strip_prefix(root)
        .is_ok_and(|inside| inside.components().any(|c| c.as_os_str() == ".git"))
    {
        return Err(refuse("it resolves into `.git` (through a symlink)"));
    }
    let mut resolved = real;
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}
