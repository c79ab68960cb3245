use std::fmt;
use std::path::PathBuf;

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
    /// Baton's own configuration, policy file and data folder (a call that could rewrite the
    /// policy or the store could grant itself anything).
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
