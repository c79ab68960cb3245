use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a tool may touch. Policies decide on the effect, so it must be honest: a tool that
/// writes anywhere is `write`, one that starts a process is `exec`, one that talks to another
/// host is `network`; only a tool that changes nothing is `read`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Reads files, state or computes; changes nothing.
    Read,
    /// Writes files or state.
    Write,
    /// Runs a process.
    Exec,
    /// Reaches another host.
    Network,
}

impl Effect {
    /// Every effect, weakest first.
    pub const ALL: [Effect; 4] = [Effect::Read, Effect::Write, Effect::Exec, Effect::Network];

    /// The lowercase name used in policies, logs and descriptors.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::Exec => "exec",
            Effect::Network => "network",
        }
    }

    /// Whether the tool leaves its environment unchanged (MCP `readOnlyHint`).
    pub fn is_read_only(self) -> bool {
        match self {
            Effect::Read => true,
            Effect::Write | Effect::Exec | Effect::Network => false,
        }
    }

    /// Whether the tool may destroy or overwrite something (MCP `destructiveHint`). A network
    /// call is not destructive by itself; a write or a process can be.
    pub fn is_destructive(self) -> bool {
        match self {
            Effect::Write | Effect::Exec => true,
            Effect::Read | Effect::Network => false,
        }
    }

    /// Whether the tool reaches outside this machine (MCP `openWorldHint`).
    pub fn is_open_world(self) -> bool {
        match self {
            Effect::Network => true,
            Effect::Read | Effect::Write | Effect::Exec => false,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
