//! What only the PostgreSQL backend does: many writers on one chain, wake-ups across
//! processes, racing decisions, migrations, copying a sled store, a lost server. Two
//! `PgStore`s on one database are two processes' worth of pools, writers and listeners.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_runs::{
    ApprovalDraft, Blob, PgStore, ProblemKind, RunState, StoreApi as _, StoreError, StoreOptions,
    Verdict, now_millis,
};
use baton_test_support::{PgCluster, audit_draft, pg_database, psql};
use pretty_assertions::assert_eq;
use serde_json::json;

async fn connect(url: &str) -> PgStore {
    PgStore::connect(url, &StoreOptions::default())
        .await
        .unwrap()
}

fn draft(requester: &str) -> ApprovalDraft {
    ApprovalDraft {
        requester: requester.into(),
        tool: "repo_exec".into(),
        args_digest: "a".repeat(64),
        args: json!({ "command": ["make"] }),
        reason: "exec needs a reviewer".into(),
        rule: "approval.exec".into(),
        ttl_ms: 600_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chain_many_writers() {
    let Some((_cluster, url)) = pg_database("one_chain_many_writers") else {
        return;
    };
    let (a, b) = (connect(&url).await, connect(&url).await);
    let callers = (0..32u64).map(|caller| {
        let store = if caller % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        tokio::spawn(async move {
            let mut receipts = Vec::new();
            for n in 0..25 {
                receipts.push(
                    store
                        .append_audit(audit_draft(caller * 100 + n))
                        .await
                        .unwrap(),
                );
            }
            receipts
        })
    });
    let mut seqs: Vec<u64> = futures::future::join_all(callers)
        .await
        .into_iter()
        .flat_map(|receipts| receipts.unwrap())
        .map(|receipt| receipt.seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=800).collect::<Vec<_>>());
    for store in [&a, &b] {
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.verified, report.problem), (800, None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_on_one_server_wakes_a_waiter_on_another() {
    let Some((_cluster, url)) = pg_database("a_decision_on_one_server_wakes") else {
        return;
    };
    let (a, b) = (connect(&url).await, connect(&url).await);
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let approval = a
            .create_approval(draft("agent"), now_millis())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = a.changes(0, 0).await.unwrap();
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move {
                let woke = a.changes(seen, 10_000).await.unwrap();
                (woke, Instant::now())
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let decided_at = Instant::now();
        b.decide_approval(
            approval.id.clone(),
            "rita".into(),
            Verdict::Approve,
            None,
            now_millis(),
        )
        .await
        .unwrap();
        let (woke, at) = waiter.await.unwrap();
        assert_ne!(woke, seen);
        assert_eq!(
            a.approval(approval.id).await.unwrap().decider.as_deref(),
            Some("rita")
        );
        latencies.push(at.duration_since(decided_at));
    }
    latencies.sort();
    eprintln!(
        "wake-up across stores: median {:?}, max {:?}",
        latencies[10], latencies[19]
    );
    assert!(latencies[10] < Duration::from_millis(100), "{latencies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reviewers_racing_on_two_servers_one_decision_stands() {
    let Some((_cluster, url)) = pg_database("two_reviewers_racing") else {
        return;
    };
    let (a, b) = (connect(&url).await, connect(&url).await);
    for round in 0..30 {
        let approval = a
            .create_approval(draft("agent"), now_millis())
            .await
            .unwrap();
        let (verdict_a, verdict_b) = if round % 2 == 0 {
            (Verdict::Approve, Verdict::Reject)
        } else {
            (Verdict::Reject, Verdict::Approve)
        };
        let (one, two) = tokio::join!(
            a.decide_approval(
                approval.id.clone(),
                "rita".into(),
                verdict_a,
                None,
                now_millis()
            ),
            b.decide_approval(
                approval.id.clone(),
                "sam".into(),
                verdict_b,
                None,
                now_millis()
            ),
        );
        let stood = [&one, &two].iter().filter(|r| r.is_ok()).count();
        assert_eq!(stood, 1, "round {round}: {one:?} / {two:?}");
        let loser = if one.is_ok() { two } else { one };
        assert!(loser.unwrap_err().to_string().contains("it is already"));
        // And the approved call is consumed once, whichever server it comes back to.
        let stored = a.approval(approval.id.clone()).await.unwrap();
        if stored.decider.is_some()
            && stored.note.is_none()
            && stored.state == baton_runs::ApprovalState::Approved
        {
            let consume = |store: PgStore, id: String| async move {
                store
                    .consume_approval(
                        id,
                        "agent".into(),
                        "repo_exec".into(),
                        "a".repeat(64),
                        now_millis(),
                    )
                    .await
            };
            let (x, y) = tokio::join!(
                consume(a.clone(), approval.id.clone()),
                consume(b.clone(), approval.id.clone())
            );
            assert_eq!([x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(), 1);
        }
    }
    // Every rejection closed its call once: one record per rejected approval.
    let rejected = a
        .approvals()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.state == baton_runs::ApprovalState::Rejected)
        .count();
    let records = a.audit_records(0, 1_000).await.unwrap();
    assert_eq!(records.len(), rejected);
    assert_eq!(a.verify_audit().await.unwrap().problem, None);
}

#[tokio::test]
async fn a_database_newer_than_the_binary_is_refused() {
    let Some((_cluster, url)) = pg_database("a_database_newer_than_the_binary") else {
        return;
    };
    drop(connect(&url).await);
    psql(&url, "UPDATE baton_schema SET version = 99");
    let error = PgStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the database's schema is version 99, newer than this binary's 5"),
        "{error}"
    );
    let bad = PgStore::connect(
        "postgres://baton@127.0.0.1:1/x?sslmode=require",
        &StoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("connects without TLS"), "{bad}");
    let secret = PgStore::connect(
        "postgres://baton:hunter2@127.0.0.1:1/x?bogus=1",
        &StoreOptions::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(!secret.contains("hunter2"), "{secret}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_in_the_database_is_named_and_refused() {
    let Some((_cluster, url)) = pg_database("tampering_in_the_database") else {
        return;
    };
    let store = connect(&url).await;
    for n in 1..=10 {
        store.append_audit(audit_draft(n)).await.unwrap();
    }
    drop(store);
    // An edited record: verify names it; a deleted tail: the next server refuses to append.
    psql(
        &url,
        "UPDATE baton_audit SET line = replace(line, 'agent-1', 'agent-9') WHERE seq = 4",
    );
    let store = connect(&url).await;
    let report = store.verify_audit().await.unwrap();
    let problem = report.problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind, report.verified),
        (4, ProblemKind::Edited, 3)
    );
    drop(store);
    psql(&url, "DELETE FROM baton_audit WHERE seq > 8");
    let store = connect(&url).await;
    let refusal = store.audit_refusal().unwrap();
    assert_eq!((refusal.seq, refusal.kind), (9, ProblemKind::Truncated));
    let refused = store.append_audit(audit_draft(11)).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::AuditRefused { .. }),
        "{refused}"
    );
    let receipt = store
        .recover_audit("rows lost in a restore".into(), "ops".into())
        .await
        .unwrap();
    assert_eq!(receipt.seq, 9);
    store.append_audit(audit_draft(12)).await.unwrap();
    // The edit inside the chain is still named: the evidence stays.
    assert_eq!(store.verify_audit().await.unwrap().problem.unwrap().seq, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_copies_to_postgres_and_verifies_on_both() {
    let Some((_cluster, url)) = pg_database("a_sled_store_copies") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sled = baton_test_support::open_store(dir.path());
    for n in 1..=1_234 {
        sled.append_audit(audit_draft(n)).await.unwrap();
    }
    let approval = sled.create_approval(draft("agent"), 5).unwrap();
    sled.decide_approval(&approval.id, "rita", Verdict::Reject, Some("no".into()), 6)
        .unwrap();
    let run = sled.create_run("goal", "builder", json!({}), 7).unwrap();
    sled.append_step(&run.id, "model_call", json!({ "n": 1 }), 8)
        .unwrap();
    sled.set_run_state(&run.id, RunState::Done, 9).unwrap();
    sled.put_upload(&[1, 2, 3], "application/octet-stream", "shop", 0)
        .unwrap();
    sled.put_artifact(&vec![9u8; 300 * 1024], "image/png")
        .unwrap();
    sled.save_task("task-1", &json!({ "k": "v" })).unwrap();

    let pg = connect(&url).await;
    let copied = pg.copy_from(&sled).await.unwrap();
    assert_eq!(
        (
            copied.audit_records,
            copied.approvals,
            copied.runs,
            copied.steps,
            copied.tasks,
            copied.artifacts
        ),
        (1_234, 1, 1, 1, 1, 2)
    );
    let (on_sled, on_pg) = (
        sled.verify_audit().unwrap(),
        pg.verify_audit().await.unwrap(),
    );
    assert_eq!(on_sled, on_pg);
    assert_eq!((on_pg.verified, on_pg.problem), (1_234, None));
    assert_eq!(pg.runs().await.unwrap(), sled.runs().unwrap());
    assert_eq!(
        pg.steps(run.id.clone()).await.unwrap(),
        sled.steps(&run.id).unwrap()
    );
    assert_eq!(pg.approvals().await.unwrap(), sled.approvals().unwrap());
    let large = sled
        .kept_artifacts()
        .unwrap()
        .into_iter()
        .find(|k| k.artifact.size > 1_000)
        .unwrap();
    assert_eq!(
        pg.artifact(large.artifact.sha256.clone()).await.unwrap().1,
        Blob(vec![9u8; 300 * 1024])
    );
    // New records chain on after the copied ones.
    assert_eq!(
        pg.append_audit(audit_draft(2_000)).await.unwrap().seq,
        1_235
    );

    // Only into an empty database; never from a chain that does not verify.
    let again = pg.copy_from(&sled).await.unwrap_err();
    assert!(
        again
            .to_string()
            .contains("copied only into an empty database"),
        "{again}"
    );
    drop(sled);
    baton_test_support::tamper_audit(dir.path(), |lines| {
        lines[100] = lines[100]
            .iter()
            .map(|&b| if b == b'7' { b'8' } else { b })
            .collect();
    });
    let damaged = baton_test_support::open_store(dir.path());
    let (_other, fresh_url) = pg_database("copy refused").unwrap();
    let fresh = connect(&fresh_url).await;
    let refused = fresh.copy_from(&damaged).await.unwrap_err();
    assert!(refused.to_string().contains("does not verify"), "{refused}");
    assert_eq!(fresh.audit_records(0, 10).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_fails_calls_in_flight_and_the_pool_recovers() {
    if !baton_test_support::postgres("a_restarted_server_fails_calls") {
        return;
    }
    let cluster = PgCluster::start();
    let url = cluster.database();
    let store = connect(&url).await;
    for n in 1..=5 {
        store.append_audit(audit_draft(n)).await.unwrap();
    }
    cluster.stop();
    let failed = store.append_audit(audit_draft(6)).await.unwrap_err();
    assert!(matches!(failed, StoreError::Storage { .. }), "{failed}");
    assert!(
        failed.to_string().contains("audit record was not written"),
        "{failed}"
    );
    let read = store.approvals().await.unwrap_err();
    assert!(read.to_string().contains("PostgreSQL"), "{read}");
    cluster.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let receipt = loop {
        match store.append_audit(audit_draft(7)).await {
            Ok(receipt) => break receipt,
            Err(error) if Instant::now() < deadline => {
                eprintln!("not yet: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the pool did not recover: {error}"),
        }
    };
    assert_eq!(receipt.seq, 6);
    assert_eq!(store.verify_audit().await.unwrap().verified, 6);

    // Wake-ups across stores resume once the listener is back.
    let other = connect(&url).await;
    for round in 0..3 {
        let seen = store.changes(0, 0).await.unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move { store.changes(seen, 20_000).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        other
            .create_approval(draft("agent"), now_millis())
            .await
            .unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(
            woke.is_ok_and(|w| w.unwrap() != seen),
            "round {round}: no wake-up"
        );
    }
}

#[tokio::test]
async fn an_artifact_over_the_limit_is_refused_naming_both_sizes() {
    let Some((_cluster, url)) = pg_database("an_artifact_over_the_limit") else {
        return;
    };
    let options = StoreOptions {
        max_artifact_bytes: 1_000,
        ..StoreOptions::default()
    };
    let store = PgStore::connect(&url, &options).await.unwrap();
    store
        .put_artifact(Blob(vec![1; 1_000]), "application/octet-stream".into())
        .await
        .unwrap();
    let refused = store
        .put_upload(
            Blob(vec![1; 1_001]),
            "application/octet-stream".into(),
            "shop".into(),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::TooLarge { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("1001 bytes, over the 1000-byte limit"),
        "{refused}"
    );
    // Nothing kept, nothing counted.
    assert_eq!(store.kept_artifacts().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consistent_rewrite_in_the_database_fails_the_checkpoints() {
    let Some((_cluster, url)) = pg_database("a_consistent_rewrite_in_the_database") else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let key = baton_runs::CheckpointKey::generate().unwrap();
    let file = keys.path().join("checkpoints.jsonl");
    let options = StoreOptions {
        checkpoints: Some(baton_runs::CheckpointConfig {
            key: key.clone(),
            every: 10,
            interval: Duration::from_secs(3_600),
            file: file.clone(),
        }),
        ..StoreOptions::default()
    };
    let store = PgStore::connect(&url, &options).await.unwrap();
    for n in 1..=25 {
        store.append_audit(audit_draft(n)).await.unwrap();
    }
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let checked = PgStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap()
        .verify_checkpoints(file.clone(), key.public_key_hex())
        .await
        .unwrap();
    assert_eq!(
        (checked.problem.clone(), checked.covered_seq >= 20),
        (None, true),
        "{checked:?}"
    );

    // Whoever can write the database rewrites record 5 and re-links every record after it:
    // the chain verifies, the signed checkpoints do not.
    let store = PgStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    let mut records = store.audit_records(0, 100).await.unwrap();
    records[4].principal = "someone-else".into();
    let mut previous = records[3].hash.clone();
    for record in records.iter_mut().skip(4) {
        record.prev_hash = previous;
        record.hash = String::new();
        let unhashed = serde_json::to_vec(&record).unwrap();
        record.hash = sha256_hex(&unhashed);
        previous = record.hash.clone();
        let line = serde_json::to_string(&record).unwrap().replace('\'', "''");
        psql(
            &url,
            &format!(
                "UPDATE baton_audit SET line = '{line}' WHERE seq = {}",
                record.seq
            ),
        );
    }
    psql(
        &url,
        &format!("UPDATE baton_audit_head SET hash = '{previous}'"),
    );
    drop(store);
    let store = PgStore::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(store.verify_audit().await.unwrap().problem, None);
    let checked = store
        .verify_checkpoints(file, key.public_key_hex())
        .await
        .unwrap();
    let problem = checked.problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (10, ProblemKind::CheckpointMismatch)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn passwords_never_reach_a_message() {
    for url in [
        "postgres://baton:hunter2@db.internal:5432/baton",
        "postgres://baton@db.internal/baton?password=hunter2&sslmode=disable",
        "postgres://baton:a@db.internal/baton?sslmode=disable&PASSWORD=hunter2",
        "host=db.internal user=baton password=hunter2 dbname=baton",
        "host=db.internal password = hunter2 dbname=baton",
    ] {
        let shown = PgStore::redacted(url);
        assert!(
            !shown.contains("hunter2") && !shown.contains(":a@"),
            "{url} → {shown}"
        );
        assert!(shown.contains("db.internal"), "{url} → {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opened_and_verified_under_load_see_no_damage() {
    let Some((_cluster, url)) = pg_database("stores_opened_and_verified_under_load") else {
        return;
    };
    let writer = connect(&url).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (store, stop) = (writer.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    store
                        .append_audit(audit_draft(w * 1_000_000 + n))
                        .await
                        .unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..10 {
        let other = connect(&url).await;
        assert_eq!(other.audit_refusal(), None);
        let report = other.verify_audit().await.unwrap();
        assert_eq!(
            report.problem, None,
            "verified {} under load",
            report.verified
        );
        assert!(report.verified > 0);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for writer in writers {
        writer.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_closed_only_with_its_record() {
    let Some((_cluster, url)) = pg_database("an_approval_is_closed_only_with_its_record") else {
        return;
    };
    let store = connect(&url).await;
    // A caller's arguments may hold any character, NUL included.
    let mut odd = draft("agent");
    odd.args = json!({ "content": "a\u{0}b" });
    let approval = store.create_approval(odd, now_millis()).await.unwrap();
    for n in 1..=3 {
        store.append_audit(audit_draft(n)).await.unwrap();
    }
    drop(store);
    psql(&url, "DELETE FROM baton_audit WHERE seq = 3");
    let store = connect(&url).await;
    assert!(store.audit_refusal().is_some());
    // The log refuses: the rejection is refused too, and the approval stays pending.
    let refused = store
        .decide_approval(
            approval.id.clone(),
            "rita".into(),
            Verdict::Reject,
            Some("no".into()),
            now_millis(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::AuditRefused { .. }),
        "{refused}"
    );
    assert_eq!(
        store.approval(approval.id.clone()).await.unwrap().state,
        baton_runs::ApprovalState::Pending
    );
    store
        .recover_audit("a test deleted record 3".into(), "ops".into())
        .await
        .unwrap();
    store
        .decide_approval(
            approval.id.clone(),
            "rita".into(),
            Verdict::Reject,
            Some("no".into()),
            now_millis(),
        )
        .await
        .unwrap();
    let records = store.audit_records(0, 100).await.unwrap();
    let closing: Vec<_> = records
        .iter()
        .filter(|r| r.approval_id.as_deref() == Some(approval.id.as_str()))
        .collect();
    assert_eq!(closing.len(), 1);
    assert_eq!(
        closing[0].outcome.status,
        baton_runs::OutcomeStatus::Rejected
    );
}
