//! Workers on one PostgreSQL store, each with its own data folder and its own clones (as on
//! separate machines): goals queued with `baton run --goals … --on-workers` run on them,
//! pushed back to a bare remote on their own branches, with the shared index on the
//! coordination branch; a worker killed mid-goal hands the goal over; a flooding requester
//! does not starve another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_runs::{StoreApi as _, WorkDraft, WorkKind};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::process::Child;

use super::common::{Home, git};
use super::run::{answer, call, fixture_repo};

/// A home on the database `url` whose policy lets goals write in the repository and in the
/// workers' folders (where their clones live), with a bare remote cloned from the fixture
/// repository; the remote's path.
fn team(url: &str) -> (Home, PathBuf) {
    team_with(url, "")
}

/// [`team`] with `extra` in its configuration.
fn team_with(url: &str, extra: &str) -> (Home, PathBuf) {
    let home = Home::new(&format!("{extra}\n[store]\nurl = \"{url}\"\n"));
    let repo = fixture_repo(&home);
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\", \"workers\"]\n",
    )
    .unwrap();
    let remote = home.path().join("remote.git");
    git(
        home.path(),
        &[
            "clone",
            "-q",
            "--bare",
            repo.to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    (home, remote)
}

/// `baton worker` named `name`, with a data folder and clones of its own; what it says goes
/// to `<home>/worker-<name>.log`.
fn worker(home: &Home, name: &str, capacity: u32) -> Child {
    let dir = home.path().join("workers").join(name);
    let log = std::fs::File::create(home.path().join(format!("worker-{name}.log"))).unwrap();
    home.baton(&[
        "worker",
        "--name",
        name,
        "--capacity",
        &capacity.to_string(),
        "--dir",
        dir.to_str().unwrap(),
        "--lease-secs",
        "3",
    ])
    .env("BATON_HOME", home.path().join(format!("data-{name}")))
    .env("BATON_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .unwrap()
}

/// What every worker of `home` said so far.
fn workers_said(home: &Home) -> String {
    let mut said = String::new();
    for entry in std::fs::read_dir(home.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("worker-") && name.ends_with(".log") {
            said.push_str(&format!(
                "--- {name}\n{}\n",
                std::fs::read_to_string(&path).unwrap_or_default()
            ));
        }
    }
    said
}

/// The workers the store knows, once `n` of them have reported.
async fn reported(home: &Home, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = home.baton(&["workers", "--json"]).output().await.unwrap();
        let workers: Value = serde_json::from_slice(&out.stdout).unwrap_or(json!([]));
        let list = workers.as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{n} workers never reported: {list:?}\n{}",
            workers_said(home)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `baton run --goals FILE --on-workers` started in the background.
fn queue_goals(home: &Home, goals: &[&str], cassette: &Path) -> Child {
    let file = home.path().join("goals.toml");
    // The slow goals (`count …`) are the builder's own: it runs the command.
    let text: String = goals
        .iter()
        .map(|g| match g.starts_with("count") {
            true => format!("[[goals]]\ngoal = \"{g}\"\nagent = \"builder\"\n\n"),
            false => format!("[[goals]]\ngoal = \"{g}\"\n\n"),
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    home.baton(&[
        "run",
        "--goals",
        file.to_str().unwrap(),
        "--on-workers",
        "--remote",
        home.path().join("remote.git").to_str().unwrap(),
        "--cassette",
        cassette.to_str().unwrap(),
    ])
    .current_dir(home.path().join("repo"))
    .env("BATON_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// What the queueing command printed (its summary) and said (progress), once it ends.
async fn ended(child: Child) -> (Value, String) {
    let out = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the goals never ended")
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), said)
}

/// The shared index as the coordination branch of `remote` holds it.
fn shared_index(remote: &Path) -> Value {
    let text = git(remote, &["show", "baton/coordination:tasks/index.json"]);
    serde_json::from_str(&text).unwrap()
}

/// Every audit record of the store at `url`.
async fn records(url: &str) -> Vec<baton_runs::AuditRecord> {
    let store = baton_runs::PgStore::connect(url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let records = store.audit_records(0, 100_000).await.unwrap();
    let verified = store.verify_audit().await.unwrap();
    assert!(verified.problem.is_none(), "{verified:?}");
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_goals_on_three_workers_push_ten_branches_and_lose_no_update() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::ten_goals") else {
        return;
    };
    let (home, remote) = team(&url);
    let mut workers: Vec<Child> = ["w1", "w2", "w3"]
        .iter()
        .map(|name| worker(&home, name, 2))
        .collect();
    reported(&home, 3).await;
    let cassette =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cassettes/sop-feature-x10.json");
    let goals: Vec<String> = (1..=10).map(|n| format!("goal {n} of ten")).collect();
    let goals: Vec<&str> = goals.iter().map(String::as_str).collect();
    let (summary, _) = ended(queue_goals(&home, &goals, &cassette)).await;
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 10);
    assert!(runs.iter().all(|r| r["state"] == "done"), "{summary:#}");
    let mut ran_on: Vec<&str> = runs
        .iter()
        .map(|r| r["workers"][0].as_str().unwrap())
        .collect();
    ran_on.sort_unstable();
    ran_on.dedup();
    assert!(ran_on.len() >= 2, "all goals ran on {ran_on:?}");

    // Ten branches on the remote, each holding its goal's work (the SOP's task branch too).
    let branches = git(
        &remote,
        &["for-each-ref", "--format=%(refname)", "refs/heads/goal/"],
    );
    assert_eq!(branches.lines().count(), 10, "{branches}");
    for run in runs {
        let branch = run["branch"].as_str().unwrap();
        let commit = git(&remote, &["rev-parse", branch]);
        assert_eq!(run["commit"].as_str().unwrap(), commit);
        let index = git(&remote, &["show", &format!("{branch}:tasks/index.json")]);
        assert!(index.contains("\"status\": \"done\""), "{index}");
    }
    // The shared index: ten goals, all done, each by the worker that ran it.
    let index = shared_index(&remote);
    let tasks = index["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 10);
    for task in tasks {
        assert_eq!(task["status"], "done", "{task:#}");
        assert!(task["claimed_by"].is_null());
        let run = runs.iter().find(|r| r["run_id"] == task["id"]).unwrap();
        assert_eq!(
            task["metadata"]["worker"],
            format!("worker:{}", run["workers"][0].as_str().unwrap())
        );
    }
    // Every call of the goals' agents is the run's agent's, made by a worker for the lead.
    let user = baton_cli::config::os_user();
    let calls: Vec<String> = records(&url)
        .await
        .into_iter()
        .filter(|r| r.principal.starts_with("agent:"))
        .map(|r| r.principal)
        .collect();
    assert!(calls.len() > 100, "{}", calls.len());
    for principal in &calls {
        let (_, acting) = principal.split_once(" (worker:").expect(principal);
        assert!(acting.ends_with(&format!(" for {user})")), "{principal}");
    }
    let out = home.baton(&["workers"]).output().await.unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed.contains("w1  up") && listed.contains("capacity 2"),
        "{listed}"
    );
    for worker in &mut workers {
        worker.start_kill().unwrap();
    }
}

/// A cassette for a builder that runs `command` (its side effect counted in a file) after a
/// model turn that takes `delay_ms`, then answers.
fn slow_cassette(home: &Home, command: &str, delay_ms: u64) -> PathBuf {
    let cassette = home.path().join("slow.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: count *"}]},
         "delay_ms": delay_ms,
         "response": call("c1", "repo_exec", json!({"argv": [command], "shell": true}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c1"}]},
         "response": answer("Counted.")}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    cassette
}

/// The lines of `file`, or none while it does not exist.
fn lines(file: &Path) -> usize {
    std::fs::read_to_string(file).map_or(0, |t| t.lines().count())
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_a_tool_call_hands_the_goal_over_and_the_command_runs_once() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::killed_in_a_tool_call")
    else {
        return;
    };
    let (home, _remote) = team(&url);
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let command = format!("echo ran >> {}; sleep 30", counter.display());
    let cassette = slow_cassette(&home, &command, 0);
    let mut first = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let queued = queue_goals(&home, &["count once"], &cassette);
    until("the command started", || lines(&counter) == 1).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let mut second = worker(&home, "w2", 1);
    let (summary, said) = ended(queued).await;
    let run = &summary["runs"][0];
    assert_eq!(run["state"], "done", "{summary:#}");
    assert_eq!(run["workers"], json!(["w1", "w2"]), "{said}");
    assert_eq!(
        lines(&counter),
        1,
        "the command ran again after the hand-over"
    );
    let run_id = run["run_id"].as_str().unwrap();
    let shown = home
        .baton(&["runs", "show", run_id, "--json"])
        .env("BATON_HOME", home.path().join("data-w2"))
        .output()
        .await
        .unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let steps: Vec<(String, Value)> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap().to_owned(), s["data"].clone()))
        .collect();
    let takers: Vec<&Value> = steps
        .iter()
        .filter(|(kind, _)| kind == "worker")
        .map(|(_, data)| &data["worker"])
        .collect();
    assert_eq!(takers, vec![&json!("worker:w1"), &json!("worker:w2")]);
    let refused = steps
        .iter()
        .find(|(kind, _)| kind == "tool_result")
        .map(|(_, data)| data["value"].to_string())
        .unwrap();
    assert!(refused.contains("outcome is unknown"), "{refused}");
    second.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_in_a_model_call_hands_the_goal_over() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::killed_in_a_model_call")
    else {
        return;
    };
    let (home, _remote) = team(&url);
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let command = format!("echo ran >> {}", counter.display());
    let cassette = slow_cassette(&home, &command, 4_000);
    let mut first = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let queued = queue_goals(&home, &["count after thinking"], &cassette);
    let url2 = url.clone();
    // Killed while the model thinks: the run has started (its worker step is journaled).
    let store = baton_runs::PgStore::connect(&url2, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = store.runs().await.unwrap();
        if let Some(run) = runs.first()
            && store
                .steps(run.id.clone())
                .await
                .unwrap()
                .iter()
                .any(|s| s.kind == "worker")
        {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    assert_eq!(lines(&counter), 0);
    let mut second = worker(&home, "w2", 1);
    let (summary, _) = ended(queued).await;
    assert_eq!(summary["runs"][0]["state"], "done", "{summary:#}");
    assert_eq!(summary["runs"][0]["workers"], json!(["w1", "w2"]));
    assert_eq!(lines(&counter), 1);
    second.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_requester_does_not_starve_another_goal() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::fairness") else {
        return;
    };
    let (home, _remote) = team(&url);
    let store = baton_runs::PgStore::connect(&url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    // A shop floods the queue with a thousand calls before the lead's goal comes.
    let flood: Vec<WorkDraft> = (0..1_000)
        .map(|n| WorkDraft {
            kind: WorkKind::Call,
            requester: "shop".into(),
            group: Some("flood".into()),
            payload: json!({"tool": "knowledge_search", "args": {"query": format!("gate {n}")}}),
        })
        .collect();
    store
        .enqueue_work(flood, baton_runs::now_millis())
        .await
        .unwrap();
    let mut only = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let cassette = slow_cassette(&home, &format!("echo ran >> {}", counter.display()), 0);
    let queued_at = Instant::now();
    let queued = queue_goals(&home, &["count between photos"], &cassette);
    let (summary, _) = ended(queued).await;
    assert_eq!(summary["runs"][0]["state"], "done", "{summary:#}");
    let items = store.work_items(None).await.unwrap();
    let flood_done = items
        .iter()
        .filter(|i| i.requester == "shop" && i.state == baton_runs::WorkState::Done)
        .count();
    // The goal was taken within one lease period (3 s) of being queued, while the flood was
    // still going on: it did not wait for the thousand calls queued before it.
    let goal = items.iter().find(|i| i.kind == WorkKind::Goal).unwrap();
    let waited = goal.leases[0].from_ms - goal.created_ms;
    eprintln!(
        "goal taken {waited} ms after it was queued; {flood_done} of 1000 calls done by the goal's end ({:?} after queueing)",
        queued_at.elapsed()
    );
    assert!(waited < 3_000, "{waited} ms");
    assert!(flood_done < 1_000, "the goal waited for the whole flood");
    only.start_kill().unwrap();
}

/// `n` photos in `dir`, copied round-robin from the vision fixtures under unique names.
fn photos(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vision/shots");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&shots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("clean-") && name.ends_with(".png") && !name.ends_with(".mask.png")
        })
        .collect();
    sources.sort();
    for i in 0..n {
        std::fs::copy(
            &sources[i % sources.len()],
            dir.join(format!("photo-{i:04}.png")),
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_batch_loses_no_photo_and_each_is_answered_once() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::killed_mid_batch") else {
        return;
    };
    let (home, _remote) = team(&url);
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!("{config}\n[workers]\nbatches = true\n"),
    )
    .unwrap();
    let dir = home.path().join("workers/photos");
    photos(&dir, 40);
    let mut first = home
        .baton(&[
            "worker",
            "--name",
            "w1",
            "--kinds",
            "call",
            "--capacity",
            "1",
            "--lease-secs",
            "3",
        ])
        .env("BATON_HOME", home.path().join("data-w1"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut second = home
        .baton(&[
            "worker",
            "--name",
            "w2",
            "--kinds",
            "call",
            "--capacity",
            "1",
            "--lease-secs",
            "3",
        ])
        .env("BATON_HOME", home.path().join("data-w2"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    reported(&home, 2).await;
    let out_dir = home.path().join("workers/out");
    let args = json!({"dir": dir, "out_dir": out_dir}).to_string();
    let batch = home
        .baton(&["tools", "call", "vision_batch", "--args", &args])
        .env("BATON_HOME", home.path().join("data-caller"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let store = baton_runs::PgStore::connect(&url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let items = store.work_items(None).await.unwrap();
        let by_w1 = items
            .iter()
            .filter(|i| i.state == baton_runs::WorkState::Done && i.worker.as_deref() == Some("w1"))
            .count();
        if by_w1 >= 5 {
            break;
        }
        assert!(Instant::now() < deadline, "w1 never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(240), batch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["processed"], 40, "{result:#}");
    assert_eq!(result["failed"], 0);
    assert_eq!(result["workers"], 2);
    let mut sources: Vec<&str> = result["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["source"].as_str().unwrap())
        .collect();
    sources.dedup();
    assert_eq!(sources.len(), 40, "each photo once, in order");
    // Each photo's item finished once; what w1 held when it died went to w2.
    let items = store.work_items(None).await.unwrap();
    assert_eq!(items.len(), 40);
    assert!(items.iter().all(|i| i.state == baton_runs::WorkState::Done));
    let handed: Vec<_> = items.iter().filter(|i| i.leases.len() > 1).collect();
    assert!(handed.len() <= 1, "{handed:?}");
    assert!(handed.iter().all(|i| i.worker.as_deref() == Some("w2")));
    // The audit: one answered call of vision_process per photo, but for the one w1 may have
    // answered in the instant before it died, before the queue heard (then answered twice).
    let answered: Vec<String> = records(&url)
        .await
        .into_iter()
        .filter(|r| r.tool == "vision_process")
        .map(|r| r.args_digest)
        .collect();
    let mut once = answered.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), 40);
    assert!(answered.len() <= 40 + handed.len(), "{}", answered.len());
    second.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_worker_running_the_goal() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::cancel") else {
        return;
    };
    let (home, _remote) = team(&url);
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let command = format!("echo ran >> {}; sleep 60", counter.display());
    let cassette = slow_cassette(&home, &command, 0);
    let mut only = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let queued = queue_goals(&home, &["count then wait"], &cassette);
    until("the command started", || lines(&counter) == 1).await;
    let stopped_at = Instant::now();
    let pid = i32::try_from(queued.id().unwrap()).unwrap();
    // Ctrl-C in the lead's terminal.
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = queued.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let store = baton_runs::PgStore::connect(&url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let items = store.work_items(None).await.unwrap();
        if items[0].state == baton_runs::WorkState::Cancelled {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", items[0]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let run = store.runs().await.unwrap().remove(0);
    assert_eq!(run.state, baton_runs::RunState::Cancelled);
    eprintln!(
        "cancelled at the worker {:?} after Ctrl-C",
        stopped_at.elapsed()
    );
    assert!(stopped_at.elapsed() < Duration::from_secs(20));
    only.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_see_the_workers_in_the_console() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::console") else {
        return;
    };
    let home = Home::new(&format!(
        "{}\n[store]\nurl = \"{url}\"\n",
        super::console::TOKENS
    ));
    let mut only = worker(&home, "w1", 3);
    reported(&home, 1).await;
    // A second worker under the same name would share the first one's leases: refused.
    let twin = home
        .baton(&["worker", "--name", "w1"])
        .env("BATON_HOME", home.path().join("data-twin"))
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&twin.stderr);
    assert_eq!(twin.status.code(), Some(2), "{said}");
    assert!(said.contains("a worker named `w1` runs on "), "{said}");
    let server = super::common::HttpServer::start_with_env(&home, &[], super::console::ENV).await;
    let base = format!("http://{}", server.addr);
    let (session, _) = super::console::http_sign_in(&base, "alice-secret-token")
        .await
        .unwrap();
    let page = reqwest::Client::new()
        .get(format!("{base}/console/workers"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = page.split("<code>w1</code>").nth(1).expect(&page);
    let row = row.split("</tr>").next().unwrap();
    assert!(row.contains(">up<") && row.contains("<td>3</td>"), "{row}");
    assert!(row.contains("nothing"), "{row}");
    only.start_kill().unwrap();
}

#[tokio::test]
async fn bad_worker_settings_and_goals_without_a_remote_are_refused_by_name() {
    let home = Home::new("");
    let repo = fixture_repo(&home);
    for (args, expected) in [
        (
            vec!["worker", "--name", "two words"],
            "--name `two words`: a worker's name has no spaces",
        ),
        (
            vec!["worker", "--capacity", "0"],
            "invalid value '0' for '--capacity <CAPACITY>'",
        ),
        (
            vec!["worker", "--kinds", "photos"],
            "invalid value 'photos' for '--kinds <KINDS>'",
        ),
        (
            vec!["worker", "--lease-secs", "1"],
            "invalid value '1' for '--lease-secs <LEASE_SECS>'",
        ),
    ] {
        let out = home.baton(&args).output().await.unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(expected), "{args:?}: {said}");
    }
    std::fs::write(home.path().join("goals.toml"), "[[goals]]\ngoal = \"x\"\n").unwrap();
    let out = home
        .baton(&["run", "--goals", "../goals.toml", "--on-workers"])
        .current_dir(&repo)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains(
            "--on-workers needs the repository's remote: give --remote, or add an `origin`"
        ),
        "{said}"
    );
    // Nothing was queued for a goal that could not be placed.
    let listed = home.baton(&["workers"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("no workers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stalled_past_its_lease_makes_no_call_and_writes_nothing_after_the_hand_over() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::stalled") else {
        return;
    };
    let (home, _remote) = team(&url);
    let started = home.path().join("workers/started");
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let cassette = home.path().join("stall.json");
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: count *"}]},
         "response": call("c1", "repo_exec", json!({"argv": [format!("echo a >> {}; sleep 6", started.display())], "shell": true}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c1"}]},
         "response": call("c2", "repo_exec", json!({"argv": [format!("echo b >> {}", counter.display())], "shell": true}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c2"}]},
         "response": answer("Counted.")}
    ]});
    std::fs::write(&cassette, serde_json::to_vec_pretty(&body).unwrap()).unwrap();
    let mut first = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let queued = queue_goals(&home, &["count after a stall"], &cassette);
    until("the first command started", || lines(&started) == 1).await;
    let pid = first.id().unwrap().to_string();
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    // The worker freezes (a pause, a partition) for longer than its lease.
    signal("-STOP");
    let mut second = worker(&home, "w2", 1);
    let (summary, _) = ended(queued).await;
    assert_eq!(
        summary["runs"][0]["workers"],
        json!(["w1", "w2"]),
        "{summary:#}"
    );
    assert_eq!(lines(&counter), 1, "w2 counted once");
    let store = baton_runs::PgStore::connect(&url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let run = store.runs().await.unwrap().remove(0);
    let steps_then = store.steps(run.id.clone()).await.unwrap().len();
    // The frozen worker wakes: its first command's answer comes back, and it would go on.
    signal("-CONT");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        lines(&counter),
        1,
        "the woken worker made the second call again"
    );
    assert_eq!(
        store.steps(run.id.clone()).await.unwrap().len(),
        steps_then,
        "the woken worker wrote into the run"
    );
    let items = store.work_items(None).await.unwrap();
    assert_eq!(items[0].state, baton_runs::WorkState::Done);
    assert_eq!(items[0].worker.as_deref(), Some("w2"));
    first.start_kill().unwrap();
    second.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_run_over_rest_hands_the_goal_to_a_worker() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::agents_run") else {
        return;
    };
    let remotes = "[workers]\nremotes = [\"/tmp/*\"]\n";
    let (home, remote) = team_with(&url, &format!("{}{remotes}", super::console::TOKENS));
    let repo = home.path().join("repo");
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let cassette = slow_cassette(&home, &format!("echo ran >> {}", counter.display()), 0);
    let mut only = worker(&home, "w1", 1);
    reported(&home, 1).await;
    let server = super::common::HttpServer::start_with_env(&home, &[], super::console::ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let post = |tool: &str, body: Value| {
        http.post(format!("{base}/v1/tools/{tool}"))
            .bearer_auth("bot-secret-token")
            .json(&body)
            .send()
    };
    let started: Value = post(
        "agents_run",
        json!({"goal": "count on a worker", "agent": "builder", "repo": repo, "cassette": cassette, "on_workers": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let run_id = started["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{started}"))
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let report = loop {
        let report: Value = post("runs_get", json!({"run_id": run_id}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The run is `done` a moment before its outcome (output, branch) is journaled.
        if report["state"] == "done" && !report["output"].is_null() {
            break report;
        }
        assert!(Instant::now() < deadline, "{report:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["output"], "Counted.");
    assert_eq!(lines(&counter), 1);
    // It ran on the worker, for the bot, on its own branch of the remote.
    let branch = format!("goal/{}", run_id.to_ascii_lowercase());
    git(&remote, &["rev-parse", "--verify", &branch]);
    let index = shared_index(&remote);
    assert_eq!(index["tasks"][0]["id"], run_id.as_str());
    assert_eq!(index["tasks"][0]["status"], "done");
    let principals: Vec<String> = records(&url)
        .await
        .into_iter()
        .filter(|r| r.tool == "repo_exec")
        .map(|r| r.principal)
        .collect();
    assert_eq!(
        principals,
        vec!["agent:builder (worker:w1 for bot)".to_owned()]
    );
    // A repository without a remote is refused before anything is queued.
    let bare_repo = home.path().join("lonely");
    std::fs::create_dir_all(&bare_repo).unwrap();
    git(&bare_repo, &["init", "-q"]);
    let refused = post(
        "agents_run",
        json!({"goal": "x", "repo": bare_repo, "cassette": cassette, "on_workers": true}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 422);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("needs the repository's remote"),
        "{problem:#}"
    );
    only.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goal_branch_naming_a_worktree_elsewhere_is_refused_by_the_worker() {
    let Some((_cluster, url)) = baton_test_support::pg_database("workers::trailers") else {
        return;
    };
    let remotes = "[workers]\nremotes = [\"/tmp/*\"]\n";
    let (home, remote) = team_with(&url, &format!("{}{remotes}", super::console::TOKENS));
    let repo = home.path().join("repo");
    git(
        &repo,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    let counter = home.path().join("workers/counter");
    std::fs::create_dir_all(counter.parent().unwrap()).unwrap();
    let cassette = slow_cassette(&home, &format!("echo ran >> {}", counter.display()), 0);
    let server = super::common::HttpServer::start_with_env(&home, &[], super::console::ENV).await;
    let started: Value = reqwest::Client::new()
        .post(format!("http://{}/v1/tools/agents_run", server.addr))
        .bearer_auth("bot-secret-token")
        .json(&json!({"goal": "count", "agent": "builder", "repo": repo, "cassette": cassette, "on_workers": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    // Before any worker takes it, someone with push access puts a goal branch on the remote
    // whose checkpoint names a worktree outside the clone.
    let outside = home.path().join("planted");
    let branch = format!("goal/{}", run_id.to_ascii_lowercase());
    let trailer = "x\n\nBaton-Worktree: ../../../../../planted task/t-1\n";
    git(&repo, &["checkout", "-q", "-b", "task/t-1"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", trailer]);
    git(
        &repo,
        &[
            "push",
            "-q",
            "origin",
            &format!("task/t-1:{branch}"),
            "task/t-1",
        ],
    );
    let mut only = worker(&home, "w1", 1);
    let store = baton_runs::PgStore::connect(&url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let item = loop {
        let items = store.work_items(Some(run_id.clone())).await.unwrap();
        if items[0].state.is_final() {
            break items[0].clone();
        }
        assert!(Instant::now() < deadline, "{items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item.state, baton_runs::WorkState::Failed);
    let why = item.result.unwrap()["error"].as_str().unwrap().to_owned();
    assert!(why.contains("names a worktree Baton did not make"), "{why}");
    assert!(
        !outside.exists(),
        "a worktree was checked out outside the clone"
    );
    assert_eq!(lines(&counter), 0);
    only.start_kill().unwrap();
}
