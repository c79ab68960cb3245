use std::borrow::Cow;
use std::path::Path;

use baton_kit::{Effect, Principal, Role, Sandbox, ToolDescriptor};
use serde::Serialize;
use serde_json::Value;

use crate::paths::{normalize, paths_at, touches_git};
use crate::{ApprovalPolicy, Policy, Rule, RuleAction, SandboxMode};

/// What the policy says about one call. Every variant names the rule that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Run it.
    Allow {
        /// The rule that allowed it.
        rule: Cow<'static, str>,
    },
    /// Ask a reviewer first.
    NeedsApproval {
        /// The rule that asks.
        rule: Cow<'static, str>,
        /// Why, for the reviewer and the caller.
        reason: String,
    },
    /// Never run it.
    Forbid {
        /// The rule that forbids.
        rule: Cow<'static, str>,
        /// Why, for the caller.
        reason: String,
    },
}

impl Decision {
    /// The rule that decided.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow { rule }
            | Decision::NeedsApproval { rule, .. }
            | Decision::Forbid { rule, .. } => rule,
        }
    }

    /// The rule that decided, as an owned value (free for the built-in rules).
    pub fn rule_name(&self) -> Cow<'static, str> {
        match self {
            Decision::Allow { rule }
            | Decision::NeedsApproval { rule, .. }
            | Decision::Forbid { rule, .. } => rule.clone(),
        }
    }

    /// `allow`, `needs_approval` or `forbid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::NeedsApproval { .. } => "needs_approval",
            Decision::Forbid { .. } => "forbid",
        }
    }

    /// The reason, when the decision is not a plain allow.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Decision::Allow { .. } => None,
            Decision::NeedsApproval { reason, .. } | Decision::Forbid { reason, .. } => {
                Some(reason)
            }
        }
    }
}

/// The pack whose tools govern approvals themselves.
const GOVERNANCE_PACK: &str = "approvals";

impl Policy {
    /// What a call of `tool` by `principal` may touch while it runs: the sandbox mode, the
    /// writable roots, and whether a `grant-network` rule lets its commands reach the network.
    pub fn sandbox_for(&self, principal: &Principal, tool: &ToolDescriptor) -> Sandbox {
        let network = match self.sandbox {
            SandboxMode::DangerFullAccess => true,
            SandboxMode::ReadOnly | SandboxMode::WorkspaceWrite => self.rules.iter().any(|rule| {
                rule.action == RuleAction::GrantNetwork && rule.matches(principal, tool)
            }),
        };
        Sandbox {
            mode: self.sandbox,
            writable_roots: match self.sandbox {
                SandboxMode::ReadOnly => Vec::new(),
                SandboxMode::WorkspaceWrite | SandboxMode::DangerFullAccess => {
                    self.writable_roots.clone()
                }
            },
            network,
            env: self.command_env.clone(),
            protected: Vec::new(),
        }
    }

    /// Decide a call of `tool` with `args` by `principal`.
    pub fn decide(&self, principal: &Principal, tool: &ToolDescriptor, args: &Value) -> Decision {
        // Deciding approvals changes Baton's own records, not the workspace: it is governed by
        // role, under any sandbox. A reviewer approving is the point of the gate.
        if tool.pack == GOVERNANCE_PACK && tool.effect != Effect::Read {
            return if principal.has(Role::Reviewer) || principal.has(Role::Admin) {
                Decision::Allow {
                    rule: "approvals.reviewer".into(),
                }
            } else {
                Decision::Forbid {
                    rule: "approvals.reviewer".into(),
                    reason: format!(
                        "only a `reviewer` or `admin` principal may call `{}`; `{principal}` is neither",
                        tool.name
                    ),
                }
            };
        }
        if let Some(forbid) = self.sandbox_forbids(tool, args) {
            return forbid;
        }
        let fits: Vec<(&Rule, Fit)> = self
            .rules
            .iter()
            .filter(|rule| rule.action != RuleAction::GrantNetwork && rule.matches(principal, tool))
            .map(|rule| (rule, rule.fits_command(args)))
            .collect();
        let sure = |action: RuleAction| {
            fits.iter()
                .find(|(rule, fit)| rule.action == action && *fit == Fit::Yes)
                .map(|(rule, _)| *rule)
        };
        if let Some(rule) = sure(RuleAction::Forbid) {
            return Decision::Forbid {
                rule: format!("rules.{}", rule.id).into(),
                reason: rule.reason.clone(),
            };
        }
        // A forbid that cannot tell whether it applies outranks every allow.
        let doubtful = fits
            .iter()
            .any(|(rule, fit)| rule.action == RuleAction::Forbid && *fit == Fit::Unsure);
        if let Some(rule) = sure(RuleAction::Allow).filter(|_| !doubtful) {
            return Decision::Allow {
                rule: format!("rules.{}", rule.id).into(),
            };
        }
        // A rule asking a reviewer, or a forbid that cannot tell whether it applies (a
        // command with shell syntax): a person looks at it.
        let asking = fits.iter().find_map(|(rule, fit)| match (rule.action, fit) {
            (RuleAction::RequireApproval, Fit::Yes | Fit::Unsure) => {
                Some((*rule, rule.reason.clone()))
            }
            (RuleAction::Forbid, Fit::Unsure) => Some((
                *rule,
                format!(
                    "the command has shell syntax, so it cannot be told whether it runs what this rule forbids ({}): a reviewer decides",
                    rule.command.as_deref().unwrap_or_default()
                ),
            )),
            (RuleAction::RequireApproval | RuleAction::Forbid, Fit::No)
            | (RuleAction::Forbid, Fit::Yes)
            | (RuleAction::Allow | RuleAction::GrantNetwork, Fit::Yes | Fit::No | Fit::Unsure) => {
                None
            }
        });
        match (self.approval, asking) {
            (ApprovalPolicy::Never, Some((rule, reason))) => Decision::Forbid {
                rule: format!("rules.{}", rule.id).into(),
                reason: format!("{reason}; the approval policy is `never`, so it cannot run"),
            },
            (ApprovalPolicy::Untrusted | ApprovalPolicy::OnRequest, Some((rule, reason))) => {
                Decision::NeedsApproval {
                    rule: format!("rules.{}", rule.id).into(),
                    reason,
                }
            }
            (ApprovalPolicy::Untrusted, None) => match tool.effect {
                Effect::Read => Decision::Allow {
                    rule: "approval.untrusted.read".into(),
                },
                Effect::Write | Effect::Exec | Effect::Network => Decision::NeedsApproval {
                    rule: "approval.untrusted".into(),
                    reason: format!(
                        "the approval policy `untrusted` asks a reviewer before any `{}` call",
                        tool.effect
                    ),
                },
            },
            (ApprovalPolicy::OnRequest, None) => Decision::Allow {
                rule: "approval.on-request".into(),
            },
            (ApprovalPolicy::Never, None) => Decision::Allow {
                rule: "approval.never".into(),
            },
        }
    }

    /// Decide an action a tool's helper program asks to take beyond the sandbox it runs in
    /// (Codex asking to run a command or apply a patch): as [`Policy::decide`], except that
    /// nothing runs by default — an `allow` rule lets it, a reviewer decides the rest, and
    /// under `never` (nobody to ask) it is forbidden. An allowed action runs outside the
    /// helper's sandbox, so the defaults that let ordinary calls through do not apply.
    pub fn decide_nested(
        &self,
        principal: &Principal,
        tool: &ToolDescriptor,
        args: &Value,
    ) -> Decision {
        let decision = self.decide(principal, tool, args);
        match decision {
            Decision::Allow { rule } if !rule.starts_with("rules.") => match self.approval {
                ApprovalPolicy::Never => Decision::Forbid {
                    rule: "approval.nested".into(),
                    reason: format!(
                        "`{}` goes beyond the sandbox its helper runs in; only an `allow` rule lets that run without a reviewer, and the approval policy `never` asks nobody",
                        tool.name
                    ),
                },
                ApprovalPolicy::Untrusted | ApprovalPolicy::OnRequest => Decision::NeedsApproval {
                    rule: "approval.nested".into(),
                    reason: format!(
                        "`{}` goes beyond the sandbox its helper runs in: a reviewer decides, unless an `allow` rule names it",
                        tool.name
                    ),
                },
            },
            other => other,
        }
    }

    fn sandbox_forbids(&self, tool: &ToolDescriptor, args: &Value) -> Option<Decision> {
        let forbid = |rule: &'static str, reason: String| {
            Some(Decision::Forbid {
                rule: Cow::Borrowed(rule),
                reason,
            })
        };
        match (self.sandbox, tool.effect) {
            (SandboxMode::DangerFullAccess, _) | (_, Effect::Read) => None,
            (SandboxMode::ReadOnly, effect) => forbid(
                "sandbox.read-only",
                format!(
                    "the sandbox is `read-only` and `{}` has effect `{effect}`",
                    tool.name
                ),
            ),
            (SandboxMode::WorkspaceWrite, Effect::Network) => forbid(
                "sandbox.workspace-write.network",
                format!(
                    "the sandbox `workspace-write` allows no network access and `{}` reaches the network",
                    tool.name
                ),
            ),
            (SandboxMode::WorkspaceWrite, effect @ (Effect::Write | Effect::Exec)) => {
                if tool.path_args.is_empty() {
                    return forbid(
                        "sandbox.workspace-write.undeclared",
                        format!(
                            "`{}` has effect `{effect}` but declares no path arguments, so where it writes cannot be checked",
                            tool.name
                        ),
                    );
                }
                let base = tool
                    .root_arg
                    .as_deref()
                    .and_then(|pointer| args.pointer(pointer))
                    .and_then(Value::as_str)
                    .map_or_else(
                        || normalize(Path::new(".")),
                        |root| normalize(Path::new(root)),
                    );
                for pointer in &tool.path_args {
                    for named in paths_at(args, pointer) {
                        let path = normalize(&base.join(named));
                        if touches_git(&path) {
                            return forbid(
                                "sandbox.workspace-write.git",
                                format!(
                                    "`{}` would touch `{}`: `.git` is read-only in every sandbox but full access",
                                    tool.name,
                                    path.display()
                                ),
                            );
                        }
                        if !self
                            .writable_roots
                            .iter()
                            .any(|root| path.starts_with(root))
                        {
                            let roots: Vec<String> = self
                                .writable_roots
                                .iter()
                                .map(|r| r.display().to_string())
                                .collect();
                            return forbid(
                                "sandbox.workspace-write.outside-roots",
                                format!(
                                    "`{}` would touch `{}` (argument `{pointer}`), outside the writable roots {}",
                                    tool.name,
                                    path.display(),
                                    roots.join(", ")
                                ),
                            );
                        }
                    }
                }
                None
            }
        }
    }
}

impl Rule {
    fn matches(&self, principal: &Principal, tool: &ToolDescriptor) -> bool {
        let tool_matches =
            self.tool
                .as_deref()
                .is_none_or(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => tool.name.starts_with(prefix),
                    None => tool.name == pattern,
                });
        // What a tool's helper asks (`codex:exec`) is allowed only by a rule naming such
        // actions: `allow tool = "codex*"`, meant for the `codex_codex` tool, waives nothing
        // Codex asks beyond its sandbox.
        let nested = tool.name.contains(':');
        if nested
            && self.action == RuleAction::Allow
            && !self.tool.as_deref().is_some_and(|p| p.contains(':'))
        {
            return false;
        }
        tool_matches
            && self.pack.as_deref().is_none_or(|pack| tool.pack == pack)
            && self.effect.is_none_or(|effect| tool.effect == effect)
            && self
                .principal
                .as_deref()
                .is_none_or(|id| principal.id == id)
            && self.role.is_none_or(|role| principal.has(role))
    }

    /// Whether the call's command fits this rule's `command` pattern (always, without one). A
    /// command with shell syntax cannot be matched safely: [`Fit::Unsure`].
    fn fits_command(&self, args: &Value) -> Fit {
        let Some(pattern) = &self.command else {
            return Fit::Yes;
        };
        // Shell syntax is looked for in the command as given: a newline separates commands
        // before spacing is evened out for the pattern.
        let Some(text) = command_text(args) else {
            return Fit::No;
        };
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let fits = glob(pattern.as_bytes(), words.as_bytes());
        let plain = !text.contains(SHELL_SYNTAX) && !text.contains(char::is_control);
        // What a forbid names is forbidden however the rest is written.
        if self.action == RuleAction::Forbid && fits {
            return Fit::Yes;
        }
        match (fits, plain) {
            (_, false) => Fit::Unsure,
            (true, true) => Fit::Yes,
            (false, true) => Fit::No,
        }
    }
}

/// Whether a rule's `command` pattern fits a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    Yes,
    No,
    /// The command has shell syntax: it may run anything. It never fits an `allow`; a `forbid`
    /// it might fit sends it to a reviewer.
    Unsure,
}

/// Characters that make a command more than one plain program with plain arguments.
const SHELL_SYNTAX: &[char] = &[
    ';', '&', '|', '$', '`', '<', '>', '(', ')', '{', '}', '[', ']', '*', '?', '!', '~', '\\',
    '\'', '"', '#', '\n', '\r', '\0',
];

/// The command a call runs, as given: its `command` (a string, or an argv array joined by
/// spaces) or its `argv`.
fn command_text(args: &Value) -> Option<String> {
    let words = |value: &Value| -> Option<String> {
        let words: Option<Vec<&str>> = value.as_array()?.iter().map(Value::as_str).collect();
        Some(words?.join(" "))
    };
    match (args.get("command"), args.get("argv")) {
        (Some(Value::String(text)), _) => Some(text.clone()),
        (Some(list @ Value::Array(_)), _) | (None, Some(list)) => words(list),
        (Some(_), _) | (None, None) => None,
    }
}

/// Whether `text` is all of `pattern`, where `*` stands for any run of bytes. Greedy with one
/// backtrack point, so a long hostile command costs at most `pattern × text` steps.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&byte) if byte == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((at, from)) => {
                    p = at + 1;
                    t = from + 1;
                    star = Some((at, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}
