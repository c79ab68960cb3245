//! What the pack refuses on its own, whatever the policy allows: paths leaving the repository,
//! writes into `.git`, a corrupt index, runaway commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, rule};
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
