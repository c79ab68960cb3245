use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use baton_kit::SandboxMode;
use baton_kit::{Effect, Role};
use serde::{Deserialize, Serialize};

/// When a reviewer must approve a call the sandbox allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalPolicy {
    /// Only reads run without asking (the default).
    Untrusted,
    /// Calls run unless a rule asks for approval.
    OnRequest,
    /// Never ask: what would need approval is forbidden instead.
    Never,
}

impl ApprovalPolicy {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Untrusted => "untrusted",
            ApprovalPolicy::OnRequest => "on-request",
            ApprovalPolicy::Never => "never",
        }
    }
}

impl fmt::Display for ApprovalPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a matching rule does. A `forbid` always wins; an `allow` waives the reviewer for the
/// calls it names (the sandbox is checked first: it opens no path the sandbox closes);
/// `require-approval` asks one.
/// `grant-network` opens no call: it lets the commands of a call the policy already allows
/// reach the network under `workspace-write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    /// Ask a reviewer first.
    RequireApproval,
    /// Never run it.
    Forbid,
    /// Run it without a reviewer (e.g. Codex running `cargo test` in the worktree — which
    /// Codex then runs outside its own sandbox). Must name a `tool`.
    Allow,
    /// Let the commands this call starts reach the network (they never do otherwise under
    /// `workspace-write`).
    GrantNetwork,
}

/// A per-tool rule. Every given matcher must match; none given matches every call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Name used in decisions (`rules.<id>`).
    pub id: String,
    /// Tool name, or a prefix ending in `*` (`sop_*`).
    pub tool: Option<String>,
    /// Pack name.
    pub pack: Option<String>,
    /// Effect.
    pub effect: Option<Effect>,
    /// Principal id.
    pub principal: Option<String>,
    /// A role the caller holds.
    pub role: Option<Role>,
    /// The command the call runs (its `command` or `argv` argument, words joined by single
    /// spaces), as a pattern where `*` matches any run of characters. A command with shell
    /// syntax (`;`, `|`, `&`, `$`, quotes, redirections…) fails closed: it matches every
    /// `forbid` and `require-approval` naming a command and no `allow`, so `cargo test*` cannot
    /// allow `cargo test; curl …`.
    pub command: Option<String>,
    /// What it does.
    pub action: RuleAction,
    /// Why, for the decision.
    pub reason: String,
}

/// A complete policy, as loaded from a file or built in.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// What calls may touch.
    pub sandbox: SandboxMode,
    /// When to ask.
    pub approval: ApprovalPolicy,
    /// Where `workspace-write` allows writes (absolute, normalised).
    pub writable_roots: Vec<PathBuf>,
    /// How long an approval may wait and then stay usable.
    pub approval_ttl: Duration,
    /// Why full access was granted (required with `danger-full-access`).
    pub full_access_reason: Option<String>,
    /// Per-tool rules, in file order.
    pub rules: Vec<Rule>,
    /// Environment variables passed to commands besides the built-in allowlist.
    pub command_env: Vec<String>,
}

impl Default for Policy {
    /// `read-only` + `untrusted`, no rules: reads run, nothing else does.
    fn default() -> Self {
        Policy {
            sandbox: SandboxMode::ReadOnly,
            approval: ApprovalPolicy::Untrusted,
            writable_roots: Vec::new(),
            approval_ttl: Duration::from_secs(3600),
            full_access_reason: None,
            rules: Vec::new(),
            command_env: Vec::new(),
        }
    }
}
