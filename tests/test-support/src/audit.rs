use std::path::Path;

use baton_runs::{AuditDraft, DecisionKind, DecisionRecord, OutcomeRecord, OutcomeStatus};

/// The `n`th of a run of plausible audit records: three agents writing files.
pub fn audit_draft(n: u64) -> AuditDraft {
    AuditDraft {
        time_ms: 1_700_000_000_000 + n,
        principal: format!("agent-{}", n % 3),
        tool: "repo_write".into(),
        args_digest: format!("{n:064x}"),
        decision: DecisionRecord {
            kind: DecisionKind::Allow,
            rule: "approval.on-request".into(),
            reason: None,
        },
        approval_id: None,
        decided_by: None,
        outcome: OutcomeRecord {
            status: OutcomeStatus::Ok,
            error_kind: None,
            message: None,
        },
        duration_us: 42,
        sandbox: None,
    }
}

/// Edit the audit records stored in the data folder `data_dir` through sled itself, with
/// Baton's store closed — what someone who can write the files can do. `change` gets every
/// stored record line, in order, and may edit, drop or reorder them.
pub fn tamper_audit(data_dir: &Path, change: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let db = sled::open(data_dir.join("store")).unwrap();
    let audit = db.open_tree("audit").unwrap();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for entry in audit.iter() {
        let (_, value) = entry.unwrap();
        lines.extend(
            value
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    change(&mut lines);
    audit.clear().unwrap();
    let mut chunk = Vec::new();
    for line in lines {
        chunk.extend_from_slice(&line);
        chunk.push(b'\n');
    }
    audit.insert(1u64.to_be_bytes(), chunk).unwrap();
    db.flush().unwrap();
}

/// Where the record `seq` is among the `lines` [`tamper_audit`] hands over.
pub fn audit_line(lines: &[Vec<u8>], seq: u64) -> usize {
    let needle = format!("\"seq\":{seq},");
    lines
        .iter()
        .position(|l| String::from_utf8_lossy(l).contains(&needle))
        .unwrap()
}

/// Open the store in `dir`, waiting (up to 10 s) while a store just dropped still holds it:
/// sled's background flusher lets go of the lock a moment after the last handle, longer on a
/// loaded machine. (Baton's own `StoreHandle` waits the same way.)
pub fn open_store(dir: &Path) -> baton_runs::Store {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match baton_runs::Store::open(dir) {
            Err(baton_runs::RunsError::Locked(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened.unwrap(),
        }
    }
}
