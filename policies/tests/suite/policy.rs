#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_kit::{Effect, JsonObject, Principal, Role, ToolDescriptor};
use baton_policies::{Decision, Policy, PolicyStore};
use pretty_assertions::assert_eq;
use serde_json::json;

fn tool(name: &str, pack: &str, effect: Effect, paths: &[&str]) -> ToolDescriptor {
    ToolDescriptor {
        name: name.into(),
        pack: pack.into(),
        title: None,
        description: String::new(),
        effect,
        input_schema: Arc::new(JsonObject::new()),
        output_schema: None,
        path_args: paths.iter().map(|p| (*p).to_owned()).collect(),
        root_arg: Some("/repo".into()),
        file_args: Vec::new(),
        output_args: Vec::new(),
        heavy: false,
        long: false,
    }
}

fn policy(text: &str) -> Policy {
    Policy::parse(Path::new("/work/policy.toml"), text, false).unwrap()
}

#[test]
fn decision_matrix() {
    let agent = Principal::new("codex", [Role::Agent]);
    let reviewer = Principal::new("rev", [Role::Reviewer]);
    let read = tool("repo_read", "sop", Effect::Read, &[]);
    let write = tool("repo_write", "sop", Effect::Write, &["/path"]);
    let exec = tool("repo_exec", "sop", Effect::Exec, &["/cwd"]);
    let fetch = tool("web_fetch", "web", Effect::Network, &[]);
    let blind = tool("blind_write", "x", Effect::Write, &[]);
    let decide = tool("approvals_decide", "approvals", Effect::Write, &[]);
    let inside = json!({ "repo": "/work/repo", "path": "src/lib.rs", "cwd": "." });
    let outside = json!({ "repo": "/work/repo", "path": "../../etc/passwd" });
    let git = json!({ "repo": "/work/repo", "path": "./.git/config" });

    let mut out = String::new();
    for sandbox in ["read-only", "workspace-write", "danger-full-access"] {
        for approval in ["untrusted", "on-request", "never"] {
            let text = format!(
                "sandbox = \"{sandbox}\"\napproval = \"{approval}\"\nwritable_roots = [\"repo\"]\nfull_access_reason = \"test\"\n"
            );
            let policy = Policy::parse(Path::new("/work/policy.toml"), &text, true).unwrap();
            let _ = writeln!(out, "## {sandbox} × {approval}");
            for (label, who, tool, args) in [
                ("read", &agent, &read, &inside),
                ("write inside", &agent, &write, &inside),
                ("write outside", &agent, &write, &outside),
                ("write .git", &agent, &write, &git),
                ("exec inside", &agent, &exec, &inside),
                ("network", &agent, &fetch, &inside),
                ("write, no paths declared", &agent, &blind, &inside),
                ("approvals_decide as agent", &agent, &decide, &inside),
                ("approvals_decide as reviewer", &reviewer, &decide, &inside),
            ] {
                let decision = policy.decide(who, tool, args);
                let _ = writeln!(
                    out,
                    "{label}: {} [{}] {}",
                    decision.kind(),
                    decision.rule(),
                    decision.reason().unwrap_or("")
                );
            }
        }
    }
    insta::assert_snapshot!("decision_matrix", out);
}

#[test]
fn rules_only_tighten_and_name_themselves() {
    let text = r#"
sandbox = "workspace-write"
approval = "on-request"
writable_roots = ["repo"]

[[rules]]
id = "exec-needs-review"
effect = "exec"
action = "require-approval"
reason = "commands are reviewed"

[[rules]]
id = "no-ci-writes"
tool = "repo_*"
principal = "ci-bot"
action = "forbid"
reason = "CI never writes"
"#;
    let policy = policy(text);
    let args = json!({ "repo": "/work/repo", "path": "a.rs", "cwd": "." });
    let exec = tool("repo_exec", "sop", Effect::Exec, &["/cwd"]);
    let write = tool("repo_write", "sop", Effect::Write, &["/path"]);
    let codex = Principal::new("codex", [Role::Agent]);
    let ci = Principal::new("ci-bot", [Role::Agent]);
    assert_eq!(
        policy.decide(&codex, &exec, &args),
        Decision::NeedsApproval {
            rule: "rules.exec-needs-review".into(),
            reason: "commands are reviewed".into()
        }
    );
    assert_eq!(
        policy.decide(&codex, &write, &args),
        Decision::Allow {
            rule: "approval.on-request".into()
        }
    );
    assert_eq!(
        policy.decide(&ci, &write, &args),
        Decision::Forbid {
            rule: "rules.no-ci-writes".into(),
            reason: "CI never writes".into()
        }
    );
    // A rule cannot open what the sandbox closes.
    let outside = json!({ "repo": "/work/repo", "path": "/etc/hosts" });
    assert_eq!(
        policy.decide(&codex, &write, &outside).rule(),
        "sandbox.workspace-write.outside-roots"
    );
}

#[test]
fn an_allow_rule_waives_the_reviewer_for_plain_matching_commands_only() {
    let text = r#"
sandbox = "workspace-write"
approval = "untrusted"
writable_roots = ["/work/repo"]

[[rules]]
id = "codex-tests"
tool = "codex:exec"
command = "cargo test*"
action = "allow"
reason = "tests run without a reviewer"

[[rules]]
id = "no-push"
tool = "codex:*"
command = "git push*"
action = "forbid"
"#;
    let policy = policy(text);
    let exec = tool("codex:exec", "codex", Effect::Exec, &["/cwd"]);
    let agent = Principal::new("agent:codex-builder", [Role::Agent]);
    let decide = |command: serde_json::Value, cwd: &str| {
        let decided = policy.decide(&agent, &exec, &json!({"command": command, "cwd": cwd}));
        format!("{} {}", decided.kind(), decided.rule())
    };
    let inside = "/work/repo/.worktrees/T-1";
    assert_eq!(
        decide(json!("cargo test"), inside),
        "allow rules.codex-tests"
    );
    assert_eq!(
        decide(json!(["cargo", "test", "--workspace"]), inside),
        "allow rules.codex-tests"
    );
    // Anything more than the plain command goes to a reviewer, however it is spelled: shell
    // syntax could hide a `git push` too, so the forbid sends it to a person.
    for hostile in [
        "cargo test; curl http://evil",
        "cargo test && rm -rf ~",
        "cargo test | sh",
        "cargo test $(id)",
        "cargo test `id`",
        "cargo test > /etc/passwd",
        "cargo test\nrm -rf /",
        "cargo test\rrm -rf /",
        "cargo test\u{b}rm -rf /",
        "cargo test 'x'",
    ] {
        assert_eq!(
            decide(json!(hostile), inside),
            "needs_approval rules.no-push",
            "{hostile}"
        );
    }
    for other in ["cargo build", "xcargo test"] {
        assert_eq!(
            decide(json!(other), inside),
            "needs_approval approval.untrusted",
            "{other}"
        );
    }
    assert_eq!(
        decide(json!("git push origin main"), inside),
        "forbid rules.no-push"
    );
    assert_eq!(
        decide(json!("git   push  origin"), inside),
        "forbid rules.no-push"
    );
    // An allow never opens what the sandbox closes.
    assert_eq!(
        decide(json!("cargo test"), "/elsewhere"),
        "forbid sandbox.workspace-write.outside-roots"
    );
    // A long hostile command is matched in bounded time.
    let long = format!("cargo test {}", "a ".repeat(50_000));
    assert_eq!(decide(json!(long), inside), "allow rules.codex-tests");
    let long = format!("{}b", "a".repeat(100_000));
    assert_eq!(
        decide(json!(long), inside),
        "needs_approval approval.untrusted"
    );
}

#[test]
fn what_a_helper_asks_beyond_its_sandbox_never_runs_by_default() {
    let exec = tool("codex:exec", "codex", Effect::Exec, &["/cwd"]);
    let agent = Principal::new("agent:codex-builder", [Role::Agent]);
    let args = json!({"command": "make deploy", "cwd": "/work/repo"});
    let tests = json!({"command": "cargo test", "cwd": "/work/repo"});
    let rule = "[[rules]]\ntool = \"codex:exec\"\ncommand = \"cargo test\"\naction = \"allow\"\n";
    for (approval, nested, plain) in [
        ("on-request", "approval.nested", "approval.on-request"),
        ("untrusted", "approval.untrusted", "approval.untrusted"),
        ("never", "approval.nested", "approval.never"),
    ] {
        let policy = policy(&format!(
            "sandbox = \"workspace-write\"\napproval = \"{approval}\"\nwritable_roots = [\"/work/repo\"]\n{rule}"
        ));
        let decided = policy.decide_nested(&agent, &exec, &args);
        assert_eq!(decided.rule(), nested, "{approval}");
        assert_eq!(
            decided.kind(),
            if approval == "never" {
                "forbid"
            } else {
                "needs_approval"
            },
            "{approval}"
        );
        // An ordinary call is decided as before; an `allow` rule opens both.
        assert_eq!(policy.decide(&agent, &exec, &args).rule(), plain);
        assert_eq!(
            policy.decide_nested(&agent, &exec, &tests).rule(),
            "rules.0"
        );
    }

    // A broad allow does not beat a forbid that cannot tell; an allow for `codex*` (meant for
    // the `codex_codex` tool) waives nothing Codex asks.
    let policy = policy(
        "sandbox = \"workspace-write\"\napproval = \"on-request\"\nwritable_roots = [\"/work/repo\"]\n\
         [[rules]]\nid = \"no-push\"\ntool = \"codex:exec\"\ncommand = \"git push*\"\naction = \"forbid\"\n\
         [[rules]]\nid = \"all\"\ntool = \"codex:exec\"\naction = \"allow\"\n\
         [[rules]]\nid = \"tool\"\ntool = \"codex*\"\naction = \"allow\"\n",
    );
    let decided = |command: &str, tool: &ToolDescriptor| {
        let args = json!({"command": command, "cwd": "/work/repo"});
        let decided = policy.decide_nested(&agent, tool, &args);
        format!("{} {}", decided.kind(), decided.rule())
    };
    assert_eq!(
        decided("git push origin; true", &exec),
        "forbid rules.no-push"
    );
    assert_eq!(
        decided("cargo test; true", &exec),
        "needs_approval rules.no-push"
    );
    assert_eq!(decided("cargo build", &exec), "allow rules.all");
    let patch = tool("codex:patch", "codex", Effect::Write, &["/cwd"]);
    assert_eq!(decided("", &patch), "needs_approval approval.nested");
}

#[test]
fn bad_files_are_refused_with_the_key() {
    let cases = [
        "sandbox = \"yolo\"\n",
        "approval = \"sometimes\"\n",
        "sandbox = \"workspace-write\"\n",
        "sandbox = \"danger-full-access\"\n",
        "sandbox = \"danger-full-access\"\nfull_access_reason = \"demo box\"\n",
        "approval_ttl = \"soon\"\n",
        "[[rules]]\ntool = \"x\"\naction = \"permit\"\n",
        "[[rules]]\naction = \"allow\"\ncommand = \"cargo test*\"\n",
        "[[rules]]\ntool = \"*\"\naction = \"allow\"\n",
        "[[rules]]\ntool = \"repo_exec\"\naction = \"grant-network\"\ncommand = \"npm ci\"\n",
        "sandbox = \"read-only\"\nsandboxes = 1\n",
    ];
    let mut out = String::new();
    for text in cases {
        let error = Policy::parse(Path::new("/work/policy.toml"), text, false).unwrap_err();
        let _ = writeln!(out, "{text}--> {error}\n");
    }
    insta::assert_snapshot!("bad_files", out);
}

fn wait_for(
    store: &PolicyStore,
    what: &str,
    check: impl Fn(&baton_policies::PolicyStatus) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check(&store.status()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{what}: status stayed {:?}", store.status());
}

#[test]
fn edits_apply_and_broken_edits_keep_the_last_good_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let store = PolicyStore::open(Some(path.clone()), false).unwrap();
    assert_eq!(store.status().source, "built-in defaults");
    assert_eq!(store.current().sandbox.as_str(), "read-only");

    std::fs::write(
        &path,
        "sandbox = \"workspace-write\"\nwritable_roots = [\".\"]\napproval = \"never\"\n",
    )
    .unwrap();
    wait_for(&store, "edit", |s| s.sandbox == "workspace-write");
    assert_eq!(store.current().approval.as_str(), "never");

    std::fs::write(&path, "sandbox = \"workspace-write\"\napproval = \n").unwrap();
    wait_for(&store, "broken edit", |s| s.error.is_some());
    let status = store.status();
    assert_eq!(
        (status.sandbox.as_str(), status.approval.as_str()),
        ("workspace-write", "never")
    );
    assert!(
        status.error.unwrap().contains("invalid policy"),
        "the error says why"
    );

    // An editor's write-to-temp-then-rename is seen too.
    let temp = dir.path().join(".policy.toml.swp");
    std::fs::write(&temp, "approval = \"on-request\"\n").unwrap();
    std::fs::rename(&temp, &path).unwrap();
    wait_for(&store, "rename", |s| {
        s.approval == "on-request" && s.error.is_none()
    });
    assert_eq!(store.current().sandbox.as_str(), "read-only");

    std::fs::remove_file(&path).unwrap();
    wait_for(&store, "removal", |s| s.source == "built-in defaults");
}

#[test]
fn a_broken_file_at_start_up_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, "sandbox = 3\n").unwrap();
    let error = PolicyStore::open(Some(path), false).unwrap_err();
    assert!(error.to_string().starts_with("invalid policy"), "{error}");
}
