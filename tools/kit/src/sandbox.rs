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
    /// The file is reached through this link in the folder (the file itself, or a folder on
    /// its way): the writer could replace the link with a file or folder of its own.
    Link(PathBuf),
}

impl Sandbox {
    /// Baton's own files (`protected`) that a writer confined to `folder` (canonical) could
    /// reach, each with how. Whether a missing file would be made there is decided from its
    /// nearest existing folder, resolved; a link, from where the link itself is.
    pub fn own_files_in<'a>(
        &'a self,
        folder: &'a Path,
    ) -> impl Iterator<Item = (&'a Path, Exposure)> + 'a {
        self.protected
            .iter()
            .filter_map(move |own| Some((own.as_path(), exposure(own, folder)?)))
    }
}

/// How `own` is exposed in `folder`, if it is.
fn exposure(own: &Path, folder: &Path) -> Option<Exposure> {
    let links = own.ancestors().filter(|step| {
        step.symlink_metadata()
            .is_ok_and(|meta| meta.file_type().is_symlink())
    });
    for link in links {
        let dir = link.parent().and_then(|dir| dir.canonicalize().ok());
        if let Some(at) = dir.zip(link.file_name()).map(|(dir, name)| dir.join(name))
            && at.starts_with(folder)
        {
            return Some(Exposure::Link(at));
        }
    }
    let mut missing = Vec::new();
    for step in own.ancestors() {
        if let Ok(real) = step.canonicalize() {
            let place = missing
                .iter()
                .rev()
                .fold(real, |path: PathBuf, name| path.join(name));
            let how = if missing.is_empty() {
                Exposure::Inside
            } else {
                Exposure::Missing
            };
            return place.starts_with(folder).then_some(how);
        }
        missing.extend(step.file_name());
    }
    None
}
