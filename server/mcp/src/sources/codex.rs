//! Codex behind `codex mcp-server` as a source: the `codex` tool runs in the sandbox Baton's
//! policy gives the call (never wider), Codex's approval requests become nested actions the
//! gate decides (`<source>:exec`, `<source>:patch`), and its events become the call's steps.
//! Other servers' elicitations are decided the same way, as `<source>:elicitation`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use baton_kit::{
    Effect, Exposure, NestedAction, Sandbox, SandboxMode, ToolError, Verdict, clip, json_kind,
};
use serde_json::{Map, Value, json};

use super::wire::CallScope;

/// The name `codex mcp-server` gives itself in `initialize`.
pub(crate) const SERVER_NAME: &str = "codex-mcp-server";

/// Longest text kept from a command's output or a message in a journal step.
const STEP_TEXT: usize = 2_000;
/// Most diff text a reviewer is asked to approve at once; a bigger patch is refused.
const MAX_PATCH_BYTES: usize = 1 << 20;
/// Shells whose `-c`/`-lc` script is shown (and matched by rules) as the command itself; only
/// these absolute paths, so a program the model wrote and named `sh` is never taken for one.
const SHELLS: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "/bin/zsh",
    "/bin/dash",
    "/usr/bin/sh",
    "/usr/bin/bash",
    "/usr/bin/zsh",
    "/usr/bin/dash",
];

/// Whether a server is Codex: by its name, or — failing closed for a renamed or wrapped Codex
/// — by a tool that takes Codex's `sandbox` and `approval-policy` arguments.
pub(crate) fn is_codex(server_name: Option<&str>, tools: &[rmcp::model::Tool]) -> bool {
    server_name == Some(SERVER_NAME)
        || tools.iter().any(|tool| {
            tool.input_schema
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| p.contains_key("sandbox") && p.contains_key("approval-policy"))
        })
}

/// What the agent may pass to each Codex tool; the rest is Baton's to set.
fn allowed_args(tool: &str) -> &'static [&'static str] {
    match tool {
        "codex" => &["prompt", "cwd"],
        "codex-reply" => &["prompt", "threadId", "cwd"],
        _ => &[],
    }
}

/// The input schema an agent sees for Codex's `tool`: only what it may set. `cwd` is required
/// for both tools — a new thread's folder, or the folder of the thread a reply continues — so
/// the gate checks it against the writable roots and Codex never works in Baton's own folder.
pub(crate) fn agent_schema(tool: &str, listed: &Map<String, Value>) -> Map<String, Value> {
    let allowed = allowed_args(tool);
    let mut properties: Map<String, Value> = listed
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(name, _)| allowed.contains(&name.as_str()))
                .map(|(name, schema)| (name.clone(), schema.clone()))
                .collect()
        })
        .unwrap_or_default();
    let required = match tool {
        "codex-reply" => {
            properties.insert(
                "cwd".into(),
                json!({"type": "string", "description": "The folder the thread works in (as given to `codex`)."}),
            );
            json!(["threadId", "prompt", "cwd"])
        }
        _ => json!(["prompt", "cwd"]),
    };
    Map::from_iter([
        ("type".to_owned(), json!("object")),
        ("properties".to_owned(), Value::Object(properties)),
        ("required".to_owned(), required),
        ("additionalProperties".to_owned(), json!(false)),
    ])
}

/// A Codex thread: who started it, in which folder, under which sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Thread {
    principal: String,
    cwd: String,
    /// `cwd` with its links resolved when the thread started: where Codex writes.
    real: String,
    mode: SandboxMode,
    network: bool,
    /// When it started, in threads started by this server (the oldest go first past
    /// [`MAX_THREADS`]).
    order: u64,
}

/// Most threads remembered; a reply to a forgotten one is refused (start a new thread).
const MAX_THREADS: usize = 10_000;

/// The threads Codex started for Baton's callers, so a reply continues only its own caller's
/// thread, in its folder, under no wider a sandbox than the policy now gives.
#[derive(Debug, Default)]
pub(crate) struct Threads(Mutex<(HashMap<String, Thread>, u64)>);

/// How wide a sandbox mode is, to compare them.
fn width(mode: SandboxMode) -> u8 {
    match mode {
        SandboxMode::ReadOnly => 0,
        SandboxMode::WorkspaceWrite => 1,
        SandboxMode::DangerFullAccess => 2,
    }
}

/// The sandbox Codex gets for a call of effect `effect` in `sandbox` (outside the gate: the
/// narrowest). A source declared as only reading gets a read-only Codex whatever the policy.
fn mode_for(effect: Effect, sandbox: Option<&Sandbox>) -> (SandboxMode, bool) {
    match (effect, sandbox) {
        (Effect::Read, _) | (_, None) => (SandboxMode::ReadOnly, false),
        (Effect::Write | Effect::Exec | Effect::Network, Some(s)) => (s.mode, s.network),
    }
}

/// The folder Codex may write in under `mode`: where `cwd` really is (a link in the worktree
/// must not make somewhere else writable), inside the writable roots, and in a root that holds
/// none of Baton's own files. Codex's sandbox makes its folder writable but hides nothing in
/// it, and commands in the same root can move folders, so a root holding the policy could
/// become Codex's folder; the whole root is checked, not only `cwd`.
fn codex_folder(
    cwd: &str,
    mode: SandboxMode,
    sandbox: Option<&Sandbox>,
) -> baton_kit::Result<PathBuf> {
    let real = std::fs::canonicalize(cwd)
        .map_err(|e| ToolError::invalid_args("/cwd", format!("`{cwd}`: {e}")))?;
    if mode != SandboxMode::WorkspaceWrite {
        return Ok(real);
    }
    let Some(sandbox) = sandbox else {
        return Ok(real);
    };
    let roots: Vec<PathBuf> = (sandbox.writable_roots.iter())
        .map(|root| std::fs::canonicalize(root).unwrap_or_else(|_| root.clone()))
        .filter(|root| real.starts_with(root))
        .collect();
    if roots.is_empty() {
        return Err(ToolError::Denied {
            rule: "sandbox.workspace-write.outside-roots".into(),
            reason: format!(
                "`{cwd}` is `{}`, outside the writable roots",
                real.display()
            ),
        });
    }
    let Some((own, root, exposure)) = sandbox.own_files_in(&roots).next() else {
        return Ok(real);
    };
    let how = match exposure {
        Exposure::Inside => "is in".to_owned(),
        Exposure::Missing => "would be made in".to_owned(),
        Exposure::Through(at) => format!("is reached through `{}` in", at.display()),
    };
    Err(ToolError::Denied {
        rule: "sandbox.workspace-write.protected".into(),
        reason: format!(
            "Baton's own file `{}` {how} `{}`, the writable root Codex's folder `{}` is in: \
             Codex's sandbox cannot hide a file, and commands in that root can move folders, \
             so Codex could put its own file in its place (the policy that decides its requests \
             among them); keep Baton's files out of the roots Codex works in",
            own.display(),
            root.display(),
            real.display()
        ),
    })
}

/// Refuse any argument the agent may not set to `tool`.
pub(crate) fn check_args(tool: &str, args: &Map<String, Value>) -> baton_kit::Result<()> {
    let allowed = allowed_args(tool);
    if let Some(extra) = args.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ToolError::invalid_args(
            format!("/{extra}"),
            format!(
                "`{extra}` is not the caller's to set: Baton sets Codex's sandbox, approval policy and configuration from its own policy (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    match args.get("cwd") {
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(ToolError::invalid_args(
            "/cwd",
            format!("must be a folder path, not {}", json_kind(other)),
        )),
        None => Err(ToolError::invalid_args("/cwd", "is required")),
    }
}

impl Threads {
    /// The arguments Codex gets for `principal`'s call of `tool` with `args` (already
    /// checked): for `codex`, Codex's sandbox and approval policy from the call's; for
    /// `codex-reply`, the thread must be the caller's own, in the folder given, and the
    /// policy must not have narrowed since it started (Codex keeps a thread's sandbox).
    pub(crate) fn arguments(
        &self,
        tool: &str,
        mut args: Map<String, Value>,
        principal: &str,
        effect: Effect,
        sandbox: Option<&Sandbox>,
    ) -> baton_kit::Result<Map<String, Value>> {
        let (mode, network) = mode_for(effect, sandbox);
        if tool == "codex-reply" {
            let cwd = args.remove("cwd");
            let id = args.get("threadId").and_then(Value::as_str).unwrap_or("");
            let known = self.0.lock().ok().and_then(|t| t.0.get(id).cloned());
            let Some(thread) = known else {
                return Err(ToolError::invalid_args(
                    "/threadId",
                    format!(
                        "no Codex thread `{id}` was started by this server; start one with `codex`"
                    ),
                ));
            };
            if thread.principal != principal {
                return Err(ToolError::Denied {
                    rule: "codex.thread".into(),
                    reason: format!("thread `{id}` belongs to `{}`", thread.principal),
                });
            }
            if cwd.as_ref().and_then(Value::as_str) != Some(thread.cwd.as_str()) {
                return Err(ToolError::invalid_args(
                    "/cwd",
                    format!("thread `{id}` works in `{}`", thread.cwd),
                ));
            }
            // Codex opens its folder by path at each command: it must still be where it was,
            // and still hold none of Baton's files.
            let real = codex_folder(&thread.real, thread.mode, sandbox)?;
            if real.as_os_str() != thread.real.as_str() {
                return Err(ToolError::Denied {
                    rule: "codex.thread".into(),
                    reason: format!(
                        "thread `{id}` works in `{}`, which now leads to `{}`: a link was put in \
                         its place; start a new thread with `codex`",
                        thread.real,
                        real.display()
                    ),
                });
            }
            if width(thread.mode) > width(mode) || (thread.network && !network) {
                return Err(ToolError::Denied {
                    rule: "codex.thread".into(),
                    reason: format!(
                        "thread `{id}` runs `{}`{} and the policy now gives `{}`{}; start a new thread with `codex`",
                        thread.mode.as_str(),
                        if thread.network { " with network" } else { "" },
                        mode.as_str(),
                        if network { " with network" } else { "" },
                    ),
                });
            }
            return Ok(args);
        }
        if let Some(Value::String(cwd)) = args.get("cwd") {
            let real = codex_folder(cwd, mode, sandbox)?;
            args.insert("cwd".into(), json!(real.display().to_string()));
        }
        args.insert("sandbox".into(), json!(mode.as_str()));
        // Codex asks for whatever its sandbox would refuse; the gate decides each request.
        args.insert("approval-policy".into(), json!("on-request"));
        args.insert(
            "config".into(),
            json!({
                "sandbox_workspace_write": {
                    "writable_roots": [],
                    "network_access": network,
                    "exclude_tmpdir_env_var": true,
                    "exclude_slash_tmp": true,
                }
            }),
        );
        Ok(args)
    }

    /// A `codex` call by `principal` in `folder` (`cwd` as given, and as Codex got it) under
    /// `sandbox` answered with `result`: its thread is theirs.
    pub(crate) fn started(
        &self,
        result: &Value,
        principal: &str,
        (cwd, real): (&str, &str),
        effect: Effect,
        sandbox: Option<&Sandbox>,
    ) {
        if let (Some(id), Ok(mut guard)) = (
            result.get("threadId").and_then(Value::as_str),
            self.0.lock(),
        ) {
            let (threads, next) = &mut *guard;
            let (mode, network) = mode_for(effect, sandbox);
            *next += 1;
            let thread = Thread {
                principal: principal.to_owned(),
                cwd: cwd.to_owned(),
                real: real.to_owned(),
                mode,
                network,
                order: *next,
            };
            threads.insert(id.to_owned(), thread);
            if threads.len() > MAX_THREADS
                && let Some(oldest) = threads
                    .iter()
                    .min_by_key(|(_, t)| t.order)
                    .map(|(id, _)| id.clone())
            {
                threads.remove(&oldest);
            }
        }
    }
}

/// Why a request cannot even be put to the gate.
#[derive(Debug, thiserror::Error)]
enum Unaskable {
    #[error("the request names no command")]
    NoCommand,
    #[error("the request names no folder")]
    NoFolder,
    #[error("the request names no changes")]
    NoChanges,
    #[error("`{0}` is not an absolute path")]
    Relative(String),
    #[error("`{0}` goes up with `..`")]
    ParentDir(String),
    #[error("`{0}` is a link to nothing")]
    Dangling(String),
    #[error("the change to `{0}` is not one Baton knows how to check")]
    UnknownChange(String),
    #[error(
        "the patch is {0} bytes, more than a reviewer is asked to read at once ({MAX_PATCH_BYTES}); split it"
    )]
    TooBig(usize),
    #[error("unknown request kind `{0}`")]
    UnknownKind(String),
}

/// `path` as the system will reach it: absolute, without `..` (which the system applies
/// after following links, so it cannot be taken away on paper), and the longest part of it
/// that exists with its symlinks resolved — an approved patch or command runs outside Codex's
/// sandbox, so where it lands is what the gate must check. A link to nothing is refused: it
/// would be followed to wherever it points.
fn resolved(path: &str) -> Result<String, Unaskable> {
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(Unaskable::Relative(path.to_owned()));
    }
    if given
        .components()
        .any(|part| part == std::path::Component::ParentDir)
    {
        return Err(Unaskable::ParentDir(path.to_owned()));
    }
    let lexical = baton_policies::normalize(given);
    let mut existing = lexical.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let full = rest.iter().rev().fold(real, |at, part| at.join(part));
            return Ok(full.display().to_string());
        }
        if existing.symlink_metadata().is_ok() {
            return Err(Unaskable::Dangling(existing.display().to_string()));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                existing = parent;
            }
            _ => return Ok(lexical.display().to_string()),
        }
    }
}

/// The command Codex shows as one line: the script of a known shell's `-c`/`-lc`, else the
/// words.
fn command_line(argv: &[Value]) -> String {
    let words: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
    match words.as_slice() {
        [shell, flag, script] if matches!(*flag, "-c" | "-lc") && SHELLS.contains(shell) => {
            (*script).to_owned()
        }
        _ => words.join(" "),
    }
}

/// What Codex asks to run, as the gate decides it.
fn exec_action(source: &str, params: &Value, reason: String) -> Result<NestedAction, Unaskable> {
    let argv = params
        .get("codex_command")
        .and_then(Value::as_array)
        .filter(|argv| !argv.is_empty())
        .ok_or(Unaskable::NoCommand)?;
    let cwd = params
        .get("codex_cwd")
        .and_then(Value::as_str)
        .ok_or(Unaskable::NoFolder)?;
    Ok(NestedAction {
        name: format!("{source}:exec"),
        pack: source.to_owned(),
        effect: Effect::Exec,
        args: json!({"command": command_line(argv), "argv": argv, "cwd": resolved(cwd)?}),
        path_args: vec!["/cwd".into()],
        reason,
    })
}

/// What Codex asks to change, as the gate decides it: every file it touches (a move's
/// destination too), resolved.
fn patch_action(source: &str, params: &Value, reason: String) -> Result<NestedAction, Unaskable> {
    let changes = params
        .get("codex_changes")
        .and_then(Value::as_object)
        .filter(|changes| !changes.is_empty())
        .ok_or(Unaskable::NoChanges)?;
    let size: usize = changes.values().map(|c| c.to_string().len()).sum();
    if size > MAX_PATCH_BYTES {
        return Err(Unaskable::TooBig(size));
    }
    let mut files = Vec::new();
    for (path, change) in changes {
        match change.get("type").and_then(Value::as_str) {
            Some("add" | "delete" | "update") => {}
            _ => return Err(Unaskable::UnknownChange(path.clone())),
        }
        files.push(resolved(path)?);
        if let Some(to) = change.get("move_path").and_then(Value::as_str) {
            files.push(resolved(to)?);
        }
    }
    let mut args = json!({"files": files, "changes": changes});
    let mut path_args = vec!["/files".to_owned()];
    if let Some(root) = params.get("codex_grant_root").and_then(Value::as_str) {
        args["grant_root"] = json!(resolved(root)?);
        path_args.push("/grant_root".into());
    }
    Ok(NestedAction {
        name: format!("{source}:patch"),
        pack: source.to_owned(),
        effect: Effect::Write,
        args,
        path_args,
        reason,
    })
}

/// What a server asks, as the gate decides it.
fn action(source: &str, params: &Value) -> Result<NestedAction, Unaskable> {
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    let message = text("message").unwrap_or("").to_owned();
    let reason = match text("codex_reason") {
        Some(why) => format!("{message} ({why})"),
        None => message,
    };
    match text("codex_elicitation") {
        Some("exec-approval") => exec_action(source, params, reason),
        Some("patch-approval") => patch_action(source, params, reason),
        Some(other) => Err(Unaskable::UnknownKind(other.to_owned())),
        None => Ok(NestedAction {
            name: format!("{source}:elicitation"),
            pack: source.to_owned(),
            effect: Effect::Exec,
            args: json!({"message": reason, "requested_schema": params.get("requestedSchema")}),
            path_args: Vec::new(),
            reason,
        }),
    }
}

/// Refuse a request that cannot be put to the gate, on the call's record.
pub(crate) fn refused_unasked(scope: &CallScope, why: &str) -> Value {
    let _ = scope.steps.send(json!({
        "type": "approval_request",
        "outcome": format!("refused: {why}"),
        "summary": one_line(&format!("asked something Baton cannot put to the gate: {why}")),
    }));
    refusal(why.to_owned())
}

/// The answer that refuses a request, as both Codex (`decision`) and other servers
/// (`action`) read it.
pub(crate) fn refusal(why: String) -> Value {
    json!({"action": "decline", "content": null, "decision": {"denied": {"rejection": why}}})
}

/// The answer to an elicitation from `source` for the call `scope`: decided by the gate for
/// that call's caller, journaled as one of its steps. Codex reads `decision`; other servers
/// read `action` — an accept carries no content, so a request asking for content is declined
/// before anyone is asked.
pub(crate) async fn answer(source: &str, scope: &CallScope, params: &Value) -> Value {
    let wants_content = params
        .pointer("/requestedSchema/required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    if wants_content {
        return refused_unasked(
            scope,
            "Baton answers requests yes or no; it cannot fill in a form",
        );
    }
    let action = match action(source, params) {
        Ok(action) => action,
        Err(why) => return refused_unasked(scope, &format!("Baton refuses this request: {why}")),
    };
    let asked = json!({"name": action.name, "args": action.args});
    let what = action_summary(&action);
    let asking = std::time::Instant::now();
    let verdict = scope.context.decide(action, scope.closed.clone()).await;
    let waited_ms = asking.elapsed().as_millis() as u64;
    let (reply, outcome, approval_id) = match verdict {
        Ok(Verdict::Allowed { approval_id }) => (
            json!({"action": "accept", "content": {}, "decision": "approved"}),
            match approval_id {
                Some(_) => "approved by a reviewer".to_owned(),
                None => "allowed by the policy".to_owned(),
            },
            approval_id,
        ),
        Ok(Verdict::Refused {
            rule,
            reason,
            approval_id,
        }) => (
            refusal(format!("refused by Baton's policy ({rule}): {reason}")),
            format!("refused ({rule}): {reason}"),
            approval_id,
        ),
        Err(error) => (
            refusal(format!("Baton could not decide: {error}")),
            format!("not decided: {error}"),
            None,
        ),
    };
    let mut line = format!("asked to {what}: {outcome}");
    if let Some(id) = &approval_id {
        line.push_str(&format!(" (approval {id})"));
    }
    // The time a reviewer took counts as the run's waiting, not its work.
    let waited_ms = approval_id.as_ref().map(|_| waited_ms);
    let _ = scope.steps.send(json!({
        "type": "approval_request",
        "asked": asked,
        "outcome": outcome,
        "approval_id": approval_id,
        "waited_ms": waited_ms,
        "summary": one_line(&line),
    }));
    reply
}

fn action_summary(action: &NestedAction) -> String {
    match action.effect {
        Effect::Exec if action.args.get("command").is_some() => format!(
            "run `{}`",
            action.args["command"].as_str().unwrap_or_default()
        ),
        Effect::Write => format!("apply a patch to {}", files(&action.args["files"])),
        Effect::Exec | Effect::Read | Effect::Network => format!("answer `{}`", action.reason),
    }
}

/// `a.txt, b.txt` from an array of paths, or the keys of a changes map.
fn files(value: &Value) -> String {
    let names: Vec<&str> = match value {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::Object(map) => map.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let mut text = names.join(", ");
    clip(&mut text, STEP_TEXT);
    text
}

fn clipped(value: Option<&Value>) -> String {
    let mut text = value.and_then(Value::as_str).unwrap_or_default().to_owned();
    clip(&mut text, STEP_TEXT);
    text
}

/// `text` as one printable line, at most [`STEP_TEXT`] long: what a server writes ends up on
/// a terminal, so no control character (an escape sequence) gets through.
fn one_line(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(&mut line, STEP_TEXT);
    line
}

/// A Codex event as a journal step (an object with a `type` and a one-line `summary`), for
/// the events a run's reader cares about; `None` for the rest.
pub(crate) fn step(msg: &Value) -> Option<Value> {
    let kind = msg.get("type")?.as_str()?;
    let mut command = msg
        .get("command")
        .and_then(Value::as_array)
        .map(|argv| command_line(argv))
        .unwrap_or_default();
    clip(&mut command, STEP_TEXT);
    let changed = msg.get("changes").map(files).unwrap_or_default();
    let (mut step, summary) = match kind {
        "exec_command_begin" => (
            json!({"call_id": msg["call_id"], "command": command, "cwd": msg["cwd"]}),
            format!("runs `{command}`"),
        ),
        "exec_command_end" => {
            let ms = msg["duration"]["secs"].as_u64().unwrap_or(0) * 1000
                + msg["duration"]["nanos"].as_u64().unwrap_or(0) / 1_000_000;
            (
                json!({"call_id": msg["call_id"], "command": command, "exit_code": msg["exit_code"],
                       "duration_ms": ms, "output": clipped(msg.get("aggregated_output"))}),
                format!("`{command}` exited {} in {ms} ms", msg["exit_code"]),
            )
        }
        "patch_apply_begin" => (
            json!({"call_id": msg["call_id"], "auto_approved": msg["auto_approved"], "files": changed}),
            format!("applies a patch to {changed}"),
        ),
        "patch_apply_end" => {
            let ok = msg["success"].as_bool() == Some(true);
            let output = clipped(msg.get(if ok { "stdout" } else { "stderr" }));
            (
                json!({"call_id": msg["call_id"], "success": ok, "files": changed, "output": output}),
                format!(
                    "patch {} {changed}",
                    if ok { "applied to" } else { "failed on" }
                ),
            )
        }
        "token_count" => {
            let last = msg.pointer("/info/last_token_usage")?;
            let input = last["input_tokens"].as_u64().unwrap_or(0);
            let output = last["output_tokens"].as_u64().unwrap_or(0);
            return Some(json!({
                "type": "token_usage",
                "usage": {"input_tokens": input, "output_tokens": output},
                "summary": format!("{input} tokens in, {output} out"),
            }));
        }
        "agent_message" => {
            let said = clipped(msg.get("message"));
            (json!({"message": said}), format!("says: {said}"))
        }
        "task_complete" => (
            json!({"duration_ms": msg["duration_ms"]}),
            format!("finished in {} ms", msg["duration_ms"]),
        ),
        "error" | "stream_error" => {
            let said = clipped(msg.get("message"));
            (json!({"message": said}), format!("error: {said}"))
        }
        _ => return None,
    };
    step["type"] = json!(kind);
    step["summary"] = json!(one_line(&summary));
    Some(step)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A fresh folder `base` holding a writable root `repo` with a folder `sub`, and
    /// `elsewhere/policy.toml` outside it; canonical paths.
    fn scene(test: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("baton-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("repo/sub")).unwrap();
        std::fs::create_dir_all(base.join("elsewhere")).unwrap();
        std::fs::write(base.join("elsewhere/policy.toml"), "").unwrap();
        let base = base.canonicalize().unwrap();
        let repo = base.join("repo");
        (base, repo)
    }

    /// `workspace-write` in `repo`, protecting `own`.
    fn sandbox(repo: &Path, own: &Path) -> Sandbox {
        Sandbox {
            mode: SandboxMode::WorkspaceWrite,
            writable_roots: vec![repo.to_owned()],
            network: false,
            env: Vec::new(),
            protected: vec![own.to_owned()],
        }
    }

    fn link(to: &Path, at: &Path) {
        std::os::unix::fs::symlink(to, at).unwrap();
    }

    /// Codex's sandbox can make a folder writable but hide nothing in it, and commands in the
    /// same root can move folders: a Codex started in a root where one of Baton's files is,
    /// would be made, or is reached through a replaceable entry could rewrite Baton's policy.
    /// Refused before Codex starts, naming how; a root holding none of them is fine.
    #[test]
    fn codex_never_starts_in_a_root_holding_batons_files() {
        let (base, repo) = scene("codex-root");
        let sub = repo.join("sub");
        std::fs::write(repo.join("baton.toml"), "").unwrap();
        link(&base.join("elsewhere/policy.toml"), &repo.join("link.toml"));
        link(&base.join("elsewhere"), &repo.join("conf"));
        link(&repo.join("baton.toml"), &base.join("outside.toml"));
        link(&repo.join("absent.toml"), &base.join("dangling.toml"));
        let start = |own: &Path| {
            let args = json!({"prompt": "hi", "cwd": sub});
            let args = args.as_object().cloned().unwrap();
            let sandbox = sandbox(&repo, own);
            Threads::default().arguments("codex", args, "alice", Effect::Exec, Some(&sandbox))
        };
        let through = |at: &str| format!("is reached through `{}` in", repo.join(at).display());
        for (own, how) in [
            (repo.join("baton.toml"), "is in".to_owned()),
            (base.join("outside.toml"), "is in".to_owned()),
            (repo.join("policy.toml"), "would be made in".to_owned()),
            (sub.join(".baton/store"), "would be made in".to_owned()),
            (base.join("dangling.toml"), "would be made in".to_owned()),
            (repo.join("link.toml"), through("link.toml")),
            (repo.join("conf/policy.toml"), through("conf")),
            (sub.join("../../elsewhere/policy.toml"), through("sub")),
        ] {
            match start(&own) {
                Err(ToolError::Denied { rule, reason }) => {
                    assert_eq!(rule, "sandbox.workspace-write.protected");
                    let named = format!(
                        "Baton's own file `{}` {how} `{}`,",
                        own.display(),
                        repo.display()
                    );
                    assert!(reason.starts_with(&named), "{reason}");
                }
                other => panic!("{} let Codex start: {other:?}", own.display()),
            }
        }
        for own in [base.join("policy.toml"), base.join("elsewhere/policy.toml")] {
            assert!(start(&own).is_ok());
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Codex opens its folder by path at each command: a thread whose folder a command has
    /// since swapped for a link (inside the root or out of it) cannot go on.
    #[test]
    fn a_codex_thread_whose_folder_was_swapped_cannot_go_on() {
        let (base, repo) = scene("codex-swap");
        let sub = repo.join("sub");
        let own = base.join("policy.toml");
        let sandbox = sandbox(&repo, &own);
        let threads = Threads::default();
        let args = json!({"prompt": "hi", "cwd": sub})
            .as_object()
            .cloned()
            .unwrap();
        let sent = threads.arguments("codex", args, "alice", Effect::Exec, Some(&sandbox));
        let cwd = sub.display().to_string();
        let real = sent.unwrap()["cwd"].as_str().unwrap().to_owned();
        let started = json!({"threadId": "t1"});
        threads.started(
            &started,
            "alice",
            (&cwd, &real),
            Effect::Exec,
            Some(&sandbox),
        );
        let reply = || {
            let args = json!({"threadId": "t1", "prompt": "go on", "cwd": cwd});
            let args = args.as_object().cloned().unwrap();
            threads.arguments("codex-reply", args, "alice", Effect::Exec, Some(&sandbox))
        };
        assert!(reply().is_ok());
        std::fs::rename(&sub, repo.join("moved")).unwrap();
        for (to, refused) in [
            (repo.join("moved"), "codex.thread"),
            (
                base.join("elsewhere"),
                "sandbox.workspace-write.outside-roots",
            ),
        ] {
            let _ = std::fs::remove_file(&sub);
            link(&to, &sub);
            match reply() {
                Err(ToolError::Denied { rule, reason }) => {
                    assert_eq!(rule, refused, "{reason}");
                    let moved = format!("now leads to `{}`", to.display());
                    assert!(
                        rule != "codex.thread" || reason.contains(&moved),
                        "{reason}"
                    );
                }
                other => panic!("a swapped folder let the thread go on: {other:?}"),
            }
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
