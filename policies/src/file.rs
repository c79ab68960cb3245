use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_kit::{Effect, Role};
use serde::Deserialize;

use crate::paths::normalize;
use crate::{ApprovalPolicy, Policy, PolicyError, Result, Rule, RuleAction, SandboxMode};

/// `policy.toml`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default = "default_sandbox")]
    sandbox: SandboxMode,
    #[serde(default = "default_approval")]
    approval: ApprovalPolicy,
    #[serde(default)]
    writable_roots: Vec<PathBuf>,
    #[serde(default)]
    approval_ttl: Option<String>,
    #[serde(default)]
    full_access_reason: Option<String>,
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    command_env: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: Option<String>,
    tool: Option<String>,
    pack: Option<String>,
    effect: Option<Effect>,
    principal: Option<String>,
    role: Option<Role>,
    command: Option<String>,
    action: RuleAction,
    reason: Option<String>,
}

fn default_sandbox() -> SandboxMode {
    SandboxMode::ReadOnly
}

fn default_approval() -> ApprovalPolicy {
    ApprovalPolicy::Untrusted
}

impl Policy {
    /// Parse and check `text` as the policy file `path`. Relative writable roots are relative
    /// to the file's folder. `allow_full_access` is the server's explicit opt-in to
    /// `danger-full-access`.
    pub fn parse(path: &Path, text: &str, allow_full_access: bool) -> Result<Policy> {
        let file: PolicyFile = toml::from_str(text).map_err(|error| PolicyError::Parse {
            path: path.to_owned(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: &str, message: String| PolicyError::Invalid {
            path: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let writable_roots: Vec<PathBuf> = file
            .writable_roots
            .iter()
            .map(|root| normalize(&base.join(root)))
            .collect();
        check_sandbox(path, &file, writable_roots.is_empty(), allow_full_access)?;
        let approval_ttl = match &file.approval_ttl {
            None => Duration::from_secs(3600),
            Some(text) => humantime::parse_duration(text).map_err(|error| {
                invalid(
                    "approval_ttl",
                    format!("`{text}`: {error} (e.g. \"30m\", \"2h\")"),
                )
            })?,
        };
        if approval_ttl.is_zero() {
            return Err(invalid("approval_ttl", "must be longer than zero".into()));
        }
        if let Some(bad) = file
            .command_env
            .iter()
            .position(|name| name.is_empty() || name.contains(['=', '\0']))
        {
            return Err(invalid(
                &format!("command_env[{bad}]"),
                "an environment variable name: not empty, no `=`".into(),
            ));
        }
        let mut rules = Vec::with_capacity(file.rules.len());
        for (index, rule) in file.rules.into_iter().enumerate() {
            check_rule(&rule).map_err(|(key, message)| {
                invalid(&format!("rules[{index}].{key}"), message.into())
            })?;
            let id = rule.id.unwrap_or_else(|| format!("{index}"));
            if rule
                .tool
                .as_deref()
                .is_some_and(|tool| tool.trim().is_empty())
            {
                return Err(invalid(
                    &format!("rules[{index}].tool"),
                    "must not be empty".into(),
                ));
            }
            let reason = rule.reason.unwrap_or_else(|| match rule.action {
                RuleAction::RequireApproval => "this rule requires a reviewer's approval".into(),
                RuleAction::Forbid => "this rule forbids the call".into(),
                RuleAction::Allow => "this rule lets the call run without a reviewer".into(),
                RuleAction::GrantNetwork => {
                    "this rule lets the call's commands reach the network".into()
                }
            });
            rules.push(Rule {
                id,
                tool: rule.tool,
                pack: rule.pack,
                effect: rule.effect,
                principal: rule.principal,
                role: rule.role,
                command: rule.command,
                action: rule.action,
                reason,
            });
        }
        Ok(Policy {
            sandbox: file.sandbox,
            approval: file.approval,
            writable_roots,
            approval_ttl,
            full_access_reason: file.full_access_reason,
            rules,
            command_env: file.command_env,
        })
    }
}

/// What a rule's action needs from its matchers: an `allow` names its tool (no blanket
/// waiver of the reviewer); a `command` pattern is not empty, and is not on a
/// `grant-network` rule (which is settled before any command is known).
fn check_rule(rule: &RuleFile) -> std::result::Result<(), (&'static str, &'static str)> {
    if rule.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err(("command", "must not be empty"));
    }
    match rule.action {
        RuleAction::Allow
            if rule
                .tool
                .as_deref()
                .is_none_or(|tool| tool.trim_end_matches('*').is_empty()) =>
        {
            Err((
                "tool",
                "an `allow` rule must name a tool (or a prefix such as `codex:*`)",
            ))
        }
        RuleAction::GrantNetwork if rule.command.is_some() => Err((
            "command",
            "`grant-network` is decided per call, before any command is known: drop `command`",
        )),
        RuleAction::Allow
        | RuleAction::RequireApproval
        | RuleAction::Forbid
        | RuleAction::GrantNetwork => Ok(()),
    }
}

/// Whether the file's sandbox mode has what it needs: writable roots for `workspace-write`; a
/// reason and the server's opt-in for `danger-full-access`.
fn check_sandbox(
    path: &Path,
    file: &PolicyFile,
    no_writable_roots: bool,
    allow_full_access: bool,
) -> Result<()> {
    let invalid = |key: &str, message: String| PolicyError::Invalid {
        path: path.to_owned(),
        key: key.to_owned(),
        message,
    };
    match file.sandbox {
        SandboxMode::WorkspaceWrite if no_writable_roots => {
            return Err(invalid(
                "writable_roots",
                "`workspace-write` needs at least one writable root".into(),
            ));
        }
        SandboxMode::DangerFullAccess => {
            let reason = file
                .full_access_reason
                .as_deref()
                .map(str::trim)
                .unwrap_or("");
            if reason.is_empty() {
                return Err(invalid(
                    "full_access_reason",
                    "`danger-full-access` needs a recorded reason".into(),
                ));
            }
            if !allow_full_access {
                return Err(invalid(
                    "sandbox",
                    "`danger-full-access` also needs the server started with `baton serve --allow-full-access`".into(),
                ));
            }
        }
        SandboxMode::ReadOnly | SandboxMode::WorkspaceWrite => {}
    }
    Ok(())
}
