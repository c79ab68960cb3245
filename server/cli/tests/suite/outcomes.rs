//! Every approval ends in the audit log, over stdio and HTTP: approved (the call's own
//! record), rejected, declined and cancelled in the client, cancelled because the client went
//! away with the form open, and expired — each exactly one final record in `baton audit
//! export`, with who closed it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_runs::{OutcomeStatus, StoreApi as _};
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::gate::{
    AGENT, Client, Era, Server, WORKSPACE, Wire, connect, params, server, text, write_args,
};

/// The approval asked for by the call that wrote `content`, once it exists.
async fn approval_for(server: &Server, content: &str) -> baton_runs::Approval {
    for _ in 0..200 {
        let all = server
            .handler
            .served()
            .gate
            .store()
            .approvals()
            .await
            .unwrap();
        if let Some(found) = all.into_iter().find(|a| a.args["content"] == content) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no approval for `{content}`");
}

/// Wait until `content`'s approval is in `state` and its closing record is written.
async fn settled(server: &Server, content: &str, state: &str) {
    for _ in 0..200 {
        let approval = approval_for(server, content).await;
        let records = server
            .handler
            .served()
            .gate
            .store()
            .audit_records(0, 10_000)
            .await
            .unwrap();
        let closed = records.iter().any(|r| {
            r.approval_id.as_deref() == Some(approval.id.as_str())
                && r.outcome.status != OutcomeStatus::PendingApproval
        });
        if approval.state.as_str() == state && closed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let now = approval_for(server, content).await;
    panic!("`{content}` is {}, not {state}", now.state.as_str());
}

async fn answered(server: &Server, wire: Wire, decision: &'static str, content: &str) -> String {
    let client = connect(
        server,
        wire,
        Era::Legacy,
        AGENT,
        Client {
            answer: Some((decision, "not now")),
        },
    )
    .await;
    let result = client
        .call_tool(params("test_write", write_args(server, content)))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    text(&result)
}

#[tokio::test]
async fn each_approval_outcome_ends_in_one_final_audit_record() {
    let server = server(WORKSPACE).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let _watch = baton_console::watch(
        server.handler.served().gate.clone(),
        Vec::new(),
        None,
        stop.clone(),
    )
    .unwrap();
    let _stop = stop.drop_guard();
    let mut expected: Vec<(String, &str, Option<String>)> = Vec::new();
    for wire in [Wire::Stdio, Wire::Http] {
        let w = format!("{wire:?}").to_lowercase();
        let person = format!("codex@client:{w}");

        let said = answered(&server, wire, "approve", &format!("approve-{w}")).await;
        assert!(said.contains("bytes"), "{said}");
        expected.push((format!("approve-{w}"), "ok", None));

        let said = answered(&server, wire, "reject", &format!("reject-{w}")).await;
        assert!(said.contains("was rejected: not now"), "{said}");
        expected.push((format!("reject-{w}"), "rejected", Some(person.clone())));

        let said = answered(&server, wire, "decline", &format!("decline-{w}")).await;
        assert!(said.contains("was declined in the client"), "{said}");
        expected.push((format!("decline-{w}"), "declined", Some(person.clone())));

        let said = answered(&server, wire, "cancel", &format!("cancel-{w}")).await;
        assert!(said.contains("was cancelled"), "{said}");
        expected.push((format!("cancel-{w}"), "cancelled", Some(person.clone())));

        // The client goes away while its form is open: the approval is cancelled at once.
        let gone = format!("gone-{w}");
        let client = connect(
            &server,
            wire,
            Era::Legacy,
            AGENT,
            Client {
                answer: Some(("hang", "")),
            },
        )
        .await;
        let peer = client.peer().clone();
        let args = write_args(&server, &gone);
        let call = tokio::spawn(async move { peer.call_tool(params("test_write", args)).await });
        approval_for(&server, &gone).await;
        client.cancel().await.unwrap();
        settled(&server, &gone, "cancelled").await;
        call.abort();
        expected.push((gone, "cancelled", Some(person.clone())));

        // Nobody decides: the reviewers' watch expires it once its time is up.
        let expire = format!("expire-{w}");
        let client = connect(&server, wire, Era::Legacy, AGENT, Client { answer: None }).await;
        let result = client
            .call_tool(params("test_write", write_args(&server, &expire)))
            .await
            .unwrap();
        client.cancel().await.unwrap();
        let pending = &result.structured_content.as_ref().unwrap()["pending_approval"];
        assert_eq!(pending["retry"]["arguments"]["content"], expire.as_str());
        assert_eq!(
            pending["retry"]["arguments"]["_baton_approval"],
            pending["approval_id"]
        );
        server.clock.advance(Duration::from_secs(2 * 3600));
        settled(&server, &expire, "expired").await;
        expected.push((expire, "expired", None));
    }

    let export = server
        .home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let records: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for (content, status, by) in expected {
        let id = approval_for(&server, &content).await.id;
        let finals: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["approval_id"] == id.as_str() && r["outcome"]["status"] != "pending_approval"
            })
            .collect();
        assert_eq!(finals.len(), 1, "{content}: {finals:#?}");
        let last = finals[0];
        assert_eq!(
            (
                last["outcome"]["status"].as_str(),
                last["decided_by"].as_str(),
                last["principal"].as_str()
            ),
            (Some(status), by.as_deref(), Some("codex")),
            "{content}: {last:#}"
        );
    }
}
