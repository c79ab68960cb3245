//! Codex behind `codex mcp-server` as a source: the `codex` tool runs in the sandbox Baton's
//! policy gives the call (never wider), Codex's approval requests become nested actions the
//! gate decides (`<source>:exec`, `<source>:patch`), and its events become the call's steps.
//! Other servers' elicitations are decided the same way, as `<source>:elicitation`.

use std::sync::Arc;

use baton_kit::{Effect, NestedAction, Sandbox, SandboxMode, ToolError, Verdict, clip, json_kind};
use serde_json::{Map, Value, json};

use super::wire::CallScope;

/// The name `codex mcp-server` gives itself in `initialize`.
pub(crate) const SERVER_NAME: &str = "codex-mcp-server";

/// Longest text kept from a command's output or a message in a journal step.
const STEP_TEXT: usize = 2_000;
/// Most diff text a reviewer is asked to approve at once; a bigger patch is refused.
const MAX_PATCH_BYTES: usize = 1 << 20;

/// What the agent may pass to each Codex tool; the rest is Baton's to set.
fn allowed_args(tool: &str) -> &'static [&'static str] {
    match tool {
        "codex" => &["prompt", "cwd"],
        "codex-reply" => &["prompt", "threadId", "conversationId"],
        _ => &[],
    }
}

/// The input schema an agent sees for Codex's `tool`: only what it may set (`cwd` required,
/// so Codex never works in Baton's own folder).
pub(crate) fn agent_schema(tool: &str, listed: &Map<String, Value>) -> Map<String, Value> {
    let allowed = allowed_args(tool);
    let properties: Map<String, Value> = listed
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
    let required: Vec<&str> = match tool {
        "codex" => vec!["prompt", "cwd"],
        _ => vec!["prompt"],
    };
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    schema.insert("required".into(), json!(required));
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// The arguments Codex gets for an agent's call of `tool`: the agent's own (only those it may
/// set), plus Codex's sandbox and approval policy from the sandbox the gate gave the call.
pub(crate) fn arguments(
    tool: &str,
    mut args: Map<String, Value>,
    sandbox: Option<&Sandbox>,
) -> baton_kit::Result<Map<String, Value>> {
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
    if tool != "codex" {
        return Ok(args);
    }
    if let Some(cwd) = args.get("cwd")
        && !cwd.is_string()
    {
        return Err(ToolError::invalid_args(
            "/cwd",
            format!("must be a folder path, not {}", json_kind(cwd)),
        ));
    }
    // Outside the gate there is no policy to derive from: the narrowest sandbox.
    let (mode, network) = sandbox.map_or((SandboxMode::ReadOnly, false), |s| (s.mode, s.network));
    args.insert("sandbox".into(), json!(mode.as_str()));
    // Codex asks for whatever its sandbox would refuse; the gate decides each request.
    args.insert("approval-policy".into(), json!("on-request"));
    args.insert(
        "config".into(),
        json!({
            "sandbox_workspace_write": {
                "network_access": network,
                "exclude_tmpdir_env_var": true,
                "exclude_slash_tmp": true,
            }
        }),
    );
    Ok(args)
}

/// The command Codex shows as one line: the script of `bash -lc SCRIPT`, else the words.
fn command_line(argv: &[Value]) -> String {
    let words: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
    match words.as_slice() {
        [shell, flag, script]
            if matches!(*flag, "-c" | "-lc")
                && ["sh", "bash", "zsh", "dash"]
                    .iter()
                    .any(|s| shell.rsplit('/').next() == Some(*s)) =>
        {
            (*script).to_owned()
        }
        _ => words.join(" "),
    }
}

/// What Codex asks, as the gate decides it; `Err` with why it cannot even be asked.
fn action(source: &str, params: &Value) -> Result<NestedAction, String> {
    let text = |key: &str| params.get(key).and_then(Value::as_str);
    let message = text("message").unwrap_or("").to_owned();
    let reason = match text("codex_reason") {
        Some(why) => format!("{message} ({why})"),
        None => message,
    };
    match text("codex_elicitation") {
        Some("exec-approval") => {
            let argv = params
                .get("codex_command")
                .and_then(Value::as_array)
                .ok_or("the request names no command")?;
            let cwd = text("codex_cwd").ok_or("the request names no folder")?;
            Ok(NestedAction {
                name: format!("{source}:exec"),
                pack: source.to_owned(),
                effect: Effect::Exec,
                args: json!({"command": command_line(argv), "argv": argv, "cwd": cwd}),
                path_args: vec!["/cwd".into()],
                reason,
            })
        }
        Some("patch-approval") => {
            let changes = params
                .get("codex_changes")
                .and_then(Value::as_object)
                .ok_or("the request names no changes")?;
            let size: usize = changes.values().map(|c| c.to_string().len()).sum();
            if size > MAX_PATCH_BYTES {
                return Err(format!(
                    "the patch is {size} bytes, more than a reviewer is asked to read at once ({MAX_PATCH_BYTES}); split it"
                ));
            }
            let mut files: Vec<&str> = changes.keys().map(String::as_str).collect();
            // A move writes its destination too.
            files.extend(
                changes
                    .values()
                    .filter_map(|c| c.get("move_path").and_then(Value::as_str)),
            );
            let mut args = json!({"files": files, "changes": changes});
            let mut path_args = vec!["/files".to_owned()];
            if let Some(root) = text("codex_grant_root") {
                args["grant_root"] = json!(root);
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
        Some(other) => Err(format!("unknown request kind `{other}`")),
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

/// The answer to an elicitation from `source`: decided by the gate for the call it belongs
/// to, journaled as one of that call's steps. Codex reads `decision`; other servers read
/// `action` (an accept carries no content, so one asking for content is declined).
pub(crate) async fn answer(source: &str, scope: Option<Arc<CallScope>>, params: &Value) -> Value {
    let refuse = |why: String| json!({"action": "decline", "content": null, "decision": {"denied": {"rejection": why}}});
    let Some(scope) = scope else {
        return refuse(format!(
            "no Baton call is waiting on `{source}` for this request, so nobody may approve it"
        ));
    };
    let action = match action(source, params) {
        Ok(action) => action,
        Err(why) => return refuse(format!("Baton refuses this request: {why}")),
    };
    let wants_content = params
        .pointer("/requestedSchema/required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    let asked = json!({"name": action.name, "args": action.args});
    let summary_of = action_summary(&action);
    let verdict = scope.context.decide(action).await;
    let (reply, outcome, approval_id) = match verdict {
        Ok(Verdict::Allowed { approval_id }) if !wants_content => (
            json!({"action": "accept", "content": {}, "decision": "approved"}),
            match approval_id {
                Some(_) => "approved by a reviewer".to_owned(),
                None => "allowed by the policy".to_owned(),
            },
            approval_id,
        ),
        Ok(Verdict::Allowed { approval_id }) => (
            refuse("Baton approves requests but cannot fill in a form".into()),
            "declined: the request asks for content".to_owned(),
            approval_id,
        ),
        Ok(Verdict::Refused {
            rule,
            reason,
            approval_id,
        }) => (
            refuse(format!("refused by Baton's policy ({rule}): {reason}")),
            format!("refused ({rule}): {reason}"),
            approval_id,
        ),
        Err(error) => (
            refuse(format!("Baton could not decide: {error}")),
            format!("not decided: {error}"),
            None,
        ),
    };
    let mut line = format!("asked to {summary_of}: {outcome}");
    if let Some(id) = &approval_id {
        line.push_str(&format!(" (approval {id})"));
    }
    clip(&mut line, STEP_TEXT);
    let _ = scope.steps.send(json!({
        "type": "approval_request",
        "asked": asked,
        "outcome": outcome,
        "approval_id": approval_id,
        "summary": line,
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
    names.join(", ")
}

fn clipped(value: Option<&Value>) -> String {
    let mut text = value.and_then(Value::as_str).unwrap_or_default().to_owned();
    clip(&mut text, STEP_TEXT);
    text
}

/// A Codex event as a journal step (an object with a `type` and a one-line `summary`), for
/// the events a run's reader cares about; `None` for the rest.
pub(crate) fn step(msg: &Value) -> Option<Value> {
    let kind = msg.get("type")?.as_str()?;
    let command = msg
        .get("command")
        .and_then(Value::as_array)
        .map(|argv| command_line(argv))
        .unwrap_or_default();
    Some(match kind {
        "exec_command_begin" => json!({
            "type": kind, "call_id": msg["call_id"], "command": command, "cwd": msg["cwd"],
            "summary": format!("runs `{command}`"),
        }),
        "exec_command_end" => {
            let ms = msg["duration"]["secs"].as_u64().unwrap_or(0) * 1000
                + msg["duration"]["nanos"].as_u64().unwrap_or(0) / 1_000_000;
            json!({
                "type": kind, "call_id": msg["call_id"], "command": command,
                "exit_code": msg["exit_code"], "duration_ms": ms,
                "output": clipped(msg.get("aggregated_output")),
                "summary": format!("`{command}` exited {} in {ms} ms", msg["exit_code"]),
            })
        }
        "patch_apply_begin" => json!({
            "type": kind, "call_id": msg["call_id"], "auto_approved": msg["auto_approved"],
            "files": msg.get("changes").map(files).unwrap_or_default(),
            "summary": format!("applies a patch to {}", msg.get("changes").map(files).unwrap_or_default()),
        }),
        "patch_apply_end" => {
            let ok = msg["success"].as_bool() == Some(true);
            json!({
                "type": kind, "call_id": msg["call_id"], "success": ok,
                "files": msg.get("changes").map(files).unwrap_or_default(),
                "output": clipped(msg.get(if ok { "stdout" } else { "stderr" })),
                "summary": format!("patch {} {}", if ok { "applied to" } else { "failed on" }, msg.get("changes").map(files).unwrap_or_default()),
            })
        }
        "token_count" => {
            let last = msg.pointer("/info/last_token_usage")?;
            let (input, output) = (
                last["input_tokens"].as_u64().unwrap_or(0),
                last["output_tokens"].as_u64().unwrap_or(0),
            );
            json!({
                "type": "token_usage",
                "usage": {"input_tokens": input, "output_tokens": output},
                "summary": format!("{input} tokens in, {output} out"),
            })
        }
        "agent_message" => json!({
            "type": kind, "message": clipped(msg.get("message")),
            "summary": format!("says: {}", clipped(msg.get("message"))),
        }),
        "task_complete" => json!({
            "type": kind, "duration_ms": msg["duration_ms"],
            "summary": format!("finished in {} ms", msg["duration_ms"]),
        }),
        "error" | "stream_error" => json!({
            "type": kind, "message": clipped(msg.get("message")),
            "summary": format!("error: {}", clipped(msg.get("message"))),
        }),
        _ => return None,
    })
}
