//! The smaller tools: conventions harvested, mirror snapshots, paged reads, dependencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::Fixture;
use pretty_assertions::assert_eq;
use serde_json::json;

#[tokio::test]
async fn patterns_harvest_catalogs_the_repository_conventions() {
    let f = Fixture::new();
    let root = f.root();
    for (path, text) in [
        (".github/workflows/ci.yml", "on: push\n"),
        ("rustfmt.toml", "edition = \"2024\"\n"),
        ("web/.eslintrc.json", "{}\n"),
        ("web/node_modules/pkg/.eslintrc.json", "{}\n"),
        (".github/pull_request_template.md", "## What\n"),
        ("scripts/rename-codemod.js", "module.exports = () => {};\n"),
    ] {
        std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        std::fs::write(root.join(path), text).unwrap();
    }
    let out = f.call("patterns_harvest", json!({})).await;
    let found: Vec<(String, String, String)> = out["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["tool"].as_str().unwrap().to_owned(),
                p["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("ci", "github-actions", ".github/workflows/ci.yml"),
        ("codemod", "codemod", "scripts/rename-codemod.js"),
        ("format", "rustfmt", "rustfmt.toml"),
        ("lint", "eslint", "web/.eslintrc.json"),
        (
            "template",
            "pull-request",
            ".github/pull_request_template.md",
        ),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(found, expected, "node_modules is skipped");
    assert_eq!(
        out["adapters"],
        json!([
            "adapters/ci.md",
            "adapters/codemod.md",
            "adapters/format.md",
            "adapters/lint.md",
            "adapters/template.md"
        ])
    );
    let catalog: serde_json::Value =
        serde_json::from_str(&f.read("patterns/catalog.json")).unwrap();
    assert_eq!(catalog["patterns"].as_array().unwrap().len(), 5);
    assert!(
        f.read("adapters/format.md")
            .contains("`rustfmt.toml` (rustfmt): run `cargo fmt --check`")
    );
}

#[tokio::test]
async fn mirror_snapshots_append_and_never_rewrite() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}]}}),
    )
    .await;
    let before = f.read("docs/PRD.md");
    let out = f
        .call(
            "sop_mirror",
            json!({"doc": "prd", "feature": "a", "note": "Kick-off held."}),
        )
        .await;
    assert_eq!(out["path"], "docs/PRD.md");
    assert_eq!(
        out["summary"],
        "Phase `prd`; tasks: none.\n\nKick-off held."
    );
    let after = f.read("docs/PRD.md");
    assert!(
        after.starts_with(&before),
        "earlier sections are kept byte for byte"
    );
    assert_eq!(
        f.sections("docs/PRD.md"),
        ["a · PRD written", "a · snapshot"]
    );
    let unknown = f
        .try_call("sop_mirror", json!({"doc": "prd", "feature": "b"}))
        .await
        .unwrap_err();
    assert_eq!(unknown.to_string(), "not found: feature `b`");
}

#[tokio::test]
async fn reads_page_and_dependencies_are_checked() {
    let f = Fixture::new();
    let text: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    f.call("repo_write", json!({"path": "notes.txt", "content": text}))
        .await;
    let page = f
        .call(
            "repo_read",
            json!({"path": "notes.txt", "start_line": 4, "max_lines": 3}),
        )
        .await;
    assert_eq!(
        page,
        json!({"path": "notes.txt", "content": "line 4\nline 5\nline 6", "total_lines": 10, "next_line": 7})
    );
    let missing = f
        .try_call("repo_read", json!({"path": "nope.txt"}))
        .await
        .unwrap_err();
    assert_eq!(missing.to_string(), "not found: file `nope.txt`");

    f.call("sop_prd_create", json!({"feature": "a", "brief": {"title": "A", "requirements": [{"title": "One"}, {"title": "Two"}]}})).await;
    let tasks = f.call("sop_tasks_generate", json!({"feature": "a"})).await;
    let one = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    let two = tasks["created"][1]["alias"].as_str().unwrap().to_owned();
    let updated = f
        .call(
            "sop_task_update",
            json!({"task": two, "dependencies": [one], "priority": "high"}),
        )
        .await;
    assert_eq!(updated["changed"], json!(["priority", "dependencies"]));
    let itself = f
        .try_call(
            "sop_task_update",
            json!({"task": one, "dependencies": [one]}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        itself.to_string(),
        "invalid arguments at `dependencies`: a task cannot depend on itself"
    );
    let nothing = f
        .try_call("sop_task_update", json!({"task": one}))
        .await
        .unwrap_err();
    assert_eq!(
        nothing.to_string(),
        "invalid arguments at `task`: nothing to change: give at least one field"
    );
    let bad_slug = f
        .try_call(
            "sop_prd_create",
            json!({"feature": "Not A Slug", "text": "x"}),
        )
        .await
        .unwrap_err();
    assert!(
        bad_slug
            .to_string()
            .starts_with("invalid arguments at `feature`: `Not A Slug` is not a slug"),
        "{bad_slug}"
    );
}
