//! A team's Baton: several `baton serve --http` processes, each with its own data folder (as
//! on separate machines), on one PostgreSQL store. Callers split across them; one server is
//! killed mid-load; PostgreSQL restarts mid-load; approvals asked through one server are
//! decided through another; two reviewers race on two servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_test_support::PgCluster;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};
use super::goals::call;

const TOKENS: &str = r#"
[[http.tokens]]
principal = "bot"
roles = ["agent"]
token_env = "BOT_TOKEN"

[[http.tokens]]
principal = "rev"
roles = ["reviewer"]
token_env = "REV_TOKEN"

[[http.tokens]]
principal = "ada"
roles = ["reviewer"]
token_env = "ADA_TOKEN"
"#;

const ENV: [(&str, &str); 3] = [
    ("BOT_TOKEN", "bot-t"),
    ("REV_TOKEN", "rev-t"),
    ("ADA_TOKEN", "ada-t"),
];

/// A home whose store is the database at `url`.
fn home_on(url: &str) -> Home {
    Home::new(&format!("{TOKENS}\n[store]\nurl = \"{url}\"\n"))
}

/// A server with a data folder of its own, `name`, in `home`: another machine's Baton.
async fn server(home: &Home, name: &str) -> HttpServer {
    let data = home.path().join(name);
    let data = data.to_str().unwrap();
    let mut env = ENV.to_vec();
    env.push(("BATON_HOME", data));
    HttpServer::start_with_env(home, &[], &env).await
}

/// What one REST call came to.
#[derive(Debug, Clone)]
struct Answer {
    /// The audit digest of its arguments.
    digest: String,
    /// Its HTTP status, or `None` when the server could not be reached.
    status: Option<u16>,
    /// Its problem's detail, for a refusal.
    detail: String,
    at: Instant,
}

async fn search(http: &reqwest::Client, addr: std::net::SocketAddr, query: &str) -> Answer {
    let args = json!({ "query": query });
    let digest = baton_runs::args_digest(&args);
    let sent = http
        .post(format!("http://{addr}/v1/tools/knowledge_search"))
        .bearer_auth("bot-t")
        .json(&args)
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    let (status, detail) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (
                Some(status),
                body["detail"].as_str().unwrap_or("").to_owned(),
            )
        }
        Err(_) => (None, String::new()),
    };
    Answer {
        digest,
        status,
        detail,
        at: Instant::now(),
    }
}

/// The store at `url`, and every audit record in it, read back through the store API.
async fn all_records(url: &str) -> (baton_runs::PgStore, Vec<baton_runs::AuditRecord>) {
    let store = baton_runs::PgStore::connect(url, &baton_runs::StoreOptions::default())
        .await
        .unwrap();
    let mut records = Vec::new();
    loop {
        let after = records
            .last()
            .map_or(0, |r: &baton_runs::AuditRecord| r.seq);
        let page = baton_runs::StoreApi::audit_records(&store, after, 5_000)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    (store, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_one_chain_through_a_kill_and_a_database_restart() {
    if !baton_test_support::postgres("teams::two_servers_one_chain") {
        return;
    }
    let cluster = PgCluster::start();
    let url = cluster.database();
    let home = home_on(&url);
    let mut a = server(&home, "a").await;
    let b = server(&home, "b").await;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let answers = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let callers: Vec<_> = (0..32)
        .map(|caller| {
            let (answers, stop) = (answers.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut addr = if caller % 2 == 0 { a_addr } else { b_addr };
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    let answer = search(&http, addr, &format!("gate {caller} {n}")).await;
                    if answer.status.is_none() {
                        // A's callers go on with B once A is gone, as a load balancer would.
                        addr = b_addr;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    if answer.status == Some(503) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    answers.lock().unwrap().push(answer);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1_500)).await;
    a.child.start_kill().unwrap();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    cluster.stop();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    // The database takes connections before `pg_ctl start` returns: the outage ends when the
    // restart begins.
    let restarting = Instant::now();
    cluster.restart();
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for caller in callers {
        caller.await.unwrap();
    }
    let answers = answers.lock().unwrap().clone();
    let answered: Vec<&Answer> = answers.iter().filter(|a| a.status == Some(200)).collect();
    let during_outage: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.at > stopped + Duration::from_millis(300) && a.at < restarting)
        .collect();
    let after_kill = answered.iter().filter(|a| a.at > killed).count();
    let after_restart = answered
        .iter()
        .filter(|a| a.at > restarted + Duration::from_secs(1))
        .count();
    eprintln!(
        "{} calls in {:?}: {} answered, {} after the kill, {} during the outage ({} refused), {} after the restart",
        answers.len(),
        started.elapsed(),
        answered.len(),
        after_kill,
        during_outage.len(),
        during_outage
            .iter()
            .filter(|a| a.status == Some(503))
            .count(),
        after_restart
    );

    let mut statuses = std::collections::BTreeMap::new();
    for answer in &during_outage {
        *statuses.entry(format!("{:?}", answer.status)).or_insert(0) += 1;
    }
    eprintln!("during the outage: {statuses:?}");
    // Every answered call has its record; the chain is one and verifies.
    let digests: HashSet<String> = all_records(&url)
        .await
        .1
        .into_iter()
        .filter(|r| r.tool == "knowledge_search")
        .map(|r| r.args_digest)
        .collect();
    let missing: Vec<_> = answered
        .iter()
        .filter(|a| !digests.contains(&a.digest))
        .collect();
    assert!(missing.is_empty(), "answered without a record: {missing:?}");
    let verify = home
        .baton(&["audit", "verify"])
        .env("BATON_HOME", home.path().join("cli"))
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(said.contains("audit log verified"), "{said}");

    // The other server kept serving; calls in flight during the outage failed, saying why;
    // service came back by itself.
    assert!(
        after_kill > 50,
        "B answered {after_kill} calls after A was killed"
    );
    assert!(!during_outage.is_empty());
    for refused in during_outage.iter().filter(|a| a.status != Some(200)) {
        assert_eq!(refused.status, Some(503), "{refused:?}");
        assert!(
            refused.detail.contains("PostgreSQL") || refused.detail.contains("audit"),
            "{refused:?}"
        );
    }
    assert!(
        during_outage.iter().all(|a| a.status != Some(200)),
        "a call was answered while the database was down"
    );
    assert!(
        after_restart > 50,
        "{after_restart} calls answered after the restart"
    );
    drop(b);
}

/// Poll `check` on `server` until it says done; what it saw last.
async fn until(
    server: &HttpServer,
    token: &str,
    tool: &str,
    args: Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut seen = Value::Null;
    for _ in 0..300 {
        let (ok, got, text) = call(server, token, tool, args.clone()).await;
        assert!(ok, "{tool}: {text}");
        if done(&got) {
            return got;
        }
        seen = got;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{tool} never got there: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_asked_on_one_server_is_decided_on_another_once() {
    let Some((_cluster, url)) = baton_test_support::pg_database("teams::an_approval_asked") else {
        return;
    };
    let home = home_on(&url);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let cassette = home.path().join("writer.json");
    let write = json!({"message": {"role": "assistant", "tool_calls": [{"id": "w1", "type": "function",
        "function": {"name": "repo_write", "arguments": json!({"path": "NOTE.md", "content": "hi"}).to_string()}}]},
        "finish_reason": "tool_calls"});
    std::fs::write(
        &cassette,
        json!({"interactions": [
            {"request": {"messages": [{"role": "user", "content": "Goal: write the note*"}]}, "response": write},
            {"request": {"messages": [{"role": "tool", "tool_call_id": "w1",
                "content": "{\"bytes\":2,\"created\":true,\"path\":\"NOTE.md\"}"}]},
             "response": {"message": {"role": "assistant", "content": "NOTE.md written."}, "finish_reason": "stop"}}
        ]})
        .to_string(),
    )
    .unwrap();
    let a = server(&home, "a").await;
    let b = server(&home, "b").await;

    // A run on A waits for a reviewer; the reviewer is on B.
    let (ok, started, text) = call(
        &a,
        "bot-t",
        "agents_run",
        json!({ "goal": "write the note", "agent": "builder", "repo": repo, "cassette": cassette }),
    )
    .await;
    assert!(ok, "{text}");
    let run_id = started["run_id"].as_str().unwrap().to_owned();
    let listed = until(&b, "rev-t", "approvals_list", json!({}), |got| {
        got["approvals"]
            .as_array()
            .is_some_and(|all| !all.is_empty())
    })
    .await;
    let id = listed["approvals"][0]["id"].as_str().unwrap().to_owned();
    let (ok, _, text) = call(
        &b,
        "rev-t",
        "approvals_decide",
        json!({ "id": id, "decision": "approve" }),
    )
    .await;
    assert!(ok, "{text}");
    let done = until(
        &a,
        "bot-t",
        "runs_get",
        json!({ "run_id": run_id }),
        |got| got["state"] != "running" && got["state"] != "waiting_approval",
    )
    .await;
    assert_eq!(
        (&done["state"], &done["output"]),
        (&json!("done"), &json!("NOTE.md written."))
    );
    assert_eq!(std::fs::read_to_string(repo.join("NOTE.md")).unwrap(), "hi");

    // Two reviewers, one on each server, decide the same approval at once: one decision
    // stands, the other is told it is already decided, and a rejection is closed once.
    let http = reqwest::Client::new();
    let mut outcomes = Vec::new();
    for round in 0..8 {
        let args = json!({ "repo": repo, "path": format!("R{round}.md"), "content": "x" });
        let asked: Value = http
            .post(format!("http://{}/v1/tools/repo_write", a.addr))
            .bearer_auth("bot-t")
            .json(&args)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = asked["approval_id"].as_str().unwrap().to_owned();
        let (one, two) = tokio::join!(
            call(
                &a,
                "rev-t",
                "approvals_decide",
                json!({ "id": id, "decision": "approve" })
            ),
            call(
                &b,
                "ada-t",
                "approvals_decide",
                json!({ "id": id, "decision": "reject", "note": "no" })
            ),
        );
        assert_eq!(
            [one.0, two.0].iter().filter(|ok| **ok).count(),
            1,
            "round {round}: {one:?} / {two:?}"
        );
        let loser = if one.0 { &two.2 } else { &one.2 };
        assert!(loser.contains("already"), "{loser}");
        outcomes.push((id, if one.0 { "approved" } else { "rejected" }));
    }
    let (_, all, _) = call(&b, "rev-t", "approvals_list", json!({ "state": "all" })).await;
    for (id, state) in &outcomes {
        let stored = all["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == *id)
            .unwrap_or_else(|| panic!("{id} not listed: {all}"));
        assert_eq!(stored["state"], *state);
    }
    let (store, records) = all_records(&url).await;
    for (id, state) in &outcomes {
        let closing = records
            .iter()
            .filter(|r| {
                r.approval_id.as_deref() == Some(id.as_str())
                    && r.outcome.status == baton_runs::OutcomeStatus::Rejected
            })
            .count();
        assert_eq!(closing, usize::from(*state == "rejected"), "{id} {state}");
    }
    assert_eq!(
        baton_runs::StoreApi::verify_audit(&store)
            .await
            .unwrap()
            .problem,
        None
    );
}

#[tokio::test]
async fn a_sled_store_moves_to_postgres_with_its_chain() {
    let Some((_cluster, url)) = baton_test_support::pg_database("teams::a_sled_store_moves") else {
        return;
    };
    // A store on sled (this home's own data folder, whatever the pass).
    let home = Home::new("[store]\n");
    let data = home.path().join(".baton");
    for query in ["gate", "audit", "approvals"] {
        let out = home
            .baton(&[
                "tools",
                "call",
                "knowledge_search",
                "--args",
                &json!({ "query": query }).to_string(),
            ])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let copy = |to: &str| {
        home.baton(&[
            "store",
            "copy",
            "--from",
            &format!("sled:{}", data.display()),
            "--to",
            to,
        ])
        .output()
    };
    let out = copy(&url).await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("copied 3 audit records"), "{said}");
    assert!(
        said.contains("audit log verified on both: 3 records"),
        "{said}"
    );

    // The same chain on both; the copy takes new records after it.
    let verify = |env: Option<&str>| {
        let mut command = home.baton(&["audit", "verify"]);
        if let Some(url) = env {
            command.env("BATON_STORE_URL", url);
        }
        command.output()
    };
    let (on_sled, on_pg) = (
        verify(None).await.unwrap(),
        verify(Some(&url)).await.unwrap(),
    );
    assert_eq!(
        String::from_utf8_lossy(&on_sled.stdout),
        String::from_utf8_lossy(&on_pg.stdout)
    );
    let more = home
        .baton(&[
            "tools",
            "call",
            "knowledge_search",
            "--args",
            r#"{"query":"more"}"#,
        ])
        .env("BATON_STORE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(more.status.success(), "{more:?}");
    let after = String::from_utf8_lossy(&verify(Some(&url)).await.unwrap().stdout).into_owned();
    assert!(after.contains("4 records"), "{after}");

    // Not twice, not into sled, not from nowhere.
    let again = copy(&url).await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("copied only into an empty database"));
    let into_sled = copy("sled:/tmp/x").await.unwrap();
    assert_eq!(into_sled.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&into_sled.stderr).contains("only a PostgreSQL database"));
    let bad_from = home
        .baton(&["store", "copy", "--from", "mysql://x", "--to", &url])
        .output()
        .await
        .unwrap();
    assert_eq!(bad_from.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_from.stderr).contains("give `sled:DIR`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_starting_leaves_the_tasks_another_server_runs() {
    let Some((_cluster, url)) = baton_test_support::pg_database("teams::a_server_starting") else {
        return;
    };
    let home = home_on(&url);
    let a = server(&home, "a").await;
    let http = reqwest::Client::new();
    let mut form = reqwest::multipart::Form::new();
    for n in 0..400 {
        let part = reqwest::multipart::Part::bytes(super::rest_tools::photo(n))
            .file_name(format!("p{n}.png"))
            .mime_str("image/png")
            .unwrap();
        form = form.part("paths", part);
    }
    let started = http
        .post(format!("http://{}/v1/tools/vision_batch", a.addr))
        .bearer_auth("bot-t")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let job = format!(
        "http://{}{}",
        a.addr,
        started.headers()["location"].to_str().unwrap()
    );

    // B starts while A's task runs: B closes tasks of dead servers on its machine, not A's.
    let b = server(&home, "b").await;
    let status: Value = http
        .get(&job)
        .bearer_auth("bot-t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["status"], "working",
        "the batch ended before B started: {status}"
    );
    let done = super::rest_tools::finished(&http, &job, "bot-t").await;
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["result"]["processed"], 400);
    let (_, records) = all_records(&url).await;
    let closed: Vec<_> = records
        .iter()
        .filter(|r| r.outcome.error_kind.as_deref() == Some("server_stopped"))
        .collect();
    assert_eq!(closed, Vec::<&baton_runs::AuditRecord>::new());
    drop(b);
}

#[tokio::test]
async fn an_upload_larger_than_the_database_keeps_is_refused_by_size() {
    let Some((_cluster, url)) = baton_test_support::pg_database("teams::an_upload_larger") else {
        return;
    };
    let home = Home::new(&format!(
        "[http]\nupload_max_bytes = 4000000\n{TOKENS}\n[store]\nurl = \"{url}\"\nmax_artifact_mb = 1\n"
    ));
    let a = server(&home, "a").await;
    let http = reqwest::Client::new();
    let upload = |size: usize| {
        http.post(format!("http://{}/v1/artifacts", a.addr))
            .bearer_auth("bot-t")
            .header("content-type", "application/octet-stream")
            .body(vec![7u8; size])
            .send()
    };
    assert_eq!(upload(1 << 20).await.unwrap().status(), 201);
    let refused = upload((1 << 20) + 1).await.unwrap();
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains(
            "over the 1048576-byte limit for artifacts kept in PostgreSQL ([store] max_artifact_mb)"
        ),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_hear_each_approval_once_whatever_the_number_of_servers() {
    let Some((_cluster, url)) = baton_test_support::pg_database("teams::webhooks_hear_once") else {
        return;
    };
    let (hook, heard) = super::console::receiver(false).await;
    let home = Home::new(&format!(
        "{TOKENS}\n[[approvals.webhooks]]\nurl = \"{hook}\"\n\n[store]\nurl = \"{url}\"\n"
    ));
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let a = server(&home, "a").await;
    let b = server(&home, "b").await;
    let asked: Value = reqwest::Client::new()
        .post(format!("http://{}/v1/tools/repo_write", a.addr))
        .bearer_auth("bot-t")
        .json(&json!({ "repo": repo, "path": "A.md", "content": "x" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = asked["approval_id"].as_str().unwrap().to_owned();
    super::console::heard_where(&heard, |v| v["event"] == "approval.created").await;
    let (ok, _, text) = call(
        &b,
        "rev-t",
        "approvals_decide",
        json!({ "id": id, "decision": "reject", "note": "no" }),
    )
    .await;
    assert!(ok, "{text}");
    super::console::heard_where(&heard, |v| v["event"] == "approval.decided").await;
    // Both servers' watches saw both events: give the slower one time to (not) send.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let events: Vec<String> = heard
        .lock()
        .unwrap()
        .iter()
        .map(|v| v["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        events,
        vec!["approval.created".to_owned(), "approval.decided".to_owned()]
    );
}
