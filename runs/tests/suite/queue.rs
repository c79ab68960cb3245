//! The work queue, whichever backend is behind it (sled here, PostgreSQL in the test
//! command's second pass): fair claims, leases that move to another worker, once-only
//! finishes, cancel, and items given up after their workers keep dying.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;

use baton_runs::{
    MAX_ATTEMPTS, StoreApi as _, StoreError, WorkDraft, WorkKind, WorkState, WorkerInfo, now_millis,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::backends::handle;

fn drafts(requester: &str, group: &str, n: usize) -> Vec<WorkDraft> {
    (0..n)
        .map(|i| WorkDraft {
            kind: WorkKind::Call,
            requester: requester.into(),
            group: Some(group.into()),
            payload: json!({"tool": "vision_process", "n": i}),
        })
        .collect()
}

fn worker(name: &str, running: Vec<String>) -> WorkerInfo {
    WorkerInfo {
        name: name.into(),
        host: "test".into(),
        pid: std::process::id(),
        capacity: 4,
        kinds: vec![WorkKind::Call],
        started_ms: now_millis(),
        heartbeat_ms: 0,
        running,
        stopped: false,
    }
}

#[tokio::test]
async fn a_flooding_requester_takes_turns_with_another() {
    let (_dir, store) = handle();
    let now = now_millis();
    store
        .enqueue_work(drafts("shop-a", "flood", 50), now)
        .await
        .unwrap();
    let goal = store
        .enqueue_work(
            vec![WorkDraft {
                kind: WorkKind::Goal,
                requester: "lead-b".into(),
                group: None,
                payload: json!({"run_id": "r"}),
            }],
            now,
        )
        .await
        .unwrap()
        .remove(0);
    let kinds = vec![WorkKind::Call, WorkKind::Goal];
    // Queued after fifty photos, the goal is in the first two items handed out.
    let first = store
        .claim_work("w1".into(), kinds.clone(), 2, 60_000, now)
        .await
        .unwrap();
    let mut requesters: Vec<&str> = first.iter().map(|i| i.requester.as_str()).collect();
    requesters.sort_unstable();
    assert_eq!(
        requesters,
        vec!["lead-b", "shop-a"],
        "round-robin across requesters"
    );
    assert!(first.iter().any(|i| i.id == goal.id));
    // A worker of capacity 1 claiming one item at a time alternates: the lead's next goal is
    // among the next two items, whatever the number of photos before it.
    for item in &first {
        store
            .finish_work(item.id.clone(), "w1".into(), WorkState::Done, None, now + 1)
            .await
            .unwrap();
    }
    let second = store
        .enqueue_work(
            vec![WorkDraft {
                kind: WorkKind::Goal,
                requester: "lead-b".into(),
                group: None,
                payload: json!({"run_id": "r2"}),
            }],
            now + 2,
        )
        .await
        .unwrap()
        .remove(0);
    let mut next = Vec::new();
    for turn in 0..2 {
        let item = store
            .claim_work("w1".into(), kinds.clone(), 1, 60_000, now + 3 + turn)
            .await
            .unwrap()
            .remove(0);
        store
            .finish_work(
                item.id.clone(),
                "w1".into(),
                WorkState::Done,
                None,
                now + 3 + turn,
            )
            .await
            .unwrap();
        next.push(item.requester);
    }
    assert_eq!(next, vec!["shop-a", "lead-b"], "turns alternate");
    let taken = store.work_item(second.id.clone()).await.unwrap();
    assert_eq!(taken.state, WorkState::Done);
    // A worker taking only calls never gets a goal; it gets what it asks for, no more.
    let calls = store
        .claim_work("w2".into(), vec![WorkKind::Call], 3, 60_000, now)
        .await
        .unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|i| i.kind == WorkKind::Call));
}

#[tokio::test]
async fn a_lease_that_runs_out_moves_to_another_worker_and_the_first_cannot_finish() {
    let (_dir, store) = handle();
    let now = now_millis();
    let item = store
        .enqueue_work(drafts("shop", "g", 1), now)
        .await
        .unwrap()
        .remove(0);
    let kinds = vec![WorkKind::Call];
    let taken = store
        .claim_work("w1".into(), kinds.clone(), 1, 1_000, now)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    // Renewed while its worker beats; nobody else can take it meanwhile.
    let beat = store
        .heartbeat(worker("w1", vec![item.id.clone()]), 1_000, now + 900)
        .await
        .unwrap();
    assert_eq!(beat.lost, Vec::<String>::new());
    let none = store
        .claim_work("w2".into(), kinds.clone(), 1, 1_000, now + 1_500)
        .await
        .unwrap();
    assert!(none.is_empty(), "renewed lease taken: {none:?}");
    // The worker goes silent: after its lease, another takes the item.
    let moved = store
        .claim_work("w2".into(), kinds.clone(), 1, 1_000, now + 3_000)
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    let beat = store
        .heartbeat(worker("w1", vec![item.id.clone()]), 1_000, now + 3_100)
        .await
        .unwrap();
    assert_eq!(beat.lost, vec![item.id.clone()]);
    let refused = store
        .finish_work(
            item.id.clone(),
            "w1".into(),
            WorkState::Done,
            Some(json!({"late": true})),
            now + 3_200,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Lease { .. }), "{refused:?}");
    assert!(
        refused.to_string().contains("not leased to `w1`"),
        "{refused}"
    );
    let done = store
        .finish_work(
            item.id.clone(),
            "w2".into(),
            WorkState::Done,
            Some(json!({"ok": true})),
            now + 3_300,
        )
        .await
        .unwrap();
    assert_eq!(done.state, WorkState::Done);
    assert_eq!(
        done.leases
            .iter()
            .map(|l| l.worker.as_str())
            .collect::<Vec<_>>(),
        vec!["w1", "w2"],
        "the hand-over is on the item"
    );
    let workers = store.workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].heartbeat_ms, now + 3_100);
}

#[tokio::test]
async fn many_workers_claiming_at_once_finish_each_item_once() {
    let (_dir, store) = handle();
    let store = Arc::new(store);
    let items = store
        .enqueue_work(drafts("shop", "big", 120), now_millis())
        .await
        .unwrap();
    let claimers = (0..6).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let name = format!("w{n}");
            let mut finished = Vec::new();
            loop {
                let taken = store
                    .claim_work(name.clone(), vec![WorkKind::Call], 3, 60_000, now_millis())
                    .await
                    .unwrap();
                if taken.is_empty() {
                    return finished;
                }
                for item in taken {
                    store
                        .finish_work(
                            item.id.clone(),
                            name.clone(),
                            WorkState::Done,
                            None,
                            now_millis(),
                        )
                        .await
                        .unwrap();
                    finished.push(item.id);
                }
            }
        })
    });
    let mut count: HashMap<String, usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            *count.entry(id).or_default() += 1;
        }
    }
    assert_eq!(count.len(), items.len());
    assert!(count.values().all(|n| *n == 1), "{count:?}");
    let all = store.work_items(Some("big".into())).await.unwrap();
    assert!(
        all.iter()
            .all(|i| i.state == WorkState::Done && i.leases.len() == 1)
    );
}

#[tokio::test]
async fn cancel_stops_queued_items_at_once_and_running_ones_through_their_worker() {
    let (_dir, store) = handle();
    let now = now_millis();
    let items = store
        .enqueue_work(drafts("shop", "batch-1", 3), now)
        .await
        .unwrap();
    let running = store
        .claim_work("w1".into(), vec![WorkKind::Call], 1, 60_000, now)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(running.id, items[0].id);
    let changed = store
        .cancel_work("batch-1".into(), "lead".into(), now + 1)
        .await
        .unwrap();
    assert_eq!(changed.len(), 3);
    let after = store.work_items(Some("batch-1".into())).await.unwrap();
    assert_eq!(
        after.iter().map(|i| i.state).collect::<Vec<_>>(),
        vec![
            WorkState::Leased,
            WorkState::Cancelled,
            WorkState::Cancelled
        ]
    );
    let beat = store
        .heartbeat(worker("w1", vec![running.id.clone()]), 60_000, now + 2)
        .await
        .unwrap();
    assert_eq!(beat.cancel, vec![running.id.clone()]);
    store
        .finish_work(
            running.id.clone(),
            "w1".into(),
            WorkState::Cancelled,
            None,
            now + 3,
        )
        .await
        .unwrap();
    let missing = store
        .cancel_work("no-such-batch".into(), "lead".into(), now)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

#[tokio::test]
async fn an_item_whose_workers_keep_dying_is_given_up() {
    let (_dir, store) = handle();
    let mut now = now_millis();
    let item = store
        .enqueue_work(drafts("shop", "poison", 1), now)
        .await
        .unwrap()
        .remove(0);
    for attempt in 0..MAX_ATTEMPTS {
        let taken = store
            .claim_work(format!("w{attempt}"), vec![WorkKind::Call], 1, 10, now)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1, "attempt {attempt}");
        now += 100;
    }
    let taken = store
        .claim_work("last".into(), vec![WorkKind::Call], 1, 10, now)
        .await
        .unwrap();
    assert!(taken.is_empty());
    let given_up = store.work_item(item.id.clone()).await.unwrap();
    assert_eq!(given_up.state, WorkState::Failed);
    assert_eq!(
        given_up.result,
        Some(json!({"error": "its worker was lost 3 times; given up"}))
    );
}

#[tokio::test]
async fn a_workers_calls_are_found_by_principal_worker_and_requester() {
    let (_dir, store) = handle();
    let mut draft = baton_test_support::audit_draft(1);
    draft.principal = "agent:builder (worker:w1 for alice)".into();
    store.append_audit(draft).await.unwrap();
    store
        .append_audit(baton_test_support::audit_draft(2))
        .await
        .unwrap();
    for (wanted, found) in [
        ("alice", 1),
        ("worker:w1", 1),
        ("agent:builder", 1),
        ("agent-2", 1),
        ("ali", 0),
        ("w1", 0),
    ] {
        let query = baton_runs::AuditQuery {
            principal: Some(wanted.into()),
            limit: 10,
            scan: 10,
            ..baton_runs::AuditQuery::default()
        };
        let slice = store.query_audit(query).await.unwrap();
        assert_eq!(slice.records.len(), found, "{wanted}");
    }
}
