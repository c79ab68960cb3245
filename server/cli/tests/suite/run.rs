//! `baton run` with the replay provider and the real gate: an elevated tool call pauses the
//! run, a reviewer decides from another process, and the run goes on by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::common::{Home, git};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

pub(super) fn call(id: &str, name: &str, args: Value) -> Value {
    json!({"message": {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
        "function": {"name": name, "arguments": args.to_string()}}]}, "finish_reason": "tool_calls"})
}

pub(super) fn answer(text: &str) -> Value {
    json!({"message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
}

/// A home with `repo/`, a policy (`approval`, writes inside `repo/`) and one agent
/// definition in `agents/`; returns the home, the repo and the agents folder.
fn home_with_agent(
    extra: &str,
    approval: &str,
    agent: &str,
    definition: &str,
) -> (Home, PathBuf, PathBuf) {
    let home = Home::new(extra);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        format!("sandbox = \"workspace-write\"\napproval = \"{approval}\"\nwritable_roots = [\"repo\"]\n"),
    )
    .unwrap();
    let agents = home.path().join("agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join(format!("{agent}.toml")), definition).unwrap();
    (home, repo, agents)
}

/// A home whose policy asks a reviewer before any write, one `writer` agent, and a cassette
/// for two runs: one approved, one rejected (`extra` goes into `baton.toml`).
fn setup() -> (Home, PathBuf, PathBuf, PathBuf) {
    setup_with("")
}

pub(super) fn setup_with(extra: &str) -> (Home, PathBuf, PathBuf, PathBuf) {
    let (home, repo, agents) = home_with_agent(
        extra,
        "untrusted",
        "writer",
        "name = \"writer\"\ninstructions = \"Write NOTE.md with repo_write.\"\ntools = [\"repo_write\"]\n",
    );
    let write = call(
        "w1",
        "repo_write",
        json!({"path": "NOTE.md", "content": "hi"}),
    );
    let cassette = home.path().join("writer.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]}, "response": write},
        {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]}, "response": write},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "w1",
            "content": "{\"bytes\":2,\"created\":true,\"path\":\"NOTE.md\"}"}]},
         "response": answer("NOTE.md written.")},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "w1",
            "content": "error: a reviewer rejected this call: not in this repository"}]},
         "response": answer("A reviewer said no: not in this repository. Nothing written.")}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    (home, repo, agents, cassette)
}

pub(super) fn run_command(
    home: &Home,
    repo: &Path,
    agents: &Path,
    cassette: &Path,
) -> tokio::process::Command {
    let mut command = home.baton(&[
        "run",
        "write the note",
        "--agent",
        "writer",
        "--agents",
        agents.to_str().unwrap(),
        "--cassette",
        cassette.to_str().unwrap(),
    ]);
    command
        .current_dir(repo)
        .env("BATON_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Wait until one approval is pending; its id.
pub(super) async fn pending(home: &Home) -> Value {
    // Up to a minute: a run may first start another server (Codex) on a busy machine.
    for _ in 0..1200 {
        let output = home
            .baton(&["approvals", "list", "--json"])
            .output()
            .await
            .unwrap();
        if output.status.success() {
            let list: Value = serde_json::from_slice(&output.stdout).unwrap();
            if let Some(first) = list["approvals"].as_array().and_then(|a| a.first()) {
                return first.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no approval appeared");
}

#[tokio::test]
async fn a_run_waits_for_a_reviewer_and_goes_on_when_approved_or_rejected() {
    let (home, repo, agents, cassette) = setup();

    // Approved.
    let child = run_command(&home, &repo, &agents, &cassette)
        .spawn()
        .unwrap();
    let approval = pending(&home).await;
    let id = approval["id"].as_str().unwrap().to_owned();
    assert_eq!(approval["requester"], "agent:writer");
    assert_eq!(approval["tool"], "repo_write");
    assert!(
        !repo.join("NOTE.md").exists(),
        "nothing is written before the approval"
    );

    // The agent principal cannot be claimed from the shell: the CLI acts as the OS user, and
    // a config naming another CLI principal is refused, naming the key.
    std::fs::write(
        home.path().join("as-agent.toml"),
        "[knowledge]\nroot = \"knowledge\"\n[cli]\nprincipal = \"agent:writer\"\nroles = [\"reviewer\"]\n",
    )
    .unwrap();
    let own = home
        .baton(&["approvals", "approve", &id])
        .env("BATON_CONFIG", home.path().join("as-agent.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(own.status.code(), Some(2));
    let message = String::from_utf8_lossy(&own.stderr);
    assert!(
        message.contains("cli.principal: is not configurable"),
        "{message}"
    );

    let approve = home
        .baton(&["approvals", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(
        approve.status.success(),
        "{}",
        String::from_utf8_lossy(&approve.stderr)
    );
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let progress = String::from_utf8_lossy(&done.stderr).to_string();
    assert!(done.status.success(), "{progress}");
    let out: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(out["output"], "NOTE.md written.");
    assert_eq!(std::fs::read_to_string(repo.join("NOTE.md")).unwrap(), "hi");
    assert!(
        progress.contains(&format!("[writer] repo_write waits for approval {id}")),
        "{progress}"
    );
    assert!(
        progress.contains(&format!("approval {id} decided; resuming")),
        "{progress}"
    );
    std::fs::remove_file(repo.join("NOTE.md")).unwrap();

    // Rejected: the agent gets the reviewer's reason and nothing is written.
    let child = run_command(&home, &repo, &agents, &cassette)
        .spawn()
        .unwrap();
    let id = loop {
        let approval = pending(&home).await;
        if approval["state"] == "pending" {
            break approval["id"].as_str().unwrap().to_owned();
        }
    };
    let reject = home
        .baton(&[
            "approvals",
            "reject",
            &id,
            "--reason",
            "not in this repository",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        reject.status.success(),
        "{}",
        String::from_utf8_lossy(&reject.stderr)
    );
    let done = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    // The rejected write is a refused call: the run says so and exits non-zero.
    assert_eq!(
        done.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let out: Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(
        out["output"],
        "A reviewer said no: not in this repository. Nothing written."
    );
    assert_eq!(out["state"], "done_with_denials");
    assert!(!repo.join("NOTE.md").exists());

    // The journal and the audit log hold every step.
    let runs = home
        .baton(&["runs", "list", "--json"])
        .output()
        .await
        .unwrap();
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 2);
    let states: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    // Newest first: the rejected run, then the approved one.
    assert_eq!(states, ["done_with_denials", "done"], "{runs:#}");
    let verify = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn a_run_killed_mid_way_resumes_without_repeating_a_side_effect() {
    // Its builder runs the tests with `repo_exec` under workspace-write: confined, or refused.
    if !baton_test_support::bubblewrap(
        "a_run_killed_mid_way_resumes_without_repeating_a_side_effect",
    ) {
        return;
    }
    let (home, repo, agents) = home_with_agent(
        "",
        "never",
        "logger",
        "name = \"logger\"\ninstructions = \"Append to log.txt with repo_exec, then report.\"\ntools = [\"repo_exec\"]\n",
    );
    let append = call(
        "e1",
        "repo_exec",
        json!({"argv": ["sh -c 'echo once >> log.txt'"], "shell": true}),
    );
    let cassette = home.path().join("logger.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: log once*"}]}, "response": append},
        // The second model call is slow: the run is killed while it waits.
        {"request": {"messages": [{"role": "tool", "tool_call_id": "e1"}]},
         "response": answer("Logged."), "delay_ms": 60000}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    let fast = home.path().join("logger-fast.json");
    let mut quick = body.clone();
    quick["interactions"][1]["delay_ms"] = json!(0);
    std::fs::write(&fast, serde_json::to_vec_pretty(&quick).unwrap()).unwrap();

    let mut command = home.baton(&[
        "run",
        "log once",
        "--agent",
        "logger",
        "--agents",
        agents.to_str().unwrap(),
        "--cassette",
        cassette.to_str().unwrap(),
    ]);
    command
        .current_dir(&repo)
        .env("BATON_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = command.spawn().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut run_id = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut line),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(n > 0, "the run ended before the tool ran");
        if let Some(rest) = line.strip_prefix("run ") {
            run_id = rest.split_whitespace().next().unwrap().to_owned();
        }
        if line.contains("← repo_exec ok") {
            break;
        }
    }
    // kill -9 while the model "thinks".
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(repo.join("log.txt")).unwrap(),
        "once\n"
    );

    // Resume (with the cassette's delay gone): the command already ran, it is not run again.
    let runs = home
        .baton(&["runs", "show", &run_id, "--json"])
        .output()
        .await
        .unwrap();
    let shown: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(shown["run"]["state"], "running", "{shown:#}");
    std::fs::copy(&fast, &cassette).unwrap();
    let resumed = home
        .baton(&["run", "resume", &run_id])
        .current_dir(&repo)
        .output()
        .await
        .unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let out: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(out["output"], "Logged.");
    let progress = String::from_utf8_lossy(&resumed.stderr);
    assert!(progress.contains("← repo_exec ok (replayed)"), "{progress}");
    assert_eq!(
        std::fs::read_to_string(repo.join("log.txt")).unwrap(),
        "once\n",
        "the side effect happened once"
    );

    // The audit log has exactly one repo_exec call and verifies.
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let calls = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter(|l| l.contains("\"tool\":\"repo_exec\""))
        .count();
    assert_eq!(calls, 1);
    let verify = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

/// The fixture repository: a README and a check the tester runs (and a policy writing in
/// it without approvals).
pub(super) fn fixture_repo(home: &Home) -> PathBuf {
    let repo = home.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(
        repo.join("README.md"),
        "# gateway\n\nTests: `sh check.sh`.\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("check.sh"),
        "grep -qx 'burst = 100' src/limit.txt\n",
    )
    .unwrap();
    std::fs::write(repo.join("src/main.txt"), "gateway\n").unwrap();
    std::fs::write(repo.join(".gitignore"), ".runs/\n").unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    repo
}

/// Run the built-in roles on `cassette` (from `fixtures/cassettes/`); the audit records as
/// `(principal, tool)`.
async fn run_roles(home: &Home, repo: &Path, cassette: &str) -> (Value, Vec<(String, String)>) {
    let cassette = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/cassettes")
        .join(cassette);
    let (out, _) = baton_in(
        home,
        repo,
        &[
            "run",
            "add a rate limit",
            "--cassette",
            cassette.to_str().unwrap(),
        ],
    )
    .await;
    let records = audit_records(home).await;
    let verify = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    (out, records)
}

/// `baton ARGS` in `repo`, which must succeed: its stdout as JSON and its progress (stderr).
async fn baton_in(home: &Home, repo: &Path, args: &[&str]) -> (Value, String) {
    let output = home
        .baton(args)
        .current_dir(repo)
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    let progress = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{progress}");
    (serde_json::from_slice(&output.stdout).unwrap(), progress)
}

/// Every audit record as `(principal, tool)`.
async fn audit_records(home: &Home) -> Vec<(String, String)> {
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| {
            (
                r["principal"].as_str().unwrap().to_owned(),
                r["tool"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn count(records: &[(String, String)], principal: &str, tool: &str) -> usize {
    records
        .iter()
        .filter(|(p, t)| p == principal && t == tool)
        .count()
}

fn task_of(repo: &Path) -> Value {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("tasks/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["tasks"].as_array().unwrap().len(), 1);
    index["tasks"][0].clone()
}

#[tokio::test]
async fn the_four_roles_take_a_goal_to_a_done_task() {
    // The same scenario recorded in each API's wire format: Chat Completions and Responses.
    for cassette in ["sop-feature.json", "responses/sop-feature.json"] {
        four_roles_done(cassette).await;
    }
}

async fn four_roles_done(cassette: &str) {
    let home = Home::new("");
    let repo = fixture_repo(&home);
    let (out, records) = run_roles(&home, &repo, cassette).await;
    let task = task_of(&repo);
    let alias = task["alias"].as_str().unwrap();
    assert_eq!(
        out["output"],
        format!(
            "Done: {alias} (burst limit of 100) passed its check, was approved by the reviewer and is done."
        )
    );
    assert_eq!(task["status"], "done");
    let worktree = repo.join(".worktrees").join(alias);
    assert_eq!(
        std::fs::read_to_string(worktree.join("src/limit.txt")).unwrap(),
        "burst = 100\n"
    );
    assert!(
        !repo.join("src/limit.txt").exists(),
        "the builder worked in its worktree only"
    );
    let run = task["runs"][0].as_str().unwrap();
    let patch = std::fs::read_to_string(repo.join(".runs").join(run).join("diff.patch")).unwrap();
    assert!(patch.contains("+burst = 100"), "{patch}");

    // Every step is in the audit log, under the agent that took it.
    let expected = [
        ("agent:manager", "sop_prd_create", 1),
        ("agent:manager", "sop_tasks_generate", 1),
        ("agent:manager", "sop_plan_create", 1),
        ("agent:manager", "sop_task_next", 2),
        ("agent:builder", "sop_task_claim", 1),
        ("agent:builder", "repo_worktree", 1),
        ("agent:builder", "sop_advance", 2),
        ("agent:builder", "repo_write", 1),
        ("agent:builder", "repo_diff", 1),
        ("agent:tester", "sop_task_get", 1),
        ("agent:tester", "repo_exec", 1),
        ("agent:tester", "sop_task_update", 1),
        ("agent:reviewer", "sop_task_get", 1),
        ("agent:manager", "sop_advance", 1),
    ];
    for (principal, tool, n) in expected {
        assert_eq!(
            count(&records, principal, tool),
            n,
            "{principal} {tool}: {records:?}"
        );
    }
    assert_eq!(records.len(), expected.iter().map(|e| e.2).sum::<usize>());
}

#[tokio::test]
async fn a_failing_test_sends_the_task_back_to_the_builder() {
    for cassette in ["sop-feature-retry.json", "responses/sop-feature-retry.json"] {
        builder_again(cassette).await;
    }
}

async fn builder_again(cassette: &str) {
    let home = Home::new("");
    let repo = fixture_repo(&home);
    let (out, records) = run_roles(&home, &repo, cassette).await;
    let task = task_of(&repo);
    assert_eq!(task["status"], "done");
    assert!(out["output"].as_str().unwrap().starts_with("Done: "));
    let alias = task["alias"].as_str().unwrap();
    let worktree = repo.join(".worktrees").join(alias);
    assert_eq!(
        std::fs::read_to_string(worktree.join("src/limit.txt")).unwrap(),
        "burst = 100\n"
    );
    assert_eq!(
        count(&records, "agent:builder", "repo_write"),
        2,
        "the builder wrote twice"
    );
    assert_eq!(count(&records, "agent:builder", "repo_diff"), 2);
    assert_eq!(
        count(&records, "agent:tester", "repo_exec"),
        2,
        "tested twice"
    );
    assert_eq!(
        count(&records, "agent:builder", "sop_task_claim"),
        2,
        "claimed, then renewed"
    );
    let run = task["runs"][0].as_str().unwrap();
    assert_eq!(
        task["runs"].as_array().unwrap().len(),
        1,
        "a renewed claim keeps its run"
    );
    let patch = std::fs::read_to_string(repo.join(".runs").join(run).join("diff.patch")).unwrap();
    assert!(
        patch.contains("+burst = 100") && !patch.contains("+burst = 10\n"),
        "{patch}"
    );
}

#[tokio::test]
async fn ten_goals_in_parallel_each_in_its_worktree_lose_no_update() {
    let home = Home::new("");
    let repo = fixture_repo(&home);
    let goals: String = (1..=10)
        .map(|n| format!("[[goals]]\ngoal = \"goal {n} of ten\"\n\n"))
        .collect();
    std::fs::write(home.path().join("goals.toml"), goals).unwrap();
    let cassette =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cassettes/sop-feature-x10.json");
    let (summary, _) = baton_in(
        &home,
        &repo,
        &[
            "run",
            "--goals",
            home.path().join("goals.toml").to_str().unwrap(),
            "--parallel",
            "10",
            "--cassette",
            cassette.to_str().unwrap(),
        ],
    )
    .await;
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 10);
    assert!(runs.iter().all(|r| r["state"] == "done"), "{summary:#}");
    // Each goal had its own worktree and branch.
    let mut worktrees: Vec<&str> = runs
        .iter()
        .map(|r| r["worktree"].as_str().unwrap())
        .collect();
    worktrees.sort();
    worktrees.dedup();
    assert_eq!(worktrees.len(), 10);

    // One shared index: ten features, ten tasks, all done, no claim left, none lost.
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("tasks/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["features"].as_object().unwrap().len(), 10);
    let tasks = index["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 10);
    for task in tasks {
        assert_eq!(task["status"], "done", "{task:#}");
        assert!(task["claimed_by"].is_null());
        assert_eq!(task["runs"].as_array().unwrap().len(), 1);
    }
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let done = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter(|l| {
            l.contains("\"tool\":\"sop_advance\"") && l.contains("\"principal\":\"agent:manager\"")
        })
        .count();
    assert_eq!(done, 10);
    let verify = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn agents_call_tools_of_another_mcp_server_through_the_gate() {
    // The other server is a second Baton over stdio; its knowledge_search is offered to agents
    // as `inner_knowledge_search`.
    let (home, repo, agents) = home_with_agent(
        &format!(
            "[[agents.mcp]]\nname = \"inner\"\ncommand = [\"{}\", \"serve\"]\ntools = [\"knowledge_search\"]\neffect = \"read\"\n",
            env!("CARGO_BIN_EXE_baton")
        ),
        "never",
        "researcher",
        "name = \"researcher\"\ninstructions = \"Search Baton's knowledge.\"\ntools = [\"inner_knowledge_search\"]\n",
    );
    let cassette = home.path().join("researcher.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: find the approval doc*"}],
                     "tools": [{"function": {"name": "inner_knowledge_search"}}]},
         "response": call("k1", "inner_knowledge_search", json!({"query": "reviewer approval"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "k1", "content": "{\"documents\":2,*"}]},
         "response": answer("The gate doc, section {{k1:/hits/0/heading}}.")}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    let (out, progress) = baton_in(
        &home,
        &repo,
        &[
            "run",
            "find the approval doc",
            "--agent",
            "researcher",
            "--agents",
            agents.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        progress.contains("MCP server `inner`: 1 tool(s) for agents"),
        "{progress}"
    );
    // The inner Baton reads the same config, which names it as a source: it does not start
    // itself again (and again).
    assert!(
        progress.contains("its own `[[agents.mcp]]` servers are not started"),
        "{progress}"
    );
    assert_eq!(out["output"], "The gate doc, section Approvals.");
    // Both gates recorded the call: this run's (the agent) and the inner server's (stdio).
    let records = audit_records(&home).await;
    assert!(
        records.contains(&("agent:researcher".into(), "inner_knowledge_search".into())),
        "{records:?}"
    );
    assert!(
        records.contains(&("stdio".into(), "knowledge_search".into())),
        "{records:?}"
    );
}

/// A cassette: `steps` of (request content pattern, response), the request a user message
/// for the first and a tool answer to the call `id` for the rest.
fn cassette_file(home: &Home, name: &str, steps: &[(Option<&str>, &str, Value)]) -> PathBuf {
    let interactions: Vec<Value> = steps
        .iter()
        .map(|(call_id, content, response)| {
            let message = match call_id {
                None => json!({"role": "user", "content": content}),
                Some(id) => json!({"role": "tool", "tool_call_id": id, "content": content}),
            };
            json!({"request": {"messages": [message]}, "response": response})
        })
        .collect();
    let path = home.path().join(name);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({"interactions": interactions})).unwrap(),
    )
    .unwrap();
    path
}

async fn run_in(home: &Home, cwd: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let output = home
        .baton(args)
        .current_dir(cwd)
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let out = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (output.status.code(), out, stderr)
}

#[tokio::test]
async fn a_run_acts_in_its_repository_from_anywhere_and_says_what_was_refused() {
    let (home, repo, agents) = home_with_agent(
        "",
        "never",
        "writer",
        "name = \"writer\"\ninstructions = \"Write the notes.\"\ntools = [\"repo_write\"]\n",
    );
    let other = home.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\", \"other\"]\n",
    )
    .unwrap();
    let cassette = cassette_file(
        &home,
        "two.json",
        &[
            (
                None,
                "Goal: write two notes*",
                call(
                    "w1",
                    "repo_write",
                    json!({"path": "NOTE.md", "content": "in repo"}),
                ),
            ),
            (
                Some("w1"),
                "{\"bytes\":7*",
                call(
                    "w2",
                    "repo_write",
                    json!({"repo": other, "path": "ESCAPE.md", "content": "x"}),
                ),
            ),
            (
                Some("w2"),
                "error (denied): denied by rule `run.repository`*",
                answer("Wrote NOTE.md; the other was refused."),
            ),
        ],
    );
    // Started from another directory: the run works in --repo all the same.
    let (code, out, stderr) = run_in(
        &home,
        &other,
        &[
            "run",
            "write two notes",
            "--repo",
            repo.to_str().unwrap(),
            "--agent",
            "writer",
            "--agents",
            agents.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(out["state"], "done_with_denials", "{out:#}");
    assert_eq!(out["denied"].as_array().unwrap().len(), 1, "{out:#}");
    assert!(
        out["denied"][0]["why"]
            .as_str()
            .unwrap()
            .contains("run.repository"),
        "{out:#}"
    );
    assert!(
        stderr.contains("← repo_write denied: error (denied): denied by rule `run.repository`"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(repo.join("NOTE.md")).unwrap(),
        "in repo"
    );
    assert!(!other.join("NOTE.md").exists() && !other.join("ESCAPE.md").exists());
    assert!(out["timing"]["waiting_ms"].is_number(), "{out:#}");
}

#[tokio::test]
async fn a_run_whose_writes_were_all_refused_never_reports_success() {
    let (home, repo, agents) = home_with_agent(
        "",
        "untrusted",
        "writer",
        "name = \"writer\"\ninstructions = \"Write NOTE.md.\"\ntools = [\"repo_write\"]\n",
    );
    // The built-in policy: read-only.
    std::fs::remove_file(home.path().join("policy.toml")).unwrap();
    let cassette = cassette_file(
        &home,
        "claims.json",
        &[
            (
                None,
                "Goal: write the note*",
                call(
                    "w1",
                    "repo_write",
                    json!({"path": "NOTE.md", "content": "hi"}),
                ),
            ),
            (
                Some("w1"),
                "error (denied): denied by rule `sandbox.read-only`*",
                answer("Done! NOTE.md written."),
            ),
        ],
    );
    let (code, out, stderr) = run_in(
        &home,
        &repo,
        &[
            "run",
            "write the note",
            "--agent",
            "writer",
            "--agents",
            agents.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(out["state"], "done_with_denials");
    assert!(
        stderr.contains("did not do everything it was asked"),
        "{stderr}"
    );
    assert!(!repo.join("NOTE.md").exists());
    let listed = home
        .baton(&["runs", "list", "--json"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("done_with_denials"));
}

#[tokio::test]
async fn a_run_reads_only_its_own_repository() {
    let (home, repo, agents) = home_with_agent(
        "",
        "never",
        "reader",
        "name = \"reader\"\ninstructions = \"Read.\"\ntools = [\"repo_read\"]\n",
    );
    git(&repo, &["init", "-q"]);
    let secret = home.path().join("secret.txt");
    std::fs::write(&secret, "the worker's key").unwrap();
    let cassette = home.path().join("reader.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: read *"}]},
         "response": call("r1", "repo_read", json!({"repo": home.path(), "path": "secret.txt"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "r1"}]},
         "response": answer("{{r1}}")}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    let output = home
        .baton(&[
            "run",
            "read the key",
            "--agent",
            "reader",
            "--agents",
            agents.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ])
        .current_dir(&repo)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!out.contains("the worker's key"), "{out}");
    assert!(said.contains("repo_read denied"), "{said}");
    assert!(
        said.contains(&format!(
            "this run works in `{}`; the repository `{}` is outside it",
            repo.canonicalize().unwrap().display(),
            home.path().display()
        )),
        "{said}"
    );
}

#[tokio::test]
async fn baton_run_shows_the_model_streaming_in_order_and_printable() {
    const ANSWER: &str = "NOTE.md says hi.\nAll is well \u{1b}[2J here.";
    let responses = reader_responses(ANSWER).await;
    streamed_run("responses", &responses.base_url).await;
    // The same conversation over Chat Completions, streamed as chunks.
    let chat = reader_chat(ANSWER).await;
    streamed_run("chat", &chat.base_url).await;
    assert!(
        chat.requests().iter().all(|r| r["stream"] == true),
        "{:?}",
        chat.requests()
    );
}

async fn streamed_run(api: &str, base_url: &str) {
    let (home, repo, agents) = home_with_agent(
        &format!("[model]\napi = \"{api}\"\n"),
        "untrusted",
        "reader",
        "name = \"reader\"\ninstructions = \"Read NOTE.md with repo_read.\"\ntools = [\"repo_read\"]\n",
    );
    std::fs::write(repo.join("NOTE.md"), "hi").unwrap();
    let output = home
        .baton(&[
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
        ])
        .env("OPENAI_BASE_URL", base_url)
        .env("OPENAI_API_KEY", "test-key")
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let done: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        done["output"],
        "NOTE.md says hi.\nAll is well \u{1b}[2J here."
    );
    // What the terminal showed, in order: the arguments as they formed, the call, its result,
    // the answer as it formed (its second line under the first, the escape made harmless).
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[reader]") || l.starts_with("         "))
        .collect();
    assert_eq!(
        progress,
        [
            "[reader] started",
            "[reader] → repo_read {\"path\":\"NOTE.md\"}",
            "[reader] → repo_read",
            "[reader] ← repo_read ok",
            "[reader] NOTE.md says hi.",
            "         All is well \u{fffd}[2J here.",
            "[reader] finished",
        ]
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

#[tokio::test]
async fn a_recorded_run_replays_without_the_model_on_either_api() {
    // Braces a template engine would read: a recording keeps the model's words verbatim.
    const ANSWER: &str = "NOTE.md says hi; {{user}} and {{x:/y}} stay as written.";
    let responses = reader_responses(ANSWER).await;
    let chat = reader_chat(ANSWER).await;
    let asked_responses = || responses.requests().len();
    record_then_replay("responses", &responses.base_url, &asked_responses, ANSWER).await;
    let asked_chat = || chat.requests().len();
    record_then_replay("chat", &chat.base_url, &asked_chat, ANSWER).await;
}

async fn record_then_replay(api: &str, base_url: &str, asked: &dyn Fn() -> usize, answer: &str) {
    let (home, repo, agents) = home_with_agent(
        &format!("[model]\napi = \"{api}\"\n"),
        "untrusted",
        "reader",
        "name = \"reader\"\ninstructions = \"Read NOTE.md with repo_read.\"\ntools = [\"repo_read\"]\n",
    );
    std::fs::write(repo.join("NOTE.md"), "hi").unwrap();
    let cassette = home.path().join("recorded.json");
    let run = |extra: Vec<String>| {
        let mut args: Vec<String> = ["run", "read the note", "--agent", "reader", "--agents"]
            .map(String::from)
            .into();
        args.push(agents.to_str().unwrap().into());
        args.extend(["--repo".into(), repo.to_str().unwrap().into()]);
        args.extend(extra);
        let mut command = home.baton(&args.iter().map(String::as_str).collect::<Vec<_>>());
        command
            .env("OPENAI_BASE_URL", base_url)
            .env("OPENAI_API_KEY", "test-key")
            .env("BATON_LOG", "warn");
        command
    };
    let answered = |output: std::process::Output| -> Value {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let with = |flag: &str| vec![flag.to_owned(), cassette.to_str().unwrap().to_owned()];
    let first = answered(run(with("--record")).output().await.unwrap());
    assert_eq!(first["output"], answer);
    let kept: Value = serde_json::from_slice(&std::fs::read(&cassette).unwrap()).unwrap();
    assert_eq!(
        (kept["api"].as_str(), kept["literal"].as_bool()),
        (Some(api), Some(true))
    );
    assert_eq!(
        kept["interactions"].as_array().unwrap().len(),
        2,
        "{kept:#}"
    );
    // Played back: the same answer, and the model is not asked again.
    let before = asked();
    let second = answered(run(with("--cassette")).output().await.unwrap());
    assert_eq!(second["output"], answer);
    assert_eq!(asked(), before);
    // A recording never overwrites a file, and a replay is not recorded.
    let batch = home
        .baton(&["run", "--goals", "goals.toml", "--record", "batch.json"])
        .output()
        .await
        .unwrap();
    assert_eq!(batch.status.code(), Some(2), "--goals cannot be recorded");
    assert!(!home.path().join("batch.json").exists());
    let again = run(with("--record")).output().await.unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--record"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&std::fs::read(&cassette).unwrap()).unwrap(),
        kept
    );
    assert_eq!(asked(), before);
}

/// A Responses server for the `reader` agent: a `repo_read` of NOTE.md, then `answer`.
async fn reader_responses(answer: &'static str) -> baton_test_support::ResponsesServer {
    baton_test_support::ResponsesServer::start(move |request| {
        if baton_test_support::last_input(request)["type"] == "function_call_output" {
            vec![baton_test_support::message(answer)]
        } else {
            vec![
                json!({"type": "function_call", "call_id": "r1", "name": "repo_read",
                "arguments": json!({"path": "NOTE.md"}).to_string()}),
            ]
        }
    })
    .await
}

/// The same conversation over Chat Completions.
async fn reader_chat(answer: &'static str) -> baton_test_support::ChatServer {
    baton_test_support::ChatServer::start(move |request| {
        let last = request["messages"].as_array().unwrap().last().unwrap();
        if last["role"] == "tool" {
            (200, baton_test_support::chat_answer(answer, (10, 5)))
        } else {
            let args = json!({"path": "NOTE.md"});
            (
                200,
                baton_test_support::chat_tool_call("r1", "repo_read", &args, (10, 5)),
            )
        }
    })
    .await
}
