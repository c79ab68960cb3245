//! What an approved call would do, shown to the reviewer before they decide: for `repo_write`
//! the file's diff against its current content, for `repo_exec` the command, where it runs and
//! how it is confined, for anything else the arguments.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};

use baton_gate::Gate;
use baton_kit::{ConfineError, Confined, Principal};
use baton_runs::Approval;
use maud::{Markup, html};
use serde_json::Value;

use crate::layout::clip;

/// Largest current file the console reads to diff against.
const MAX_DIFF_BYTES: u64 = 256 * 1024;
/// Longest a diff may compute: an agent's huge, wholly different content must not hold a
/// request thread (the diff then shows coarser hunks).
const DIFF_TIME: std::time::Duration = std::time::Duration::from_millis(50);
/// Lines of a diff shown, and characters of one line.
const SHOWN_LINES: usize = 400;
const SHOWN_LINE_CHARS: usize = 300;

/// The preview of `approval`'s call.
pub(crate) fn preview(gate: &Gate, approval: &Approval) -> Markup {
    let args = &approval.args;
    let text = |key: &str| args.get(key).and_then(Value::as_str);
    match approval.tool.as_str() {
        "repo_write" => match (text("path"), text("content")) {
            (Some(path), Some(content)) => {
                write_preview(gate, approval, text("repo"), path, content)
            }
            _ => arguments(args),
        },
        "repo_exec" => exec_preview(gate, approval),
        _ => arguments(args),
    }
}

/// The arguments as a list of names and values.
pub(crate) fn arguments(args: &Value) -> Markup {
    html! {
        @match args.as_object() {
            Some(map) if !map.is_empty() => {
                dl.facts.args {
                    @for (key, value) in map {
                        dt { code { (key) } }
                        dd {
                            @match value {
                                Value::String(s) if s.contains('\n') => pre { (clip(s, 4000)) },
                                Value::String(s) => code { (clip(s, 2000)) },
                                other => code { (clip(&other.to_string(), 2000)) },
                            }
                        }
                    }
                }
            }
            _ => p.muted { "No arguments." },
        }
    }
}

fn write_preview(
    gate: &Gate,
    approval: &Approval,
    repo: Option<&str>,
    path: &str,
    content: &str,
) -> Markup {
    let current = current_content(gate, approval, repo, path);
    let (old, note) = match &current {
        Ok(Some(old)) => (old.as_str(), None),
        Ok(None) => ("", Some("New file.".to_owned())),
        Err(why) => (
            "",
            Some(format!(
                "Current content not shown: {why}. Showing the new content whole."
            )),
        ),
    };
    let new = if content.len() as u64 > MAX_DIFF_BYTES {
        // Far beyond anything a reviewer reads whole: its head is enough to judge.
        content
            .get(..floor_char_boundary(content, MAX_DIFF_BYTES as usize))
            .unwrap_or("")
    } else {
        content
    };
    let diff = similar::TextDiff::configure()
        .timeout(DIFF_TIME)
        .diff_lines(old, new);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string();
    let total = unified.lines().count();
    html! {
        dl.facts {
            dt { "Writes" } dd { code { (path) } }
            dt { "In" } dd { code { (repo.unwrap_or("(the requester's working directory)")) } }
            dt { "Size" } dd { (content.len()) " bytes" }
        }
        @if let Some(note) = note { p.muted { (note) } }
        pre.diff aria-label={ "Diff of " (path) } {
            @for line in unified.lines().take(SHOWN_LINES).map(|l| clip(l, SHOWN_LINE_CHARS)) {
                @let line = line.as_str();
                @if line.starts_with("+++") || line.starts_with("---") {
                    span { (line) "\n" }
                } @else if line.starts_with('+') {
                    span.add { (line) }
                } @else if line.starts_with('-') {
                    span.del { (line) }
                } @else if line.starts_with("@@") {
                    span.hunk { (line) }
                } @else {
                    (line) "\n"
                }
            }
        }
        @if total > SHOWN_LINES || new.len() < content.len() {
            p.muted { "Diff cut to its first " (SHOWN_LINES) " lines (of " (total) ") and "
                (MAX_DIFF_BYTES / 1024) " KiB of new content; all arguments are below." }
        }
    }
}

/// The largest index ≤ `at` that starts a character of `text`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    (0..=at.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// The file's content now: `Ok(None)` when it does not exist, `Err(why)` when it is not read
/// — outside the policy's writable roots for the requester, one of Baton's own files, through
/// a symlink out of its root, too large, or not text. The console never reads a file the call
/// itself could not write.
fn current_content(
    gate: &Gate,
    approval: &Approval,
    repo: Option<&str>,
    path: &str,
) -> Result<Option<String>, String> {
    let relative = Path::new(path);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(
            "the path is absolute or climbs out with `..` (the call will be refused)".into(),
        );
    }
    let Some(repo) = repo.map(PathBuf::from) else {
        return Err(
            "the call names no `repo`, so it acts in its requester's working directory, which the \
             approval does not record"
                .into(),
        );
    };
    let target = repo.join(relative);
    let descriptor = gate
        .registry()
        .get(&approval.tool)
        .map(|tool| tool.descriptor().clone())
        .ok_or("the tool is no longer registered")?;
    let requester = Principal::new(approval.requester.clone(), []);
    let sandbox = gate.policy().current().sandbox_for(&requester, &descriptor);
    if gate_protects(gate, &target) {
        return Err("it is one of Baton's own files".into());
    }
    let root = sandbox
        .writable_roots
        .iter()
        .find(|root| target.starts_with(root))
        .ok_or("the file is outside the policy's writable roots")?;
    let confined = Confined::open(root).map_err(|e| e.to_string())?;
    let file = match confined.read(&target) {
        Ok(file) => file,
        Err(ConfineError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(other) => return Err(other.to_string()),
    };
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".into());
    }
    // A second name elsewhere would let an agent that can run commands show a reviewer any
    // file it can link, as if it were in the repository.
    if std::os::unix::fs::MetadataExt::nlink(&metadata) > 1 {
        return Err("the file has other hard links".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_DIFF_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_DIFF_BYTES {
        return Err(format!("the current file is over {MAX_DIFF_BYTES} bytes"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "the current file is not UTF-8 text".into())
}

fn gate_protects(gate: &Gate, target: &Path) -> bool {
    gate.protected().iter().any(|p| target.starts_with(p))
}

fn exec_preview(gate: &Gate, approval: &Approval) -> Markup {
    let args = &approval.args;
    let argv: Vec<&str> = args
        .get("argv")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let shell = args.get("shell").and_then(Value::as_bool).unwrap_or(false);
    let repo = args
        .get("repo")
        .and_then(Value::as_str)
        .unwrap_or("(the requester's working directory)");
    let cwd = args.get("cwd").and_then(Value::as_str);
    let timeout = args.get("timeout_s").and_then(Value::as_u64).unwrap_or(120);
    let sandbox = gate.registry().get(&approval.tool).and_then(|tool| {
        gate.confinement(
            &Principal::new(approval.requester.clone(), []),
            tool.descriptor(),
        )
    });
    html! {
        dl.facts {
            dt { "Runs" }
            dd {
                @if shell { code { "sh -c " (shell_quote(argv.first().copied().unwrap_or(""))) } }
                @else { code { (argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")) } }
            }
            dt { "In" }
            dd { code { (repo) @if let Some(cwd) = cwd { "/" (cwd) } } }
            dt { "Time limit" } dd { (timeout) " s" }
            dt { "Sandbox" } dd { (sandbox.unwrap_or_else(|| "not described".into())) }
        }
    }
}

/// `arg` as a POSIX shell would need it written.
fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}
