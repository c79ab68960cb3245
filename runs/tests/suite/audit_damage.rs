//! The audit log cannot shrink or be rewritten silently: a lost or damaged write-ahead
//! segment, edited database bytes and a consistent rewrite are each detected and named, and a
//! damaged log takes no records until an operator recovers it on the record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead as _;
use std::path::Path;

use baton_runs::{
    AuditRecord, CheckpointConfig, CheckpointKey, ProblemKind, RunsError, Store, StoreOptions,
    salvage_audit,
};
use baton_test_support::audit_draft;
use sha2::Digest as _;

/// A child process appends `records` records, says so once every one was answered, and is
/// killed with SIGKILL: no orderly close, no sled flush but its own background ones.
fn answered_then_killed(dir: &Path, records: u64) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "suite::audit_damage::append_and_wait",
            "--ignored",
            "--nocapture",
        ])
        .env("BATON_AUDIT_CHILD_DIR", dir)
        .env("BATON_AUDIT_CHILD_RECORDS", records.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let expected = format!("answered {records}");
    loop {
        let line = lines.next().expect("the child died early").unwrap();
        if line.contains(&expected) {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

#[test]
#[ignore = "run in a child process by answered_then_killed"]
fn append_and_wait() {
    let dir = std::env::var("BATON_AUDIT_CHILD_DIR").unwrap();
    let records: u64 = std::env::var("BATON_AUDIT_CHILD_RECORDS")
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = baton_test_support::open_store(Path::new(&dir));
    runtime.block_on(async {
        for n in 1..=records {
            store.append_audit(audit_draft(n)).await.unwrap();
        }
    });
    println!("answered {records}");
    std::thread::sleep(std::time::Duration::from_secs(60));
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_deleted_wal_after_a_crash_is_refused_named_and_recovered_on_the_record() {
    let dir = tempfile::tempdir().unwrap();
    answered_then_killed(dir.path(), 100);
    std::fs::remove_file(dir.path().join("audit.wal")).unwrap();

    let store = baton_test_support::open_store(dir.path());
    let refusal = store
        .audit_refusal()
        .expect("a lost segment went unnoticed");
    assert_eq!(refusal.kind, ProblemKind::WalMissing);
    // Whatever sled flushed in the background is kept; the record after it is named.
    let report = store.verify_audit().unwrap();
    assert_eq!(report.problem.as_ref(), Some(&refusal));
    assert_eq!(refusal.seq, report.verified + 1);
    assert!(
        refusal
            .detail
            .contains("audit.wal is missing after an unclean stop")
            && refusal
                .detail
                .contains(&format!("records after {}", report.verified)),
        "{}",
        refusal.detail
    );
    // Nothing is appended over the gap.
    match block_on(store.append_audit(audit_draft(101))) {
        Err(RunsError::AuditRefused(problem)) => assert_eq!(*problem, refusal),
        other => panic!("expected a refusal, got {other:?}"),
    }
    drop(store);
    // Still refused after another open: the refusal is not forgotten.
    let store = baton_test_support::open_store(dir.path());
    assert_eq!(store.audit_refusal(), Some(refusal.clone()));

    let receipt = store
        .recover_audit("disk replaced; the lost calls were re-run", "ops@example")
        .unwrap();
    assert_eq!(receipt.seq, refusal.seq);
    let next = block_on(store.append_audit(audit_draft(102))).unwrap();
    assert_eq!(next.seq, receipt.seq + 1);
    let report = store.verify_audit().unwrap();
    assert_eq!((report.verified, report.problem), (next.seq, None));
    let recovery: AuditRecord = store
        .audit_records()
        .map(Result::unwrap)
        .find(|r| r.seq == receipt.seq)
        .unwrap();
    assert_eq!(recovery.tool, "audit_recover");
    assert_eq!(recovery.principal, "ops@example");
    assert_eq!(
        recovery.decision.reason.as_deref(),
        Some("disk replaced; the lost calls were re-run")
    );
    let message = recovery.outcome.message.unwrap();
    assert!(message.contains("wal_missing"), "{message}");
    // Nothing left to recover.
    assert!(matches!(
        store.recover_audit("again", "ops@example"),
        Err(RunsError::AuditIntact)
    ));
    drop(store);
    let store = baton_test_support::open_store(dir.path());
    assert_eq!(store.audit_refusal(), None);
    assert_eq!(store.verify_audit().unwrap().verified, next.seq);
}

/// Change the bytes of record `seq` in the write-ahead segment.
fn damage_wal(dir: &Path, seq: u64, change: impl Fn(&mut Vec<u8>)) {
    let path = dir.join("audit.wal");
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = format!("\"seq\":{seq},");
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap();
    let start = bytes[..at].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let end = at + bytes[at..].iter().position(|&b| b == b'\n').unwrap();
    let mut line = bytes[start..end].to_vec();
    change(&mut line);
    assert_eq!(line.len(), end - start, "the damage keeps the length");
    bytes[start..end].copy_from_slice(&line);
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_damaged_wal_record_is_refused_and_named() {
    // A record's bytes changed (still JSON): its hash no longer matches.
    let dir = tempfile::tempdir().unwrap();
    answered_then_killed(dir.path(), 60);
    damage_wal(dir.path(), 40, |line| {
        let text = String::from_utf8(line.clone()).unwrap();
        *line = text.replacen("agent-1", "mallory", 1).into_bytes();
    });
    let store = baton_test_support::open_store(dir.path());
    let refusal = store.audit_refusal().expect("damage went unnoticed");
    assert_eq!((refusal.seq, refusal.kind), (40, ProblemKind::WalDamaged));
    assert!(refusal.detail.contains("record 40"), "{}", refusal.detail);
    let report = store.verify_audit().unwrap();
    assert_eq!(report.problem.map(|p| p.seq), Some(40));
    assert!(report.verified >= 39, "records before the damage are kept");
    assert!(matches!(
        block_on(store.append_audit(audit_draft(61))),
        Err(RunsError::AuditRefused(_))
    ));
    drop(store);

    // A record's bytes no longer parse.
    let dir = tempfile::tempdir().unwrap();
    answered_then_killed(dir.path(), 60);
    damage_wal(dir.path(), 17, |line| line[0] = b'#');
    let store = baton_test_support::open_store(dir.path());
    let refusal = store.audit_refusal().expect("damage went unnoticed");
    assert_eq!((refusal.seq, refusal.kind), (17, ProblemKind::WalDamaged));

    // A record zeroed out: the records after it must not vanish with it.
    let dir = tempfile::tempdir().unwrap();
    answered_then_killed(dir.path(), 60);
    damage_wal(dir.path(), 50, |line| line.fill(0));
    let store = baton_test_support::open_store(dir.path());
    let refusal = store.audit_refusal().expect("damage went unnoticed");
    assert_eq!((refusal.seq, refusal.kind), (50, ProblemKind::WalDamaged));
}

#[test]
fn a_torn_last_write_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    answered_then_killed(dir.path(), 10);
    // A batch cut short by a crash before its sync returned: never answered.
    let path = dir.path().join("audit.wal");
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().position(|&b| b == 0).unwrap();
    bytes[end..end + 20].copy_from_slice(b"{\"approval_id\":\"abc\"");
    std::fs::write(&path, bytes).unwrap();
    let store = baton_test_support::open_store(dir.path());
    assert_eq!(store.audit_refusal(), None);
    let receipt = block_on(store.append_audit(audit_draft(11))).unwrap();
    assert_eq!(receipt.seq, 11);
    drop(store);
    let store = baton_test_support::open_store(dir.path());
    let report = store.verify_audit().unwrap();
    assert_eq!((report.verified, report.problem), (11, None));
}

async fn store_with(dir: &Path, options: StoreOptions, records: u64) -> Store {
    let store = Store::open_with(dir, options).unwrap();
    for n in 1..=records {
        store.append_audit(audit_draft(n)).await.unwrap();
    }
    store
}

#[tokio::test]
async fn edited_database_bytes_are_named_and_never_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), StoreOptions::default(), 20).await);
    edit_every_copy_of_record_5(dir.path());
    match Store::open(dir.path()) {
        // sled refuses its edited files as a whole: nothing can be appended…
        Err(error @ RunsError::Damaged { .. }) => assert!(matches!(
            baton_runs::StoreError::from(error),
            baton_runs::StoreError::Damaged { .. }
        )),
        Ok(store) => {
            // …or sled drops what follows its first bad checksum, silently (and rewrites its
            // files): the segment knows what sled had flushed, so the log refuses, naming the
            // first record sled dropped — at or before the edited one.
            let refusal = store.audit_refusal().expect("sled's loss went unnoticed");
            assert!(
                refusal.seq <= 5
                    && matches!(refusal.kind, ProblemKind::Truncated | ProblemKind::Edited),
                "{refusal}"
            );
            assert!(
                refusal.detail.contains("had flushed records up to 20"),
                "{refusal}"
            );
            assert_eq!(store.verify_audit().unwrap().problem, Some(refusal));
            assert!(matches!(
                store.append_audit(audit_draft(21)).await,
                Err(RunsError::AuditRefused(_))
            ));
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

/// Edit every copy of record 5 that sled's files hold.
fn edit_every_copy_of_record_5(dir: &Path) {
    let db = dir.join("store").join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let needle = b"\"principal\":\"agent-2\",\"seq\":5,";
    let mut edited = 0;
    for at in 0..bytes.len() - needle.len() {
        if &bytes[at..at + needle.len()] == needle {
            bytes[at + 17] = b'X';
            edited += 1;
        }
    }
    assert!(edited > 0);
    std::fs::write(&db, bytes).unwrap();
}

#[test]
fn edited_database_files_that_sled_refuses_are_named_from_the_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    block_on(async { drop(store_with(dir.path(), StoreOptions::default(), 20).await) });
    edit_every_copy_of_record_5(dir.path());
    // What `baton audit verify` does when the database does not open.
    let report = salvage_audit(dir.path()).unwrap();
    let problem = report.problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (5, ProblemKind::Edited),
        "{problem}"
    );
    assert_eq!(report.verified, 4);
    assert!(problem.detail.contains("record 5"), "{}", problem.detail);
}

/// Rewrite the chain through sled, consistently: record `seq` gets another principal and every
/// hash from there on is recomputed, the head too — what someone who can write the store can do.
fn rewrite(dir: &Path, seq: u64) {
    let db = sled::open(dir.join("store")).unwrap();
    let audit = db.open_tree("audit").unwrap();
    let mut records: Vec<AuditRecord> = Vec::new();
    for entry in audit.iter() {
        let (_, value) = entry.unwrap();
        for line in value.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            records.push(serde_json::from_slice(line).unwrap());
        }
    }
    let mut previous = String::new();
    for record in &mut records {
        if record.seq == seq {
            record.principal = "mallory".into();
        }
        if record.seq >= seq {
            record.prev_hash.clone_from(&previous);
            record.hash.clear();
            let digest = sha2::Sha256::digest(serde_json::to_vec(&record).unwrap());
            record.hash = digest.iter().map(|b| format!("{b:02x}")).collect();
        }
        previous.clone_from(&record.hash);
    }
    audit.clear().unwrap();
    let mut chunk = Vec::new();
    for record in &records {
        chunk.extend(serde_json::to_vec(record).unwrap());
        chunk.push(b'\n');
    }
    audit.insert(1u64.to_be_bytes(), chunk).unwrap();
    let last = records.last().unwrap();
    let head = serde_json::json!({ "seq": last.seq, "hash": last.hash });
    let meta = db.open_tree("meta").unwrap();
    meta.insert("audit_head", serde_json::to_vec(&head).unwrap())
        .unwrap();
    // A thorough rewriter also moves the head the last open found whole.
    let mut marker: serde_json::Value =
        serde_json::from_slice(&meta.get("audit_wal").unwrap().unwrap()).unwrap();
    marker["checked"] = head;
    meta.insert("audit_wal", serde_json::to_vec(&marker).unwrap())
        .unwrap();
    db.flush().unwrap();
}

fn checkpoints(keys: &Path, data: &Path, every: u64) -> (StoreOptions, CheckpointKey) {
    let key = CheckpointKey::generate().unwrap();
    let key_file = keys.join("audit.key");
    std::fs::write(&key_file, key.seed_hex()).unwrap();
    let loaded = CheckpointKey::load(&key_file, data).unwrap();
    assert_eq!(loaded.public_key_hex(), key.public_key_hex());
    let options = StoreOptions {
        checkpoints: Some(CheckpointConfig {
            key: loaded,
            every,
            interval: std::time::Duration::from_secs(3600),
            file: keys.join("checkpoints.jsonl"),
        }),
        ..StoreOptions::default()
    };
    (options, key)
}

#[tokio::test]
async fn a_consistent_rewrite_passes_verify_but_not_the_checkpoints() {
    let keys = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (options, key) = checkpoints(keys.path(), dir.path(), 10);
    drop(store_with(dir.path(), options, 35).await);
    let file = keys.path().join("checkpoints.jsonl");
    let lines = std::fs::read_to_string(&file).unwrap();
    let seqs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [10, 20, 30, 35], "every 10 records, and on close");
    let public = baton_runs::parse_public_key(&key.public_key_hex()).unwrap();
    {
        let store = baton_test_support::open_store(dir.path());
        let report = store.verify_checkpoints(&file, &public).unwrap();
        assert_eq!(
            (report.verified, report.covered_seq, report.problem),
            (4, 35, None)
        );
    }

    rewrite(dir.path(), 15);
    let store = baton_test_support::open_store(dir.path());
    assert_eq!(store.audit_refusal(), None);
    let plain = store.verify_audit().unwrap();
    assert_eq!(
        (plain.verified, plain.problem),
        (35, None),
        "the rewrite is consistent"
    );
    let report = store.verify_checkpoints(&file, &public).unwrap();
    let problem = report.problem.unwrap();
    assert_eq!(
        (problem.seq, problem.kind),
        (20, ProblemKind::CheckpointMismatch)
    );
    assert_eq!(report.covered_seq, 10, "the log up to 10 is proven");
    assert!(problem.detail.contains("rewritten"), "{}", problem.detail);
    drop(store);

    // A forged checkpoint (someone re-signs nothing, just edits the hash) is named.
    let forged = lines.replacen("\"seq\":20,", "\"seq\":21,", 1);
    let forged_file = keys.path().join("forged.jsonl");
    std::fs::write(&forged_file, forged).unwrap();
    let store = baton_test_support::open_store(dir.path());
    let problem = store
        .verify_checkpoints(&forged_file, &public)
        .unwrap()
        .problem
        .unwrap();
    assert_eq!((problem.seq, problem.kind), (21, ProblemKind::BadSignature));
    // Another key's checkpoints do not verify either.
    let other = CheckpointKey::generate().unwrap();
    let other = baton_runs::parse_public_key(&other.public_key_hex()).unwrap();
    let problem = store
        .verify_checkpoints(&file, &other)
        .unwrap()
        .problem
        .unwrap();
    assert_eq!((problem.seq, problem.kind), (10, ProblemKind::BadSignature));
}

#[test]
fn a_key_inside_the_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = CheckpointKey::generate().unwrap();
    let inside = dir.path().join("keys");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::write(inside.join("audit.key"), key.seed_hex()).unwrap();
    match CheckpointKey::load(&inside.join("audit.key"), dir.path()) {
        Err(error @ RunsError::CheckpointKey { .. }) => {
            assert!(
                error.to_string().contains("inside the data folder"),
                "{error}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Raw 32 bytes work as well as hex, outside.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("raw.key"), [7u8; 32]).unwrap();
    let raw = CheckpointKey::load(&outside.path().join("raw.key"), dir.path()).unwrap();
    assert_eq!(raw.key_id(), CheckpointKey::from_seed([7u8; 32]).key_id());
}

/// What the check at open costs: `cargo test --release -p baton-runs --test audit_damage --
/// --ignored --nocapture open_cost`.
#[test]
#[ignore = "a measurement"]
fn open_cost() {
    let dir = tempfile::tempdir().unwrap();
    let records = 100_000u64;
    let runtime = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    runtime.block_on(async {
        let store = baton_test_support::open_store(dir.path());
        for start in (1..=records).step_by(1000) {
            let appends: Vec<_> = (start..start + 1000)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move { store.append_audit(audit_draft(n)).await })
                })
                .collect();
            for append in appends {
                append.await.unwrap().unwrap();
            }
        }
    });
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let store = baton_test_support::open_store(dir.path());
        let open = started.elapsed();
        let started = std::time::Instant::now();
        let report = store.verify_audit().unwrap();
        let walk = started.elapsed();
        assert_eq!((report.verified, report.problem), (records, None));
        drop(store);
        println!(
            "{records} records: open (replay + chain check) {open:?}; a verify walk alone {walk:?}"
        );
    }
}
