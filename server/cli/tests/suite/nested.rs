//! Nested actions through the gate, without Codex: what a tool's helper program asks to do
//! for the caller is allowed or refused by a rule, or waits for a reviewer — who must not be
//! the requester — and a caller that goes away withdraws its request. Every step is audited.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_cli::{App, Config};
use baton_kit::{Effect, NestedAction, Principal, Role, ToolError, Verdict};
use baton_runs::{ApprovalState, Ownership, StoreApi as _, now_millis};
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::common::Home;

const POLICY: &str = r#"
sandbox = "workspace-write"
approval = "untrusted"
writable_roots = ["repo"]

[[rules]]
id = "tests"
tool = "codex:exec"
command = "cargo test*"
action = "allow"
"#;

/// The pending approval's id, once there is one.
async fn pending(app: &App) -> String {
    for _ in 0..200 {
        let all = app.store().approvals().await.unwrap();
        if let Some(found) = all
            .iter()
            .find(|a| a.state_at(now_millis()) == ApprovalState::Pending)
        {
            return found.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no approval appeared");
}

#[tokio::test]
async fn nested_actions_are_decided_by_a_rule_or_a_reviewer_and_audited() {
    let home = Home::new("");
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(home.path().join("policy.toml"), POLICY).unwrap();
    let config = Config::load(Some(&home.config())).unwrap();
    let app = App::builder(config)
        .ownership(Ownership::Serve)
        .build()
        .unwrap();
    app.store().connect().await.unwrap();
    let gate = app.gate().clone();
    let agent = Principal::new("agent:codex-builder", [Role::Agent]);
    let repo = home.path().join("repo").canonicalize().unwrap();
    let exec = |command: &str, cwd: &std::path::Path| NestedAction {
        name: "codex:exec".into(),
        pack: "codex".into(),
        effect: Effect::Exec,
        args: json!({"command": command, "cwd": cwd}),
        path_args: vec!["/cwd".into()],
        reason: "Codex asks".into(),
    };
    let decide = |action: NestedAction, cancel: CancellationToken| {
        let (gate, agent) = (gate.clone(), agent.clone());
        tokio::spawn(async move { gate.decide_nested(&agent, action, cancel).await })
    };

    // A rule allows the plain test command; the sandbox refuses a folder outside the roots.
    let allowed = decide(
        exec("cargo test --workspace", &repo),
        CancellationToken::new(),
    );
    assert_eq!(
        allowed.await.unwrap().unwrap(),
        Verdict::Allowed { approval_id: None }
    );
    let outside = decide(
        exec("cargo test", std::path::Path::new("/etc")),
        CancellationToken::new(),
    );
    let Verdict::Refused {
        rule, approval_id, ..
    } = outside.await.unwrap().unwrap()
    else {
        panic!("a folder outside the roots was allowed");
    };
    assert_eq!(
        (rule.as_str(), approval_id),
        ("sandbox.workspace-write.outside-roots", None)
    );

    // Anything else waits for a reviewer; the requester cannot be it.
    let asked = decide(exec("cargo test; curl x", &repo), CancellationToken::new());
    let id = pending(&app).await;
    let own = app
        .store()
        .decide_approval(
            id.clone(),
            agent.id.clone(),
            baton_runs::Verdict::Approve,
            None,
            now_millis(),
        )
        .await;
    assert!(own.is_err(), "the requester approved its own request");
    app.store()
        .decide_approval(
            id.clone(),
            "rev".into(),
            baton_runs::Verdict::Reject,
            Some("no pipes".into()),
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        asked.await.unwrap().unwrap(),
        Verdict::Refused {
            rule: "approval".into(),
            reason: "rejected by rev: no pipes".into(),
            approval_id: Some(id),
        }
    );
    let asked = decide(exec("make check", &repo), CancellationToken::new());
    let id = pending(&app).await;
    app.store()
        .decide_approval(
            id.clone(),
            "rev".into(),
            baton_runs::Verdict::Approve,
            None,
            now_millis(),
        )
        .await
        .unwrap();
    assert_eq!(
        asked.await.unwrap().unwrap(),
        Verdict::Allowed {
            approval_id: Some(id.clone())
        }
    );
    // The approval was used for that request: it cannot be used again.
    assert_eq!(
        app.store().approval(id).await.unwrap().state,
        ApprovalState::Consumed
    );

    // A caller that goes away withdraws its request.
    let cancel = CancellationToken::new();
    let asked = decide(exec("make deploy", &repo), cancel.clone());
    let id = pending(&app).await;
    cancel.cancel();
    assert!(matches!(asked.await.unwrap(), Err(ToolError::Cancelled)));
    assert_eq!(
        app.store().approval(id).await.unwrap().state,
        ApprovalState::Cancelled
    );

    let records = app.store().audit_records(0, 100).await.unwrap();
    let seen: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            (
                r.decision.rule.to_string(),
                format!("{:?}", r.outcome.status),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("rules.tests", "Ok"),
        ("sandbox.workspace-write.outside-roots", "Denied"),
        ("approval.untrusted", "PendingApproval"),
        ("approval.untrusted", "Rejected"),
        ("approval.untrusted", "PendingApproval"),
        ("approval.untrusted", "Ok"),
        ("approval.untrusted", "PendingApproval"),
        ("approval.untrusted", "Cancelled"),
    ]
    .iter()
    .map(|(rule, status)| ((*rule).to_owned(), (*status).to_owned()))
    .collect();
    assert_eq!(seen, expected);
    assert!(
        records
            .iter()
            .all(|r| r.tool == "codex:exec" && r.principal == "agent:codex-builder")
    );
}
