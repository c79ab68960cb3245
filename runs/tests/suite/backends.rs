//! The store's API, whichever backend is behind it: these tests run on sled, and again on
//! PostgreSQL in the test command's second pass (`BATON_TEST_STORE=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use baton_runs::{
    ApprovalDraft, ApprovalState, AuditQuery, Blob, Ownership, RunState, StoreApi as _, StoreError,
    StoreHandle, StoreOptions, Verdict, Withdrawal, now_millis,
};
use baton_test_support::audit_draft;
use pretty_assertions::assert_eq;
use serde_json::json;

/// A store on this pass's backend, in (or beside) a temporary data folder.
pub(crate) fn handle() -> (tempfile::TempDir, StoreHandle) {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        url: baton_test_support::store_url(),
        ..StoreOptions::default()
    };
    let store = StoreHandle::new(dir.path().to_owned(), Ownership::Serve).with_options(options);
    (dir, store)
}

fn draft(requester: &str, ttl_ms: u64) -> ApprovalDraft {
    ApprovalDraft {
        requester: requester.into(),
        tool: "repo_write".into(),
        args_digest: "d".repeat(64),
        args: json!({ "path": "a.txt" }),
        reason: "writes need a reviewer".into(),
        rule: "approval.on-request".into(),
        ttl_ms,
    }
}

#[tokio::test]
async fn approvals_move_once_and_closing_records_are_written() {
    let (_dir, store) = handle();
    let now = now_millis();
    let approval = store
        .create_approval(draft("agent", 60_000), now)
        .await
        .unwrap();
    let error = store
        .decide_approval(
            approval.id.clone(),
            "agent".into(),
            Verdict::Approve,
            None,
            now,
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("requested this call and cannot decide it"),
        "{error}"
    );
    let by_prefix = store.approval(approval.id[..10].to_owned()).await.unwrap();
    assert_eq!(by_prefix, approval);
    let approved = store
        .decide_approval(
            approval.id.clone(),
            "rita".into(),
            Verdict::Approve,
            None,
            now + 1,
        )
        .await
        .unwrap();
    assert_eq!(approved.state, ApprovalState::Approved);
    let again = store
        .decide_approval(
            approval.id.clone(),
            "sam".into(),
            Verdict::Reject,
            None,
            now + 2,
        )
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Approval { .. }), "{again}");
    let wrong = store
        .consume_approval(
            approval.id.clone(),
            "agent".into(),
            "repo_write".into(),
            "e".repeat(64),
            now + 3,
        )
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("other arguments"), "{wrong}");
    let used = store
        .consume_approval(
            approval.id.clone(),
            "agent".into(),
            "repo_write".into(),
            "d".repeat(64),
            now + 3,
        )
        .await
        .unwrap();
    assert_eq!(used.state, ApprovalState::Consumed);

    // A rejection, a withdrawal and an expiry each close their call in the audit log.
    let rejected = store
        .create_approval(draft("agent", 60_000), now)
        .await
        .unwrap();
    store
        .decide_approval(
            rejected.id.clone(),
            "rita".into(),
            Verdict::Reject,
            Some("no".into()),
            now + 1,
        )
        .await
        .unwrap();
    let declined = store
        .create_approval(draft("agent", 60_000), now)
        .await
        .unwrap();
    store
        .withdraw_approval(
            declined.id.clone(),
            "agent".into(),
            Withdrawal::Declined,
            None,
            now + 1,
        )
        .await
        .unwrap();
    let expiring = store
        .create_approval(draft("agent", 10), now)
        .await
        .unwrap();
    let expired = store.expire_approvals(now + 1_000).await.unwrap();
    assert_eq!(
        expired.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![expiring.id.clone()]
    );
    let closed: Vec<(String, String)> = store
        .audit_records(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.approval_id.unwrap(), format!("{:?}", r.outcome.status)))
        .collect();
    assert_eq!(
        closed,
        vec![
            (rejected.id, "Rejected".into()),
            (declined.id, "Declined".into()),
            (expiring.id, "Expired".into()),
        ]
    );
    let listed: Vec<ApprovalState> = store
        .approvals()
        .await
        .unwrap()
        .iter()
        .map(|a| a.state)
        .collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(store.verify_audit().await.unwrap().problem, None);
}

#[tokio::test]
async fn runs_keep_their_journal_in_order_under_concurrent_appends() {
    let (_dir, store) = handle();
    let run = store
        .create_run(
            "fix the bug".into(),
            "builder".into(),
            json!({ "repo": "r" }),
            1_000,
        )
        .await
        .unwrap();
    let appends = (0..20).map(|n| {
        let store = store.clone();
        let id = run.id.clone();
        tokio::spawn(async move {
            store
                .append_step(id, "tool_call".into(), json!({ "n": n }), 2_000)
                .await
        })
    });
    for append in futures::future::join_all(appends).await {
        append.unwrap().unwrap();
    }
    let steps = store.steps(run.id[..12].to_owned()).await.unwrap();
    assert_eq!(
        steps.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let mut seen: Vec<u64> = steps
        .iter()
        .map(|s| s.data["n"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>());
    store
        .set_run_state(run.id.clone(), RunState::WaitingApproval, 3_000)
        .await
        .unwrap();
    let done = store
        .set_run_state(run.id.clone(), RunState::Done, 3_500)
        .await
        .unwrap();
    assert_eq!((done.state, done.waited_ms), (RunState::Done, 500));
    assert_eq!(store.runs().await.unwrap(), vec![done]);
    let missing = store.run("ZZZZZZZZ".into()).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn audit_pages_and_queries_read_the_same_chain() {
    let (_dir, store) = handle();
    let appends = (1..=300).map(|n| store.append_audit(audit_draft(n)));
    let receipts = futures::future::join_all(appends).await;
    let mut seqs: Vec<u64> = receipts.into_iter().map(|r| r.unwrap().seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    let page = store.audit_records(100, 50).await.unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (101..=150).collect::<Vec<_>>()
    );
    let query = AuditQuery {
        principal: Some("agent-1".into()),
        limit: 5,
        scan: 1_000,
        ..AuditQuery::default()
    };
    let slice = store.query_audit(query.clone()).await.unwrap();
    assert_eq!(slice.records.len(), 5);
    assert!(slice.records.iter().all(|r| r.principal == "agent-1"));
    assert_eq!(slice.newest, 300);
    let next = store
        .query_audit(AuditQuery {
            before: slice.next_before,
            ..query
        })
        .await
        .unwrap();
    assert!(next.records.first().unwrap().seq < slice.records.last().unwrap().seq);
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.verified, report.problem), (300, None));
}

#[tokio::test]
async fn artifacts_are_kept_once_and_uploads_count_against_quotas() {
    let (_dir, store) = handle();
    let bytes = Blob(b"RIFF....WAVE".to_vec());
    let first = store
        .put_upload(bytes.clone(), "audio/wav".into(), "shop".into(), 20)
        .await
        .unwrap();
    let again = store
        .put_upload(bytes.clone(), "audio/wav".into(), "shop".into(), 20)
        .await
        .unwrap();
    assert_eq!(first, again);
    let over = store
        .put_upload(
            Blob(vec![7; 10]),
            "application/octet-stream".into(),
            "shop".into(),
            20,
        )
        .await
        .unwrap_err();
    assert!(matches!(over, StoreError::Quota { .. }), "{over}");
    let (artifact, read) = store.artifact(first.sha256.clone()).await.unwrap();
    assert_eq!((artifact, read), (first.clone(), bytes));
    let kept = store.kept_artifacts().await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].uploaders, vec!["shop".to_owned()]);
    let gc = store.gc_artifacts(now_millis() + 1).await.unwrap();
    assert_eq!((gc.removed, gc.kept), (1, 0));
    // The quota is free again.
    store
        .put_upload(
            Blob(vec![7; 10]),
            "application/octet-stream".into(),
            "shop".into(),
            20,
        )
        .await
        .unwrap();
    store
        .save_task("t1".into(), json!({ "status": "working" }))
        .await
        .unwrap();
    store
        .save_task("t1".into(), json!({ "status": "done" }))
        .await
        .unwrap();
    assert_eq!(
        store.tasks().await.unwrap(),
        vec![("t1".to_owned(), json!({ "status": "done" }))]
    );
}

#[tokio::test]
async fn a_waiter_wakes_when_an_approval_changes() {
    let (_dir, store) = handle();
    let seen = store.changes(0, 0).await.unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.changes(seen, 10_000).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .create_approval(draft("agent", 60_000), now_millis())
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(woke, seen);
}

#[tokio::test]
async fn stats_count_runs_pending_approvals_and_audit_batches() {
    let (_dir, store) = handle();
    let empty = store.stats().await.unwrap();
    assert_eq!(
        (empty.runs.len(), empty.approvals_pending, empty.audit_head),
        (0, 0, 0)
    );
    let now = now_millis();
    for (goal, state) in [
        ("a", RunState::Done),
        ("b", RunState::Done),
        ("c", RunState::Failed),
    ] {
        let run = store
            .create_run(goal.into(), "builder".into(), json!({}), now)
            .await
            .unwrap();
        store.set_run_state(run.id, state, now).await.unwrap();
    }
    store
        .create_run("d".into(), "builder".into(), json!({}), now)
        .await
        .unwrap();
    let older = store
        .create_approval(draft("agent", 60_000), now - 5_000)
        .await
        .unwrap();
    store
        .create_approval(draft("agent", 60_000), now)
        .await
        .unwrap();
    // Expired and decided approvals are not waiting.
    store
        .create_approval(draft("agent", 1), now - 10_000)
        .await
        .unwrap();
    let decided = store
        .create_approval(draft("agent", 60_000), now)
        .await
        .unwrap();
    store
        .decide_approval(decided.id, "rita".into(), Verdict::Reject, None, now)
        .await
        .unwrap();
    let appends = (0..10).map(|n| store.append_audit(audit_draft(n)));
    for receipt in futures::future::join_all(appends).await {
        receipt.unwrap();
    }
    let stats = store.stats().await.unwrap();
    let runs: Vec<(&str, u64)> = stats.runs.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    assert_eq!(runs, vec![("done", 2), ("failed", 1), ("running", 1)]);
    assert_eq!(
        (stats.approvals_pending, stats.oldest_pending_ms),
        (2, Some(older.created_ms))
    );
    // The rejection's closing record is in the chain too.
    let head = store.verify_audit().await.unwrap().verified;
    assert_eq!(stats.audit_head, head);
    assert!(stats.size_bytes > 0);
    // On PostgreSQL a closing record is written in the transaction that closes the approval,
    // not by the writer: the writer's batches hold the ten appended records at least.
    let records = stats.audit_batch_records.sum as u64;
    assert!((10..=head).contains(&records), "{records} of {head}");
    assert_eq!(
        stats.audit_sync_seconds.count,
        stats.audit_batch_records.count
    );
    assert!(stats.audit_batch_records.count >= 1);
    assert!(stats.audit_batch_records.count <= records);
}
