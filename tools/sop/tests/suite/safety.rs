//! What the pack refuses on its own, whatever the policy allows: paths leaving the repository,
//! writes into `.git`, a corrupt index, runaway commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::{Fixture, rule};
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn paths_stay_inside_the_repository() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), f.root().join("escape")).unwrap();
    std::os::unix::fs::symlink(f.root().join(".git"), f.root().join("gitlink")).unwrap();
    let cases = [
        ("../evil.txt", "`..` is not allowed"),
        ("src/../../evil.txt", "`..` is not allowed"),
        ("/tmp/evil.txt", "absolute paths are not allowed"),
        (".git/config", "`.git` is never written"),
        ("sub/.git/hooks/pre-commit", "`.git` is never written"),
        (
            "escape/evil.txt",
            "outside the repository (through a symlink)",
        ),
        ("gitlink/config", "resolves into `.git`"),
    ];
    for (path, why) in cases {
        let error = f
            .try_call("repo_write", json!({"path": path, "content": "x"}))
            .await
            .unwrap_err();
        assert_eq!(rule(&error), "sop.confinement", "{path}");
        assert!(error.to_string().contains(why), "{path}: {error}");
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    let config = std::fs::read_to_string(f.root().join(".git/config")).unwrap();
    assert!(
        !config.contains('x') || config.contains("[core]"),
        ".git/config untouched"
    );
    // Reads are confined the same way, and so is where a command runs.
    std::fs::write(outside.path().join("secret"), "s3cret").unwrap();
    let read = f
        .try_call("repo_read", json!({"path": "escape/secret"}))
        .await
        .unwrap_err();
    assert_eq!(rule(&read), "sop.confinement");
    let exec = f
        .try_call("repo_exec", json!({"argv": ["ls"], "cwd": "../"}))
        .await
        .unwrap_err();
    assert_eq!(rule(&exec), "sop.confinement");
    // Inside, all is well, folders included.
    let ok = f
        .call(
            "repo_write",
            json!({"path": "src/new/mod.rs", "content": "// new\n"}),
        )
        .await;
    assert_eq!(
        ok,
        json!({"path": "src/new/mod.rs", "bytes": 7, "created": true})
    );
    assert_eq!(f.read("src/new/mod.rs"), "// new\n");
}

#[tokio::test]
async fn a_corrupt_index_is_set_aside_and_refused_never_emptied() {
    let f = Fixture::new();
    f.call("sop_prd_create", json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}, {"title": "Two"}]}})).await;
    f.call("sop_tasks_generate", json!({"feature": "a"})).await;
    let index = f.root().join("tasks/index.json");
    // A merge gone wrong: conflict markers in the middle of the file.
    let good = std::fs::read_to_string(&index).unwrap();
    let broken = good.replacen("\"tasks\": [", "\"tasks\": [\n<<<<<<< HEAD\n", 1);
    std::fs::write(&index, &broken).unwrap();

    let error = f
        .try_call(
            "sop_task_update",
            json!({"task": "T-0000", "metadata": {"k": 1}}),
        )
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("tasks/index.json is corrupt"), "{message}");
    assert!(message.contains("was moved to"), "{message}");
    assert!(
        !index.exists(),
        "the bad file is moved aside, not rewritten"
    );
    let aside: Vec<_> = std::fs::read_dir(f.root().join("tasks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("index.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        broken,
        "its bytes are kept"
    );

    // With the copy set aside, nothing starts over from an empty index: reads and writes refuse.
    for (tool, args) in [
        ("sop_status", json!({})),
        (
            "sop_prd_create",
            json!({"feature": "b", "brief": {"title": "B"}}),
        ),
    ] {
        let error = f.try_call(tool, args).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("holds a copy set aside as corrupt"),
            "{tool}: {error}"
        );
    }
    assert!(!index.exists());

    // Restoring the good file brings everything back.
    std::fs::write(&index, &good).unwrap();
    std::fs::remove_file(&aside[0]).unwrap();
    let status = f.call("sop_status", json!({})).await;
    assert_eq!(status["total"], 2);
}

#[tokio::test]
async fn an_index_that_parses_but_lies_is_refused_too() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}]}}),
    )
    .await;
    f.call("sop_tasks_generate", json!({"feature": "a"})).await;
    let index = f.root().join("tasks/index.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    value["tasks"][0]["dependencies"] = json!(["01NOPE"]);
    std::fs::write(&index, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    let error = f.try_call("sop_status", json!({})).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("tasks[0].dependencies names `01NOPE`, which is not a task"),
        "{error}"
    );
}

#[tokio::test]
async fn a_command_past_its_limit_is_killed_with_everything_it_started() {
    let f = Fixture::new();
    let started = std::time::Instant::now();
    let error = f
        .try_call(
            "repo_exec",
            json!({"argv": ["sleep 30 & sleep 30; echo never"], "shell": true, "timeout_s": 1}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "timed out after 1.0 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // No shell unless asked: the string is a program name, not a script.
    let error = f
        .try_call("repo_exec", json!({"argv": ["echo hi; rm -rf ."]}))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "not found: program `echo hi; rm -rf .`");
    let out = f
        .call(
            "repo_exec",
            json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}),
        )
        .await;
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["success"], false);
    assert_eq!(out["stdout"], "out\n");
    assert_eq!(out["stderr"], "err\n");
}

/// A read tool never writes, whatever `repo` points at: a corrupt index is refused and left
/// exactly as it was (no copy set aside, no lock file made).
#[tokio::test]
async fn a_read_tool_leaves_a_corrupt_index_untouched() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}]}}),
    )
    .await;
    f.call("sop_tasks_generate", json!({"feature": "a"})).await;
    let tasks = f.root().join("tasks");
    let _ = std::fs::remove_file(tasks.join(".index.lock"));
    let index = tasks.join("index.json");
    std::fs::write(&index, "{ not json").unwrap();
    let before: Vec<_> = std::fs::read_dir(&tasks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for (tool, args) in [
        ("sop_task_get", json!({"task": "T-0000"})),
        ("sop_status", json!({})),
        ("sop_task_next", json!({})),
    ] {
        let error = f.try_call(tool, args).await.unwrap_err().to_string();
        assert!(
            error.contains("tasks/index.json is corrupt"),
            "{tool}: {error}"
        );
        assert!(error.contains("Nothing was changed"), "{tool}: {error}");
    }
    let after: Vec<_> = std::fs::read_dir(&tasks)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "nothing created, renamed or removed");
    assert_eq!(std::fs::read_to_string(&index).unwrap(), "{ not json");
}

/// A claim belongs to the calling principal: one agent cannot claim, advance or update a task
/// in another's name.
#[tokio::test]
async fn an_agent_cannot_act_under_another_agents_name() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}]}}),
    )
    .await;
    let tasks = f.call("sop_tasks_generate", json!({"feature": "a"})).await;
    let alias = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    f.call("sop_plan_create", json!({"feature": "a"})).await;
    f.call("sop_task_claim", json!({"task": alias, "agent": "a"}))
        .await;
    for (tool, args) in [
        ("sop_task_claim", json!({"task": alias, "agent": "a"})),
        (
            "sop_advance",
            json!({"task": alias, "to": "in_progress", "agent": "a"}),
        ),
        (
            "repo_worktree",
            json!({"action": "create", "task": alias, "agent": "a"}),
        ),
    ] {
        let error = f
            .try_call_as("b", tool, args)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`a` is not the caller: the SOP acts as `b`"),
            "{tool}: {error}"
        );
    }
    // Without naming anyone, `b` acts as itself: the claim is `a`'s, so it is refused.
    let error = f
        .try_call_as(
            "b",
            "sop_advance",
            json!({"task": alias, "to": "in_progress"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("claim"), "{error}");
    let task = f.call("sop_task_get", json!({"task": alias})).await;
    assert_eq!(task["task"]["claimed_by"]["agent"], "a");
    assert_eq!(task["task"]["status"], "pending");
}

fn workspace(root: &std::path::Path) -> baton_kit::Sandbox {
    baton_kit::Sandbox {
        mode: baton_kit::SandboxMode::WorkspaceWrite,
        writable_roots: vec![root.to_owned()],
        network: false,
        env: Vec::new(),
        protected: Vec::new(),
    }
}

/// `repo` given as a symlink inside the writable root that leads elsewhere: the policy's
/// lexical check passes (`root/link_out/…` is under the root), but the repository resolves
/// outside it, so nothing is written there.
#[tokio::test]
async fn a_symlinked_repo_outside_the_roots_is_never_written() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let link = allowed.path().join("link_out");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    let error = f
        .try_call_in(
            Some(workspace(allowed.path())),
            "tester",
            "repo_write",
            json!({"repo": link, "path": "escaped.txt", "content": "x"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("outside the writable roots"), "{error}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    // The fixture's own repository, as a root, is writable.
    let ok = f
        .try_call_in(
            Some(workspace(&f.root())),
            "tester",
            "repo_write",
            json!({"path": "inside.txt", "content": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(ok["created"], true);
}

/// A process swaps a folder for a symlink to outside the repository, over and over, while
/// `repo_write` writes into it: thousands of attempts, zero files outside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_swapped_for_a_symlink_mid_write_never_leads_outside() {
    let f = Fixture::new();
    let outside = tempfile::tempdir().unwrap();
    let root = f.root();
    let dir = root.join("d");
    let parked = root.join("d.real");
    std::fs::create_dir(&dir).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let swapper = {
        let (dir, parked, target, stop, swaps) = (
            dir.clone(),
            parked.clone(),
            outside.path().to_owned(),
            stop.clone(),
            swaps.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // real folder → symlink to outside → real folder again
                if std::fs::rename(&dir, &parked).is_ok() {
                    let _ = std::os::unix::fs::symlink(&target, &dir);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&dir);
                    let _ = std::fs::rename(&parked, &dir);
                    swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
    };
    let sandbox = workspace(&root);
    let (mut written, mut refused) = (0u32, 0u32);
    // At least 3,000 writes, and on until the swapper has raced them 200 times: on a loaded
    // machine it gets fewer turns, and the test must still have exercised the race.
    let mut i = 0u32;
    while i < 3000 || (swaps.load(std::sync::atomic::Ordering::Relaxed) < 200 && i < 60_000) {
        let result = f
            .try_call_in(
                Some(sandbox.clone()),
                "tester",
                "repo_write",
                json!({"path": format!("d/f{i}.txt"), "content": "x"}),
            )
            .await;
        match result {
            Ok(_) => written += 1,
            Err(_) => refused += 1,
        }
        i += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(std::sync::atomic::Ordering::Relaxed);
    let escaped = std::fs::read_dir(outside.path()).unwrap().count();
    assert!(swaps > 100, "the swapper raced: {swaps} swaps");
    assert!(written > 0, "{written} written, {refused} refused");
    assert_eq!(
        escaped, 0,
        "{written} written, {refused} refused, {swaps} swaps"
    );
}
