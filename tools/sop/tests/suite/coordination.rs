//! The shared index on the coordination branch: machines that share only a remote update it
//! at once, and no update is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use baton_sop::coordination::BRANCH;
use baton_sop::{Coordination, Status};
use pretty_assertions::assert_eq;

fn bare_remote(dir: &std::path::Path) -> String {
    let remote = dir.join("remote.git");
    let made = Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(&remote)
        .status()
        .unwrap();
    assert!(made.success());
    remote.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_machines_updating_at_once_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    let ids: Vec<String> = (0..10).map(|_| ulid::Ulid::new().to_string()).collect();
    // One scratch repository per "machine": they share nothing but the remote.
    let machines = ids.iter().enumerate().map(|(n, id)| {
        let (remote, id) = (remote.clone(), id.clone());
        let scratch = dir.path().join(format!("machine-{n}"));
        tokio::spawn(async move {
            let shared = Arc::new(Coordination::open(&remote, &scratch).await.unwrap());
            shared
                .update("add a goal", |index| {
                    index.add_goal(&id, &format!("goal {n}"));
                    Ok(())
                })
                .await
                .unwrap();
            shared
                .update("finish a goal", |index| {
                    index.move_goal(&id, Status::Done, None, serde_json::Map::new())
                })
                .await
                .unwrap();
        })
    });
    for machine in machines {
        machine.await.unwrap();
    }
    let reader = Coordination::open(&remote, &dir.path().join("reader"))
        .await
        .unwrap();
    let index = reader.read().await.unwrap();
    let mut found: Vec<(String, &str)> = index
        .tasks
        .iter()
        .map(|t| (t.id.clone(), t.status.as_str()))
        .collect();
    found.sort_unstable();
    let mut expected: Vec<(String, &str)> = ids.iter().map(|id| (id.clone(), "done")).collect();
    expected.sort_unstable();
    assert_eq!(found, expected);
    // Twenty updates, twenty commits, one line of history.
    let log = Command::new("git")
        .args(["--git-dir", &remote, "rev-list", "--count", BRANCH])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), "20");
}

#[tokio::test]
async fn a_damaged_shared_index_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare_remote(dir.path());
    // Someone pushes a branch whose index is not the SOP's.
    let work = dir.path().join("work");
    let run = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(&work)
            .status()
            .unwrap();
        assert!(ok.success(), "{args:?}");
    };
    std::fs::create_dir_all(work.join("tasks")).unwrap();
    std::fs::write(work.join("tasks/index.json"), "{\"schema_version\": 7}").unwrap();
    run(&["init", "--quiet", "-b", BRANCH]);
    run(&["add", "."]);
    run(&["commit", "--quiet", "-m", "bad"]);
    run(&["push", "--quiet", &remote, BRANCH]);
    let shared = Coordination::open(&remote, &dir.path().join("m"))
        .await
        .unwrap();
    let error = shared
        .update("add", |index| {
            index.add_goal("01J0000000000000000000000A", "x");
            Ok(())
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("baton/coordination:tasks/index.json")
            && error.contains("schema_version is 7"),
        "{error}"
    );
}
