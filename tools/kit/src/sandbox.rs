use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a call may touch (modelled on Codex CLI's sandbox modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Only `read` tools run (the default).
    ReadOnly,
    /// `write` and `exec` tools run when every path they name is under a writable root and
    /// outside `.git`; `network` tools do not run.
    WorkspaceWrite,
    /// Anything runs. Needs `baton serve --allow-full-access` and a recorded reason.
    DangerFullAccess,
}

impl SandboxMode {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::DangerFullAccess => "danger-full-access",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one call may touch, as the policy in force decided it for that call. The gate puts
/// one on every [`crate::ToolContext`]; a tool that writes files or starts commands confines
/// itself to it (files opened beneath a writable root, commands under the kernel's
/// confinement), so the policy's check of the arguments is not the only line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The mode in force.
    pub mode: SandboxMode,
    /// Where `workspace-write` lets the call write (absolute, normalised; `.git` inside them
    /// stays read-only).
    pub writable_roots: Vec<PathBuf>,
    /// Whether commands the call starts may reach the network (a policy rule grants it).
    pub network: bool,
    /// Names of environment variables passed to commands besides the built-in allowlist
    /// (`PATH`, `HOME`, `LANG`, …); never the server's secrets unless named here.
    pub env: Vec<String>,
    /// Paths that stay read-only even inside a writable root, and hidden from commands:
    /// Baton's own configuration, policy file, data folder and checkpoint key (a call that
    /// could rewrite the policy or the store could grant itself anything). Where one is
    /// missing or reached through a link, see [`Sandbox::own_files_in`].
    pub protected: Vec<PathBuf>,
}

impl Sandbox {
    /// The sandbox of a call nobody confined: full access, network on. Only for tools run
    /// directly as a library, outside the gate.
    pub fn unconfined() -> Sandbox {
        Sandbox {
            mode: SandboxMode::DangerFullAccess,
            writable_roots: Vec::new(),
            network: true,
            env: Vec::new(),
            protected: Vec::new(),
        }
    }
}

/// How a writer confined to a folder could reach one of Baton's own files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// The file is in the folder: a sandbox that can hide it keeps it out of reach.
    Inside,
    /// The file is not there, and would be made in the folder: the writer could make it first.
    Missing,
    /// The file is reached through this entry of the folder — a link (the file itself, a
    /// folder on its way, or a link a link leads to), or a folder its path leaves by `..`:
    /// the writer could put a link or a file of its own in the entry's place.
    Through(PathBuf),
}

impl Sandbox {
    /// Baton's own files (`protected`) that a writer confined to one of `folders` (canonical)
    /// could reach, with each such folder and how. Each file is resolved once, as the
    /// kernel resolves it when Baton opens it, link by link; a missing file is placed by its
    /// nearest existing folder.
    pub fn own_files_in<'a>(
        &'a self,
        folders: &'a [PathBuf],
    ) -> impl Iterator<Item = (&'a Path, &'a Path, Exposure)> + 'a {
        self.protected.iter().flat_map(move |own| {
            let resolved = Resolved::of(own);
            folders.iter().filter_map(move |folder| {
                let how = match &resolved {
                    // Too many links, or no working directory for a relative path: nowhere
                    // Baton could open it either, but a link chain in the folder may be why.
                    None => Exposure::Through(own.clone()),
                    Some(resolved) => resolved.exposure_in(folder)?,
                };
                Some((own.as_path(), folder.as_path(), how))
            })
        })
    }
}

/// A path resolved component by component, as the kernel would open it.
struct Resolved {
    /// Where it is (every link followed), or, missing, where it would be made.
    place: PathBuf,
    /// Whether it exists.
    exists: bool,
    /// Every entry whose replacement would send the resolution elsewhere: the links met (where
    /// each link itself is) and the folders left by `..`.
    through: Vec<PathBuf>,
}

impl Resolved {
    /// How a writer confined to `folder` could reach it, if it could.
    fn exposure_in(&self, folder: &Path) -> Option<Exposure> {
        match self.through.iter().find(|at| at.starts_with(folder)) {
            Some(at) => Some(Exposure::Through(at.clone())),
            None if !self.place.starts_with(folder) => None,
            None if self.exists => Some(Exposure::Inside),
            None => Some(Exposure::Missing),
        }
    }

    /// The kernel's limit on links followed in one resolution.
    const MAX_LINKS: usize = 40;

    /// `path` (relative to the working directory when not absolute) resolved; `None` past
    /// [`Resolved::MAX_LINKS`] links or without a working directory.
    fn of(path: &Path) -> Option<Resolved> {
        let mut todo: std::collections::VecDeque<std::ffi::OsString> = std::path::absolute(path)
            .ok()?
            .components()
            .map(|c| c.as_os_str().to_owned())
            .collect();
        let mut done = PathBuf::new();
        let mut through = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == "." {
                continue;
            }
            if name == ".." {
                through.push(done.clone());
                done.pop();
                continue;
            }
            let next = done.join(&name);
            match next.symlink_metadata() {
                Ok(meta) if meta.file_type().is_symlink() => {
                    links += 1;
                    let target = std::fs::read_link(&next)
                        .ok()
                        .filter(|_| links <= Self::MAX_LINKS)?;
                    through.push(next);
                    for part in target.components().rev() {
                        todo.push_front(part.as_os_str().to_owned());
                    }
                    if target.is_absolute() {
                        done = PathBuf::new();
                    }
                }
                Ok(_) => done = next,
                Err(_) => {
                    // Missing: the rest as named (the kernel would go no further).
                    let mut place = next;
                    for name in todo {
                        if name == ".." {
                            place.pop();
                        } else if name != "." {
                            place.push(name);
                        }
                    }
                    return Some(Resolved {
                        place,
                        exists: false,
                        through,
                    });
                }
            }
        }
        Some(Resolved {
            place: done,
            exists: true,
            through,
        })
    }
}
