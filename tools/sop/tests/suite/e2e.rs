//! The SOP end to end on a real git repository: brief → PRD → tasks → spec → plan → claim →
//! worktree → write + exec → diff → done, with every gate on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::{Fixture, rule};
use pretty_assertions::assert_eq;
use serde_json::json;

fn brief() -> serde_json::Value {
    json!({
        "title": "Rate limiting",
        "problem": "One client can exhaust the API for everyone.",
        "goals": ["Fair share per API key"],
        "requirements": [
            {"title": "Token bucket per API key", "description": "Check the key's secret before counting.", "priority": "high"},
            {"title": "Document the limits", "depends_on": [1], "priority": "low"}
        ]
    })
}

#[tokio::test]
async fn a_brief_becomes_a_done_task_with_its_diff_and_a_trail() {
    let f = Fixture::new();
    let prd = f
        .call(
            "sop_prd_create",
            json!({"feature": "rate-limit", "brief": brief()}),
        )
        .await;
    assert_eq!(prd["phase"], "prd");
    assert_eq!(prd["requirements"], 2);
    let tasks = f
        .call("sop_tasks_generate", json!({"feature": "rate-limit"}))
        .await;
    let created = tasks["created"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    // "secret" flags the first as a security task; the second waits for it.
    assert_eq!(created[0]["spec_required"], true);
    assert_eq!(created[1]["spec_required"], false);
    assert_eq!(created[1]["dependencies_open"], 1);
    let security = created[0]["alias"].as_str().unwrap().to_owned();
    let docs = created[1]["alias"].as_str().unwrap().to_owned();
    let task = f.call("sop_task_get", json!({"task": security})).await;
    assert_eq!(task["task"]["spec_triggers"], json!(["security"]));

    // No plan while the security task has no spec.
    let refused = f
        .try_call("sop_plan_create", json!({"feature": "rate-limit"}))
        .await
        .unwrap_err();
    assert_eq!(rule(&refused), "sop.gate.spec_missing");
    let spec = f
        .call(
            "sop_spec_create",
            json!({"task": security, "summary": "A token bucket per key.", "files": ["src/limit.rs"],
                   "risks": ["Keys must never be logged"], "test_plan": ["Burst of 100 requests"]}),
        )
        .await;
    let spec_path = spec["spec"].as_str().unwrap().to_owned();
    assert!(f.read(&spec_path).starts_with("+++\n"));
    let plan = f
        .call("sop_plan_create", json!({"feature": "rate-limit"}))
        .await;
    assert_eq!(plan["order"], json!([security, docs]));
    assert_eq!(plan["phase"], "plan");

    // Claim, worktree, work, diff, done.
    let claim = f
        .call(
            "sop_task_claim",
            json!({"task": security, "agent": "builder-1"}),
        )
        .await;
    let run_id = claim["run_id"].as_str().unwrap().to_owned();
    let blocked = f
        .try_call(
            "sop_task_claim",
            json!({"task": docs, "agent": "builder-2"}),
        )
        .await
        .unwrap_err();
    assert_eq!(rule(&blocked), "sop.gate.dependencies_open");
    let worktree = f
        .call(
            "repo_worktree",
            json!({"action": "create", "task": security, "agent": "builder-1"}),
        )
        .await;
    let wt = worktree["path"].as_str().unwrap().to_owned();
    assert_eq!(
        worktree["branch"],
        format!("task/{}", security.to_lowercase())
    );
    f.call(
        "sop_advance",
        json!({"task": security, "to": "in_progress", "agent": "builder-1"}),
    )
    .await;
    let written = f
        .call(
            "repo_write",
            json!({"repo": wt, "path": "src/limit.rs", "content": "pub const BURST: u32 = 100;\n"}),
        )
        .await;
    assert_eq!(written["created"], true);
    let exec = f
        .call(
            "repo_exec",
            json!({"repo": wt, "argv": ["git", "status", "--porcelain"]}),
        )
        .await;
    assert_eq!(exec["exit_code"], 0);
    assert_eq!(exec["stdout"], "?? src/limit.rs\n");
    // The main checkout is untouched: the work lives in the worktree.
    assert!(!f.root().join("src/limit.rs").exists());

    let phantom = f
        .try_call(
            "sop_advance",
            json!({"task": security, "to": "done", "agent": "builder-1"}),
        )
        .await
        .unwrap_err();
    assert_eq!(rule(&phantom), "sop.gate.no_diff");
    let diff = f.call("repo_diff", json!({"task": security})).await;
    assert_eq!(diff["run_id"], run_id);
    assert_eq!(
        diff["files"],
        json!([{"path": "src/limit.rs", "added": 1, "removed": 0}])
    );
    let done = f
        .call(
            "sop_advance",
            json!({"task": security, "to": "done", "agent": "builder-1"}),
        )
        .await;
    assert_eq!(
        done,
        json!({"subject": security, "from": "in_progress", "to": "done"})
    );

    // The run record holds the diff, its metadata and the gate verdicts.
    let patch = f.read(&format!(".runs/{run_id}/diff.patch"));
    assert!(
        patch.contains("+++ b/src/limit.rs") && patch.contains("+pub const BURST: u32 = 100;"),
        "{patch}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&f.read(&format!(".runs/{run_id}/meta.json"))).unwrap();
    assert_eq!(meta["agent"], "builder-1");
    assert_eq!(meta["worktree"], format!(".worktrees/{security}"));
    assert!(
        meta["tool_versions"]["git"]
            .as_str()
            .unwrap()
            .starts_with("git version")
    );
    let verdicts: Vec<serde_json::Value> = f
        .read(&format!(".runs/{run_id}/verdicts.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary: Vec<(&str, &str)> = verdicts
        .iter()
        .map(|v| (v["to"].as_str().unwrap(), v["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("in_progress", "passed"),
            ("done", "refused"),
            ("done", "passed")
        ]
    );
    assert_eq!(verdicts[1]["gate"], "no_diff");

    // One dated section per step, in each mirror.
    assert_eq!(f.sections("docs/PRD.md"), ["rate-limit · PRD written"]);
    assert_eq!(
        f.sections("docs/TECH_SPEC.md"),
        [
            "rate-limit · tasks generated".to_owned(),
            format!("rate-limit · spec for {security}")
        ]
    );
    assert_eq!(
        f.sections("docs/ACTION_PLAN.md"),
        [
            "rate-limit · plan written".to_owned(),
            format!("rate-limit · {security} claimed"),
            format!("rate-limit · worktree for {security} created"),
            format!("rate-limit · {security}: pending → in_progress"),
            format!("rate-limit · diff for {security}"),
            format!("rate-limit · {security}: in_progress → done"),
        ]
    );
    for mirror in ["docs/PRD.md", "docs/TECH_SPEC.md", "docs/ACTION_PLAN.md"] {
        assert!(
            f.read(mirror).contains("Source: [tasks/"),
            "{mirror} links back to tasks/"
        );
    }

    // The feature cannot be done while the docs task is open.
    let open = f
        .try_call(
            "sop_advance",
            json!({"feature": "rate-limit", "to": "done"}),
        )
        .await
        .unwrap_err();
    assert_eq!(rule(&open), "sop.gate.tasks_open");
    let status = f.call("sop_status", json!({})).await;
    assert_eq!(status["features"][0]["phase"], "impl");
    assert_eq!(
        status["features"][0]["tasks"],
        json!({"done": 1, "pending": 1})
    );
}

#[tokio::test]
async fn a_task_cannot_be_done_without_a_recorded_change() {
    let f = Fixture::new();
    f.call("sop_prd_create", json!({"feature": "docs", "brief": {"title": "Docs", "requirements": [{"title": "Write a guide"}]}})).await;
    let tasks = f
        .call("sop_tasks_generate", json!({"feature": "docs"}))
        .await;
    let alias = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    f.call("sop_plan_create", json!({"feature": "docs"})).await;
    f.call("sop_task_claim", json!({"task": alias, "agent": "a"}))
        .await;
    f.call(
        "sop_advance",
        json!({"task": alias, "to": "in_progress", "agent": "a"}),
    )
    .await;
    // A diff of nothing is recorded, but it is empty: still no completion.
    let diff = f.call("repo_diff", json!({"task": alias})).await;
    assert_eq!(
        diff["bytes"],
        0,
        "{}",
        f.read(diff["patch"].as_str().unwrap())
    );
    for to in ["review", "done"] {
        let refused = f
            .try_call(
                "sop_advance",
                json!({"task": alias, "to": to, "agent": "a"}),
            )
            .await
            .unwrap_err();
        assert_eq!(rule(&refused), "sop.gate.no_diff", "to {to}");
    }
    // Nor through sop_task_update.
    let refused = f
        .try_call(
            "sop_task_update",
            json!({"task": alias, "status": "done", "agent": "a"}),
        )
        .await
        .unwrap_err();
    assert_eq!(rule(&refused), "sop.gate.no_diff");
    // Another agent cannot move it at all.
    let refused = f
        .try_call(
            "sop_advance",
            json!({"task": alias, "to": "review", "agent": "b"}),
        )
        .await
        .unwrap_err();
    assert_eq!(rule(&refused), "sop.gate.unclaimed");
}

#[tokio::test]
async fn free_text_gives_a_skeleton_with_clarification_markers() {
    let f = Fixture::new();
    let prd = f
        .call("sop_prd_create", json!({"feature": "search", "text": "Search for the admin UI\n\nUsers cannot find orders."}))
        .await;
    assert_eq!(prd["requirements"], 0);
    assert_eq!(prd["clarifications"], 6);
    let text = f.read("tasks/prd-search.md");
    assert!(
        text.starts_with("# PRD: Search for the admin UI\n"),
        "{text}"
    );
    assert!(text.contains("NEEDS CLARIFICATION: what must be built?"));
    let refused = f
        .try_call("sop_tasks_generate", json!({"feature": "search"}))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("lists no requirements"),
        "{refused}"
    );
    let check = f.call("sop_scaffold_check", json!({})).await;
    let clarifications = check["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "clarifications")
        .unwrap();
    assert_eq!(
        clarifications["detail"],
        "NEEDS CLARIFICATION markers left in tasks/prd-search.md (6)"
    );
    assert_eq!(check["ready"], true);
}

#[tokio::test]
async fn status_and_next_stay_small_and_skip_live_claims() {
    let f = Fixture::new();
    let requirements: Vec<serde_json::Value> =
        (1..=25).map(|n| json!({"title": format!("Page {n}"), "priority": if n == 7 { "high" } else { "medium" }})).collect();
    f.call(
        "sop_prd_create",
        json!({"feature": "pages", "brief": {"title": "Pages", "requirements": requirements}}),
    )
    .await;
    f.call("sop_tasks_generate", json!({"feature": "pages"}))
        .await;
    let first = f.call("sop_status", json!({})).await;
    assert_eq!(first["tasks"].as_array().unwrap().len(), 20);
    assert_eq!(first["total"], 25);
    assert_eq!(first["next_cursor"], "20");
    let second = f.call("sop_status", json!({"cursor": "20"})).await;
    assert_eq!(second["tasks"].as_array().unwrap().len(), 5);
    assert!(second.get("next_cursor").is_none());
    let bad = f
        .try_call("sop_status", json!({"cursor": "x"}))
        .await
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "invalid arguments at `cursor`: `x` is not a cursor this tool gave"
    );

    f.call("sop_plan_create", json!({"feature": "pages"})).await;
    let next = f.call("sop_task_next", json!({"agent": "a"})).await;
    assert_eq!(next["task"]["title"], "Page 7");
    let alias = next["task"]["alias"].as_str().unwrap().to_owned();
    f.call("sop_task_claim", json!({"task": alias, "agent": "a"}))
        .await;
    let for_b = f.call("sop_task_next", json!({"agent": "b"})).await;
    assert_eq!(for_b["task"]["title"], "Page 1");
    assert_eq!(for_b["claimed"], 1);
    let for_a = f.call("sop_task_next", json!({"agent": "a"})).await;
    assert_eq!(for_a["task"]["title"], "Page 7");
    let taken = f
        .try_call("sop_task_claim", json!({"task": alias, "agent": "b"}))
        .await
        .unwrap_err();
    assert_eq!(rule(&taken), "sop.claim");
    assert!(
        taken.to_string().contains("is claimed by `a` until"),
        "{taken}"
    );
}

/// What a model or a person reads: the PRD and the rendered task list (ids, aliases and dates
/// masked).
#[tokio::test]
async fn rendered_documents() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "rate-limit", "brief": brief()}),
    )
    .await;
    let tasks = f
        .call("sop_tasks_generate", json!({"feature": "rate-limit"}))
        .await;
    let mut text = format!(
        "{}\n=====\n{}",
        f.read("tasks/prd-rate-limit.md"),
        f.read("tasks/tasks-rate-limit.md")
    );
    for (n, task) in tasks["created"].as_array().unwrap().iter().enumerate() {
        text = text.replace(task["alias"].as_str().unwrap(), &format!("T-{}", n + 1));
    }
    let today = baton_sop::today().to_string();
    insta::assert_snapshot!(text.replace(&today, "YYYY-MM-DD"));
}

#[tokio::test]
async fn a_feature_that_requires_tests_needs_a_passing_report_to_finish_a_task() {
    let f = Fixture::new();
    f.call(
        "sop_prd_create",
        json!({"feature": "t", "require_tests": true, "brief": {"title": "T", "requirements": [{"title": "Add a file"}]}}),
    )
    .await;
    let tasks = f.call("sop_tasks_generate", json!({"feature": "t"})).await;
    let alias = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    f.call("sop_plan_create", json!({"feature": "t"})).await;
    f.call("sop_task_claim", json!({"task": alias, "agent": "a"}))
        .await;
    f.call(
        "sop_advance",
        json!({"task": alias, "to": "in_progress", "agent": "a"}),
    )
    .await;
    f.call("repo_write", json!({"path": "added.txt", "content": "x\n"}))
        .await;
    f.call("repo_diff", json!({"task": alias})).await;
    let done = json!({"task": alias, "to": "done", "agent": "a"});
    let missing = f.try_call("sop_advance", done.clone()).await.unwrap_err();
    assert_eq!(rule(&missing), "sop.gate.tests_missing");
    let failing =
        json!({"passed": false, "command": "make test", "summary": "1 of 3 failed: test_added"});
    let updated = f
        .call(
            "sop_task_update",
            json!({"task": alias, "test_report": failing}),
        )
        .await;
    assert_eq!(updated["changed"], json!(["test_report"]));
    let refused = f.try_call("sop_advance", done.clone()).await.unwrap_err();
    assert_eq!(rule(&refused), "sop.gate.tests_failing");
    assert!(
        refused
            .to_string()
            .contains("(make test) failed: 1 of 3 failed: test_added"),
        "{refused}"
    );
    let passing = json!({"passed": true, "command": "make test", "summary": "3 passed"});
    f.call(
        "sop_task_update",
        json!({"task": alias, "test_report": passing}),
    )
    .await;
    let finished = f.call("sop_advance", done).await;
    assert_eq!(finished["to"], "done");
    let run = updated["task"]["runs"][0].as_str().unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&f.read(&format!(".runs/{run}/test-report.json"))).unwrap();
    assert_eq!(report["passed"], true);
}
