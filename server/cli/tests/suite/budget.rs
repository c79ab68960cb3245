//! Token and cost budgets: `baton run` against a real Chat Completions server on the loopback
//! that keeps asking for tools. The run stops `over_budget` at a turn boundary, the stop is in
//! the audit log and the usage in the run's record; resumed with a larger budget, it replays
//! what it did (no call repeated) and completes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;

use baton_test_support::{ChatServer, chat_answer, chat_tool_call};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::Home;

/// 500 prompt and 100 completion tokens a turn.
const TURN: (u64, u64) = (500, 100);

/// A model that reads NOTE.md again and again, and answers once it has read it 5 times.
async fn looping_model() -> ChatServer {
    ChatServer::start(|request: &Value| {
        let reads = request["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .count();
        let reply = if reads >= 5 {
            chat_answer("NOTE.md says hi.", TURN)
        } else {
            chat_tool_call(
                &format!("read_{}", reads + 1),
                "repo_read",
                &json!({"path": "NOTE.md"}),
                TURN,
            )
        };
        (200, reply)
    })
    .await
}

fn home(extra: &str) -> Home {
    let home = Home::new(extra);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("NOTE.md"), "hi").unwrap();
    let agents = home.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(
        agents.join("reader.toml"),
        "name = \"reader\"\ninstructions = \"Read NOTE.md with repo_read.\"\ntools = [\"repo_read\"]\n",
    )
    .unwrap();
    home
}

async fn baton(home: &Home, base_url: &str, args: &[&str]) -> (i32, Value, String) {
    let output = home
        .baton(args)
        .env("OPENAI_BASE_URL", base_url)
        .env("OPENAI_API_KEY", "test-key")
        .env("OPENAI_MODEL", "gpt-test")
        .env("BATON_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    let stdout = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.code().unwrap(),
        stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_run_stops_over_budget_and_resumes_with_a_larger_one() {
    let home = home("");
    let model = looping_model().await;
    let (code, done, stderr) = read_note(&home, &model.base_url, &["--budget", "2000"]).await;
    assert_eq!(code, 4, "{stderr}");
    let run_id = done["run_id"].as_str().unwrap().to_owned();
    assert!(
        stderr.contains(&format!(
            "run {run_id} stopped over budget (2400 tokens used of a budget of 2000); go on with `baton run resume {run_id} --budget TOKENS`"
        )),
        "{stderr}"
    );
    assert_eq!(done["state"], "over_budget");
    assert_eq!(
        done["budget"],
        json!({"agent": "reader", "reason": "2400 tokens used of a budget of 2000", "spent": {
            "turns": 4, "input_tokens": 2000, "output_tokens": 400, "total_tokens": 2400, "cost": null,
            "agents": {"reader": {"turns": 4, "input_tokens": 2000, "output_tokens": 400, "total_tokens": 2400, "cost": null}}}})
    );
    assert_eq!(done["usage"]["total"], 2400);
    assert_eq!(
        done["usage"]["agents"],
        json!({"reader": {"turns": 4, "input": 2000, "output": 400}})
    );
    assert_eq!(model.requests().len(), 4, "no fifth model call");

    // The run's record and the audit log say so.
    let (code, shown, _) =
        baton(&home, &model.base_url, &["runs", "show", &run_id, "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(shown["run"]["state"], "over_budget");
    assert_eq!(shown["usage"]["total"], 2400);
    let records = audit_records(&home).await;
    let stop: Vec<&Value> = records.iter().filter(|r| r["tool"] == "model").collect();
    assert_eq!(stop.len(), 1, "{records:?}");
    assert_eq!(stop[0]["principal"], "agent:reader");
    assert_eq!(stop[0]["decision"]["rule"], "budget");
    assert_eq!(stop[0]["outcome"]["status"], "denied");
    assert_eq!(stop[0]["outcome"]["error_kind"], "over_budget");
    assert_eq!(
        stop[0]["outcome"]["message"],
        format!("run {run_id} stopped over budget: 2400 tokens used of a budget of 2000")
    );

    // Resumed with a larger budget: four turns replayed, two asked, nothing read twice.
    let (code, done, stderr) = baton(
        &home,
        &model.base_url,
        &["run", "resume", &run_id, "--budget", "10000"],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done["state"], "done");
    assert_eq!(done["output"], "NOTE.md says hi.");
    assert_eq!(done["usage"]["total"], 3600);
    assert_eq!(model.requests().len(), 6);
    let reads = audit_records(&home)
        .await
        .into_iter()
        .filter(|r| r["tool"] == "repo_read")
        .count();
    assert_eq!(reads, 5, "each read made once");
}

/// Every audit record, as `baton audit export` prints them (one JSON object a line).
async fn audit_records(home: &Home) -> Vec<Value> {
    let output = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `baton run` of the `reader` in `home`, with `extra` arguments.
async fn read_note(home: &Home, base_url: &str, extra: &[&str]) -> (i32, Value, String) {
    let agents = home.path().join("agents");
    let repo = home.path().join("repo");
    let mut args = vec![
        "run",
        "read the note",
        "--agent",
        "reader",
        "--agents",
        agents.to_str().unwrap(),
        "--provider",
        "openai",
        "--repo",
        repo.to_str().unwrap(),
    ];
    args.extend(extra);
    baton(home, base_url, &args).await
}

#[tokio::test]
async fn a_cost_budget_counts_at_the_configured_prices_and_refuses_what_it_cannot_price() {
    let priced = "[model]\nmax_cost_per_run = 0.004\n[model.prices.\"gpt-test\"]\ninput_per_mtok = 2.0\noutput_per_mtok = 8.0\n";
    let home = home(priced);
    let model = looping_model().await;
    // 500 × 2/M + 100 × 8/M = 0.0018 a turn: the third turn crosses 0.004.
    let (code, done, stderr) = read_note(&home, &model.base_url, &[]).await;
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(
        done["budget"]["reason"],
        "0.005400 spent of a budget of 0.004"
    );
    assert_eq!(done["usage"]["total"], 1800);
    assert!((done["usage"]["cost"].as_f64().unwrap() - 0.0054).abs() < 1e-9);

    // Bad budgets are refused before any run is made, naming what is wrong.
    for (config, extra, error) in [
        (
            priced,
            &["--budget", "0"][..],
            "a token budget of 0 allows no model call",
        ),
        (
            "[model]\nmax_cost_per_run = 1.0\n",
            &[][..],
            "[model] max_cost_per_run is set, but model `gpt-test` has no price: add [model.prices.\"gpt-test\"]",
        ),
        (
            "[model]\n[model.prices.\"gpt-test\"]\ninput_per_mtok = -1.0\noutput_per_mtok = 1.0\n",
            &[][..],
            "[model.prices.\"gpt-test\"]: prices must be finite and not negative",
        ),
    ] {
        let refused = self::home(config);
        let (code, _, stderr) = read_note(&refused, &model.base_url, extra).await;
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(error), "{stderr}");
        let runs = refused
            .baton(&["runs", "list", "--json"])
            .output()
            .await
            .unwrap();
        let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
        assert_eq!(runs, json!([]), "no run made");
    }
    assert_eq!(model.requests().len(), 3, "no model call for a refused run");
}

#[tokio::test]
async fn over_the_responses_api_a_run_keeps_its_budget_too() {
    // The scripted Responses server reports 10 + 5 tokens a response.
    let model = baton_test_support::ResponsesServer::start(|_| {
        vec![
            json!({"type": "function_call", "call_id": "read", "name": "repo_read",
            "arguments": json!({"path": "NOTE.md"}).to_string()}),
        ]
    })
    .await;
    let home = home("[model]\napi = \"responses\"\n");
    let (code, done, stderr) = read_note(&home, &model.base_url, &["--budget", "40"]).await;
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(done["budget"]["reason"], "45 tokens used of a budget of 40");
    assert_eq!(model.requests().len(), 3);
    assert_eq!(model.requests()[0]["input"][0]["role"], "user");
}
