//! Codex as a builder, end to end: the real Codex CLI (`codex mcp-server`, pinned in
//! `tests/clients/package.json`) is Baton's `[[agents.mcp]]` source, its model a scripted
//! Responses-API server on the loopback; the manager (a replay cassette) delegates a task to
//! the `codex-builder` role; what Codex asks to do beyond its sandbox becomes a Baton approval
//! or is settled by a policy rule; its commands and patches land in the run's journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_test_support::{
    Browser, INPUT_TOKENS, ResponsesServer, codex_mcp_server, exec_call, last_input, message,
    patch_call,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::{Home, HttpServer, git};
use super::run::pending;

/// The policy: writes inside `repo/`; what Codex asks is reviewed, except the repository's
/// check, which a rule lets run.
const POLICY: &str = r#"
sandbox = "workspace-write"
approval = "on-request"
writable_roots = ["repo"]

[[rules]]
id = "codex-check"
tool = "codex:exec"
command = "sh check.sh"
action = "allow"
reason = "the repository's check runs without a reviewer"

[[rules]]
id = "codex-review"
tool = "codex:*"
action = "require-approval"
reason = "what Codex asks beyond its sandbox is reviewed"
"#;

/// The patch Codex's model applies.
const PATCH: &str = "*** Begin Patch\n*** Add File: src/limit.txt\n+burst = 100\n*** End Patch";

/// Codex's model: read the README (Codex asks: a reviewer decides), then — unless refused —
/// write the limit and run the check (a rule allows it). Prompts starting `HOSTILE` ask for
/// what the policy forbids: a command in `/etc`, a patch outside the repository.
fn model(request: &Value) -> Vec<Value> {
    let last = last_input(request);
    let output = last["output"].to_string();
    match (last["type"].as_str(), last["call_id"].as_str()) {
        (Some("function_call_output"), Some("c-read")) if output.contains("refused by Baton") => {
            vec![message(
                "I could not read README.md: Baton refused the command, so I changed nothing.",
            )]
        }
        (Some("function_call_output"), Some("c-read")) => vec![patch_call("c-patch", PATCH)],
        (Some("custom_tool_call_output"), Some("c-patch")) => {
            vec![exec_call("c-check", "sh check.sh", None)]
        }
        (Some("function_call_output"), Some("c-check")) => vec![message(
            "All done: src/limit.txt says burst = 100 and sh check.sh passes.",
        )],
        (Some("function_call_output"), Some("h-etc")) => vec![patch_call(
            "h-patch",
            "*** Begin Patch\n*** Add File: ../../../escaped.txt\n+owned\n*** End Patch",
        )],
        (Some("custom_tool_call_output"), Some("h-patch")) => vec![patch_call(
            "h-link",
            "*** Begin Patch\n*** Add File: out/escaped.txt\n+owned\n*** End Patch",
        )],
        (Some("custom_tool_call_output"), Some("h-link")) => {
            vec![message(&format!("Hostile attempts over: {output}"))]
        }
        _ if last.to_string().contains("SAY HI") => vec![message("hi")],
        (Some("function_call_output"), Some(pair @ ("a-read" | "b-read"))) => {
            vec![message(&format!("{pair} saw: {output}"))]
        }
        _ if request.to_string().contains("PAIR A") => {
            vec![exec_call("a-read", "cat A.txt", None)]
        }
        _ if request.to_string().contains("PAIR B") => {
            vec![exec_call("b-read", "cat B.txt", None)]
        }
        _ if request.to_string().contains("HOSTILE") => {
            vec![exec_call("h-etc", "cat passwd", Some("/etc"))]
        }
        _ => vec![exec_call("c-read", "cat README.md", None)],
    }
}

/// One test's world: the scripted model, a home with the fixture repository (a README and
/// the check the tester runs), the policy, Codex as a source and as the builder, and Codex's
/// own home (in `/var/tmp`: Codex refuses to put its sandbox helpers under `/tmp`) pointing at
/// the model.
struct Scene {
    model: ResponsesServer,
    home: Home,
    repo: PathBuf,
    codex: tempfile::TempDir,
}

impl Scene {
    /// The scene, when the test command installed the Codex CLI (see `needs`).
    async fn start(test: &str) -> Option<Scene> {
        let command = codex_mcp_server(test)?;
        let model = ResponsesServer::start(model).await;
        let argv: Vec<String> = command.iter().map(|a| format!("{a:?}")).collect();
        let home = Home::new(&format!(
            "[[http.tokens]]\nprincipal = \"alice\"\nroles = [\"reviewer\"]\ntoken_env = \"ALICE_TOKEN\"\n\n[agents]\nbuilder = \"codex-builder\"\n\n[[agents.mcp]]\nname = \"codex\"\ncommand = [{}]\neffect = \"exec\"\npath_args = [\"/cwd\"]\n",
            argv.join(", ")
        ));
        let repo = super::run::fixture_repo(&home);
        std::fs::write(home.path().join("policy.toml"), POLICY).unwrap();
        // Codex puts its sandbox helpers in its home and refuses to under the system's
        // temporary folder, where a checkout (and its target folder) may well be.
        let codex = tempfile::Builder::new()
            .prefix("baton-codex-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::write(
            codex.path().join("config.toml"),
            format!(
                "model = \"gpt-5.2-codex\"\nmodel_provider = \"mock\"\n\n[model_providers.mock]\nname = \"Scripted model\"\nbase_url = \"{}\"\nwire_api = \"responses\"\nrequest_max_retries = 0\nstream_max_retries = 0\n",
                model.base_url
            ),
        )
        .unwrap();
        Some(Scene {
            model,
            home,
            repo,
            codex,
        })
    }

    /// `baton ARGS` in the repository, with Codex's home, output piped.
    fn baton(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = self.home.baton(args);
        command
            .current_dir(&self.repo)
            .env("CODEX_HOME", self.codex.path())
            .env("BATON_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// `baton run "add a rate limit"` on `cassette` (from `fixtures/cassettes/`), started.
    fn run(&self, cassette: &str) -> Running {
        let cassette = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/cassettes")
            .join(cassette);
        Running::start(self.baton(&[
            "run",
            "add a rate limit",
            "--cassette",
            cassette.to_str().unwrap(),
        ]))
    }

    /// `baton run GOAL` by the `coder` agent (tools: Codex) on a cassette of `interactions`,
    /// started.
    fn coder(&self, goal: &str, interactions: Value) -> Running {
        let agents = self.home.path().join("agents");
        std::fs::create_dir_all(&agents).unwrap();
        std::fs::write(
            agents.join("coder.toml"),
            "name = \"coder\"\ninstructions = \"Hand the work to Codex.\"\ntools = [\"codex_codex\", \"codex_codex_reply\"]\nagents = [\"intruder\"]\n",
        )
        .unwrap();
        std::fs::write(
            agents.join("intruder.toml"),
            "name = \"intruder\"\ninstructions = \"Reply to threads.\"\ntools = [\"codex_codex_reply\"]\n",
        )
        .unwrap();
        let cassette = self.home.path().join("coder.json");
        std::fs::write(
            &cassette,
            serde_json::to_vec_pretty(&json!({ "interactions": interactions })).unwrap(),
        )
        .unwrap();
        Running::start(self.baton(&[
            "run",
            goal,
            "--agent",
            "coder",
            "--agents",
            agents.to_str().unwrap(),
            "--cassette",
            cassette.to_str().unwrap(),
        ]))
    }
}

/// `baton approvals ARGS` as the reviewer at the terminal; it must succeed.
async fn review(home: &Home, args: &[&str]) {
    let decided = home.baton(args).output().await.unwrap();
    assert!(
        decided.status.success(),
        "{}",
        String::from_utf8_lossy(&decided.stderr)
    );
}

/// Everything `pipe` gives, kept as it comes (so a test that times out can show it).
fn collect(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let into = kept.clone();
    let task = tokio::spawn(async move {
        let mut pipe = pipe;
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = tokio::io::AsyncReadExt::read(&mut pipe, &mut chunk).await {
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (kept, task)
}

/// A `baton run` going on, its output read as it comes: a full pipe never stalls it, and a
/// test that fails shows how far it got.
struct Running {
    child: tokio::process::Child,
    stdout: (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>),
    stderr: (Arc<Mutex<Vec<u8>>>, tokio::task::JoinHandle<()>),
}

impl Running {
    fn start(mut command: tokio::process::Command) -> Running {
        let mut child = command.spawn().unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// Its progress so far.
    fn progress(&self) -> String {
        String::from_utf8_lossy(&self.stderr.0.lock().unwrap()).into_owned()
    }

    /// The first pending approval, once there is one (or what the run said, if none comes).
    async fn pending(&self, home: &Home) -> Value {
        match tokio::time::timeout(Duration::from_secs(90), pending(home)).await {
            Ok(approval) => approval,
            Err(_) => panic!("no approval appeared; the run says: {}", self.progress()),
        }
    }

    /// `n` pending approvals, once there are (or what the run said, if they do not come).
    async fn pending_n(&self, home: &Home, n: usize) -> Vec<Value> {
        match tokio::time::timeout(Duration::from_secs(90), pending_n(home, n)).await {
            Ok(approvals) => approvals,
            Err(_) => panic!(
                "{n} approvals did not appear; the run says: {}",
                self.progress()
            ),
        }
    }

    /// The exit code, the result (stdout) and the progress (stderr), once it ends — and once
    /// every process it started has gone too (none may hold its terminal).
    async fn finished(mut self) -> (Option<i32>, Value, String) {
        let Ok(status) = tokio::time::timeout(Duration::from_secs(180), self.child.wait()).await
        else {
            self.child.kill().await.unwrap();
            panic!("the run did not end: {}", self.progress());
        };
        let (read_out, read_err) = (self.stdout.1, self.stderr.1);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            read_out.await.unwrap();
            read_err.await.unwrap();
        })
        .await;
        let progress = String::from_utf8_lossy(&self.stderr.0.lock().unwrap()).into_owned();
        assert!(
            drained.is_ok(),
            "a process the run started outlived it: {progress}"
        );
        let printed = self.stdout.0.lock().unwrap().clone();
        let out = match printed.is_empty() {
            true => Value::Null,
            false => serde_json::from_slice(&printed).unwrap_or_else(|e| panic!("{e}: {progress}")),
        };
        (status.unwrap().code(), out, progress)
    }
}

/// The audit log, one JSON record per entry.
async fn audit(home: &Home) -> Vec<Value> {
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let verify = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `decision-kind rule outcome-status` of each audit record of `tool`.
fn decisions(records: &[Value], tool: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["tool"] == tool)
        .map(|r| {
            format!(
                "{} {} {}",
                r["decision"]["kind"].as_str().unwrap(),
                r["decision"]["rule"].as_str().unwrap(),
                r["outcome"]["status"].as_str().unwrap()
            )
        })
        .collect::<Vec<_>>()
}

fn task_of(repo: &Path) -> Value {
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("tasks/index.json")).unwrap())
            .unwrap();
    index["tasks"][0].clone()
}

/// The run's journal (`baton runs show --json`) and its text rendering.
async fn journal(home: &Home, run_id: &str) -> (Value, String) {
    let json = home
        .baton(&["runs", "show", run_id, "--json"])
        .output()
        .await
        .unwrap();
    let text = home
        .baton(&["runs", "show", run_id])
        .output()
        .await
        .unwrap();
    (
        serde_json::from_slice(&json.stdout).unwrap(),
        String::from_utf8_lossy(&text.stdout).into_owned(),
    )
}

/// The `type`s of the run's tool steps, in order.
fn step_types(shown: &Value) -> Vec<String> {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "tool_event")
        .map(|s| s["data"]["value"]["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn codex_builds_a_task_after_a_reviewer_approves_its_command() {
    let test = "codex_builds_a_task_after_a_reviewer_approves_its_command";
    let Some(scene) = Scene::start(test).await else {
        return;
    };
    let (home, repo) = (&scene.home, &scene.repo);
    let child = scene.run("codex-feature.json");

    // Codex asks to run a command beyond its sandbox: a Baton approval, for the builder.
    let approval = child.pending(home).await;
    let task = task_of(repo);
    let alias = task["alias"].as_str().unwrap();
    let worktree = repo.join(".worktrees").join(alias);
    assert_eq!(approval["requester"], "agent:codex-builder");
    assert_eq!(approval["tool"], "codex:exec");
    assert_eq!(approval["args"]["command"], "cat README.md");
    assert_eq!(
        Path::new(approval["args"]["cwd"].as_str().unwrap()),
        worktree.canonicalize().unwrap()
    );
    assert_eq!(
        approval["reason"],
        "rules.codex-review: what Codex asks beyond its sandbox is reviewed"
    );
    assert!(
        !worktree.join("src/limit.txt").exists(),
        "nothing written yet"
    );
    review(
        home,
        &["approvals", "approve", approval["id"].as_str().unwrap()],
    )
    .await;
    let (code, out, progress) = child.finished().await;
    assert_eq!(code, Some(0), "{progress}");
    assert_eq!(
        out["output"],
        format!(
            "Done: {alias} (burst limit of 100) passed its check, was approved by the reviewer and is done."
        )
    );

    // Codex wrote the change in the task's worktree only; the SOP has its diff and a passing
    // report, and the task is done.
    assert_eq!(
        std::fs::read_to_string(worktree.join("src/limit.txt")).unwrap(),
        "burst = 100\n"
    );
    assert!(!repo.join("src/limit.txt").exists());
    let task = task_of(repo);
    assert_eq!(task["status"], "done");
    let run_dir = repo.join(".runs").join(task["runs"][0].as_str().unwrap());
    let patch = std::fs::read_to_string(run_dir.join("diff.patch")).unwrap();
    assert!(patch.contains("+burst = 100"), "{patch}");

    // The audit chain holds both of Codex's requests: the reviewed one (asked, then run with
    // its approval), and the check a rule allowed without anyone.
    let records = audit(home).await;
    assert_eq!(
        decisions(&records, "codex:exec"),
        vec![
            "needs_approval rules.codex-review pending_approval",
            "needs_approval rules.codex-review ok",
            "allow rules.codex-check ok",
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r["tool"] != "codex:exec" || r["principal"] == "agent:codex-builder")
    );

    // The journal lists what Codex did, `runs show` renders it, and its tokens count.
    let run_id = out["run_id"].as_str().unwrap();
    let (shown, text) = journal(home, run_id).await;
    let types = step_types(&shown);
    for kind in [
        "approval_request",
        "exec_command_begin",
        "exec_command_end",
        "patch_apply_begin",
        "patch_apply_end",
        "token_usage",
        "task_complete",
    ] {
        assert!(
            types.iter().any(|t| t == kind),
            "{kind} missing from {types:?}"
        );
    }
    assert!(
        text.contains("asked to run `cat README.md`: approved by a reviewer (approval "),
        "{text}"
    );
    assert!(text.contains("`sh check.sh` exited 0 in "), "{text}");
    assert!(text.contains("patch applied to "), "{text}");
    // The reviewer's time counts as waiting (the console's "Waited for reviewers"); a rule's
    // answer took nobody's time.
    let asked: Vec<&Value> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["data"]["value"])
        .filter(|v| v["type"] == "approval_request")
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(
        asked[0]["waited_ms"].is_u64() && asked[1]["waited_ms"].is_null(),
        "{asked:?}"
    );
    assert!(
        text.contains("asked to run `sh check.sh`: allowed by the policy"),
        "{text}"
    );
    let responses = scene.model.requests().len() as u64;
    assert_eq!(responses, 4, "read, patch, check, final words");
    assert_eq!(
        shown["usage"]["tools_input"],
        json!(INPUT_TOKENS * responses)
    );
    assert_eq!(out["usage"], shown["usage"]);
    assert!(
        progress.contains("codex_codex: asked to run `cat README.md`: approved by a reviewer"),
        "{progress}"
    );

    // The console's run timeline shows them too, in a real browser.
    let Some(browser) = Browser::start(test, 1100, 1400).await else {
        return;
    };
    let server =
        HttpServer::start_with_env(home, &[], &[("ALICE_TOKEN", "alice-secret-token")]).await;
    let base = format!("http://{}", server.addr);
    let client = browser.client.clone();
    super::console::sign_in(&client, &base, "alice-secret-token").await;
    client
        .goto(&format!("{base}/console/runs/{run_id}"))
        .await
        .unwrap();
    let timeline = super::console::text(&client, "ol.timeline").await;
    for line in [
        "↳ asked to run `cat README.md`: approved by a reviewer (approval ",
        "↳ `sh check.sh` exited 0 in ",
        "↳ patch applied to ",
    ] {
        assert!(timeline.contains(line), "{line} missing from {timeline}");
    }
    std::fs::write(
        super::console::screenshot_path("console-run-codex.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    browser.close().await;
}

#[tokio::test]
async fn a_rejected_codex_request_changes_nothing_and_the_task_goes_back() {
    let test = "a_rejected_codex_request_changes_nothing_and_the_task_goes_back";
    let Some(scene) = Scene::start(test).await else {
        return;
    };
    let (home, repo) = (&scene.home, &scene.repo);
    let child = scene.run("codex-feature-rejected.json");
    let approval = child.pending(home).await;
    assert_eq!(approval["args"]["command"], "cat README.md");
    let id = approval["id"].as_str().unwrap();
    review(
        home,
        &[
            "approvals",
            "reject",
            id,
            "--reason",
            "read the spec instead",
        ],
    )
    .await;
    // The run ends, saying the gate refused the manager's `done`: the SOP decides, whatever
    // the builder said.
    let (code, out, progress) = child.finished().await;
    assert_eq!(code, Some(1), "{progress}");
    assert_eq!(out["state"], "done_with_denials");
    assert_eq!(out["denied"][0]["tool"], "sop_advance");
    assert!(
        out["denied"][0]["why"]
            .as_str()
            .unwrap()
            .contains("sop.gate.invalid_transition"),
        "{out}"
    );
    let task = task_of(repo);
    let alias = task["alias"].as_str().unwrap();
    assert_eq!(
        out["output"],
        format!("Not done: {alias} went back to pending; Codex's request was refused.")
    );

    // Codex was told, with the reviewer's reason, and stopped; nothing was written.
    let requests = scene.model.requests();
    assert_eq!(requests.len(), 2, "the prompt, then the refusal");
    let told = last_input(&requests[1]).to_string();
    assert!(told.contains("read the spec instead"), "{told}");
    let worktree = repo.join(".worktrees").join(alias);
    assert!(!worktree.join("src/limit.txt").exists());
    assert_eq!(git(&worktree, &["status", "--porcelain"]), "");
    assert_eq!(task["status"], "pending");
    let records = audit(home).await;
    assert_eq!(
        decisions(&records, "codex:exec"),
        vec![
            "needs_approval rules.codex-review pending_approval",
            "needs_approval rules.codex-review rejected",
        ]
    );
    let run_id = out["run_id"].as_str().unwrap();
    let (_, text) = journal(home, run_id).await;
    assert!(
        text.contains("asked to run `cat README.md`: refused (approval): rejected by "),
        "{text}"
    );
}

#[tokio::test]
async fn codex_cannot_widen_its_sandbox_or_act_outside_the_repository() {
    let test = "codex_cannot_widen_its_sandbox_or_act_outside_the_repository";
    let Some(scene) = Scene::start(test).await else {
        return;
    };
    let home = &scene.home;
    // A folder outside the repository, and a link to it inside.
    std::fs::create_dir_all(home.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(home.path().join("outside"), scene.repo.join("out")).unwrap();
    let call = |id: &str, args: Value| codex_call(&[(id, args)]);
    let reply = |id: &str, args: Value| {
        json!({"message": {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": "codex_codex_reply", "arguments": args.to_string()}}]},
            "finish_reason": "tool_calls"})
    };
    let after = |id: &str| json!({"messages": [{"role": "tool", "tool_call_id": id}]});
    let child = scene.coder(
        "misbehave",
        json!([
            // The model tries to widen Codex's sandbox, then to work outside the repository…
            {"request": {"messages": [{"role": "user", "content": "Goal: misbehave*"}]},
             "response": call("k1", json!({"cwd": ".", "prompt": "x", "sandbox": "danger-full-access"}))},
            {"request": after("k1"), "response": call("k2", json!({"cwd": ".", "prompt": "x", "config": {"approval_policy": "never"}}))},
            {"request": after("k2"), "response": call("k3", json!({"cwd": "/etc", "prompt": "x"}))},
            // …then runs Codex, whose model asks for a command in /etc, a patch outside, and
            // one through the link…
            {"request": after("k3"), "response": call("k4", json!({"cwd": ".", "prompt": "HOSTILE"}))},
            // …continues the thread in another folder, then has another agent continue it…
            {"request": after("k4"), "response": reply("k5", json!({"threadId": "{{k4:/threadId}}", "cwd": "src", "prompt": "x"}))},
            {"request": after("k5"), "response": {"message": {"role": "assistant", "tool_calls": [{"id": "k6", "type": "function",
                "function": {"name": "agent_intruder", "arguments": json!({"task": "{{k4:/threadId}}"}).to_string()}}]}, "finish_reason": "tool_calls"}},
            {"request": {"messages": [{"role": "system", "content": "Reply to threads.*"}, {"role": "user"}]},
             "response": reply("i1", json!({"threadId": "{{user}}", "cwd": ".", "prompt": "x"}))},
            {"request": after("i1"), "response": {"message": {"role": "assistant", "content": "tried"}, "finish_reason": "stop"}},
            // …and continues its own thread properly.
            {"request": after("k6"), "response": reply("k7", json!({"threadId": "{{k4:/threadId}}", "cwd": ".", "prompt": "SAY HI"}))},
            // Last, it names the link as Codex's folder: Codex would write where it points.
            {"request": after("k7"), "response": call("k8", json!({"cwd": "out", "prompt": "x"}))},
            {"request": after("k8"), "response": {"message": {"role": "assistant", "content": "{{k4:/content}} / {{k7:/content}}"}, "finish_reason": "stop"}},
        ]),
    );
    let (_, out, progress) = child.finished().await;
    // A thread goes on only for its own caller, in its own folder.
    assert!(progress.contains("works in `"), "{progress}");
    assert!(
        progress.contains("denied by rule `codex.thread`: thread `"),
        "{progress}"
    );
    assert!(out["output"].as_str().unwrap().ends_with(" / hi"), "{out}");
    assert!(!home.path().join("outside/escaped.txt").exists());
    assert!(
        progress.contains("/outside`, outside the writable roots"),
        "{progress}"
    );
    assert!(
        progress.contains("`sandbox` is not the caller's to set"),
        "{progress}"
    );
    assert!(
        progress.contains("`config` is not the caller's to set"),
        "{progress}"
    );
    assert!(progress.contains("this run works in"), "{progress}");
    // No reviewer was asked: the sandbox refuses both at once, and Codex is told so.
    let approvals = home
        .baton(&["approvals", "list", "--json"])
        .output()
        .await
        .unwrap();
    let approvals: Value = serde_json::from_slice(&approvals.stdout).unwrap();
    assert_eq!(approvals["matched"], 0, "{approvals}");
    let said = out["output"].as_str().unwrap();
    assert!(said.starts_with("Hostile attempts over: "), "{said}");
    assert!(!home.path().join("escaped.txt").exists());
    let records = audit(home).await;
    assert_eq!(
        decisions(&records, "codex:exec"),
        vec!["forbid sandbox.workspace-write.outside-roots denied"]
    );
    // The patch through the link never lands outside: Codex's own sandbox stops it, or Codex
    // asks and the gate, resolving the link, refuses.
    assert!(
        decisions(&records, "codex:patch")
            .iter()
            .all(|d| d == "forbid sandbox.workspace-write.outside-roots denied"),
        "{records:?}"
    );
    assert!(!decisions(&records, "codex:patch").is_empty());
    let told: Vec<String> = scene
        .model
        .requests()
        .iter()
        .map(|r| last_input(r).to_string())
        .collect();
    assert!(
        told.iter().any(
            |t| t.contains("refused by Baton's policy (sandbox.workspace-write.outside-roots)")
        ),
        "{told:?}"
    );
}

fn codex_call(calls: &[(&str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, args)| {
            json!({"id": id, "type": "function",
            "function": {"name": "codex_codex", "arguments": args.to_string()}})
        })
        .collect();
    json!({"message": {"role": "assistant", "tool_calls": calls}, "finish_reason": "tool_calls"})
}

/// Every pending approval, once there are `n`.
async fn pending_n(home: &Home, n: usize) -> Vec<Value> {
    for _ in 0..1200 {
        let output = home
            .baton(&["approvals", "list", "--json"])
            .output()
            .await
            .unwrap();
        let list: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if let Some(all) = list["approvals"].as_array()
            && all.len() == n
        {
            return all.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} approvals did not appear");
}

#[tokio::test]
async fn two_codex_sessions_at_once_each_get_their_own_answer() {
    let test = "two_codex_sessions_at_once_each_get_their_own_answer";
    let Some(scene) = Scene::start(test).await else {
        return;
    };
    let (home, repo) = (&scene.home, &scene.repo);
    std::fs::write(repo.join("A.txt"), "alpha\n").unwrap();
    std::fs::write(repo.join("B.txt"), "beta\n").unwrap();
    // One turn, two Codex calls: they run at once on the one `codex mcp-server`.
    let child = scene.coder(
        "pair",
        json!([
            {"request": {"messages": [{"role": "user", "content": "Goal: pair*"}]},
             "response": codex_call(&[("k1", json!({"cwd": ".", "prompt": "PAIR A"})),
                                      ("k2", json!({"cwd": ".", "prompt": "PAIR B"}))])},
            {"request": {"messages": [{"role": "tool", "tool_call_id": "k1"}, {"role": "tool", "tool_call_id": "k2"}]},
             "response": {"message": {"role": "assistant", "content": "{{k1:/content}} | {{k2:/content}}"}, "finish_reason": "stop"}},
        ]),
    );
    let both = child.pending_n(home, 2).await;
    for approval in &both {
        let id = approval["id"].as_str().unwrap();
        let verdict = match approval["args"]["command"].as_str().unwrap() {
            "cat A.txt" => vec!["approvals", "approve", id],
            "cat B.txt" => vec!["approvals", "reject", id, "--reason", "not B"],
            other => panic!("unexpected command {other}"),
        };
        review(home, &verdict).await;
    }
    let (code, out, progress) = child.finished().await;
    assert_eq!(code, Some(0), "{progress}");
    let said = out["output"].as_str().unwrap();
    let (a, b) = said.split_once(" | ").unwrap();
    assert!(
        a.starts_with("a-read saw: ") && a.contains("alpha"),
        "{said}"
    );
    assert!(
        b.starts_with("b-read saw: ") && b.contains("not B") && !b.contains("beta"),
        "{said}"
    );
    // Each session's requests and events are journaled under its own call.
    let (shown, _) = journal(home, out["run_id"].as_str().unwrap()).await;
    let summaries = |call: &str| -> Vec<String> {
        shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "tool_event")
            .filter(|s| {
                s["data"]["key"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/tool/{call}/"))
            })
            .map(|s| s["data"]["value"]["summary"].as_str().unwrap().to_owned())
            .collect()
    };
    let (k1, k2) = (summaries("k1"), summaries("k2"));
    assert!(
        k1.iter()
            .any(|s| s.starts_with("asked to run `cat A.txt`: approved by a reviewer")),
        "{k1:?}"
    );
    assert!(k1.iter().all(|s| !s.contains("B.txt")), "{k1:?}");
    assert!(
        k2.iter()
            .any(|s| s.starts_with("asked to run `cat B.txt`: refused (approval): rejected by ")),
        "{k2:?}"
    );
    assert!(k2.iter().all(|s| !s.contains("A.txt")), "{k2:?}");
}

#[tokio::test]
async fn a_run_stopped_while_codex_waits_withdraws_the_approval() {
    let test = "a_run_stopped_while_codex_waits_withdraws_the_approval";
    let Some(scene) = Scene::start(test).await else {
        return;
    };
    let (home, repo) = (&scene.home, &scene.repo);
    let child = scene.run("codex-feature.json");
    let approval = child.pending(home).await;
    let id = approval["id"].as_str().unwrap().to_owned();
    // The person at the terminal presses Ctrl-C (or the service manager stops it).
    let pid = child.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let (code, _, progress) = child.finished().await;
    assert_eq!(code, Some(1), "{progress}");
    assert!(progress.contains("was cancelled"), "{progress}");
    // The request is withdrawn, on the record: no reviewer can approve it for nobody.
    let listed = home
        .baton(&["approvals", "list", "--all", "--json"])
        .output()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let found = listed["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(found["state"], "cancelled", "{found}");
    let late = home
        .baton(&["approvals", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(!late.status.success());
    let records = audit(home).await;
    assert_eq!(
        decisions(&records, "codex:exec"),
        vec![
            "needs_approval rules.codex-review pending_approval",
            "needs_approval rules.codex-review cancelled",
        ]
    );
    assert_eq!(
        scene.model.requests().len(),
        1,
        "Codex was stopped, not answered"
    );
    let task = task_of(repo);
    let worktree = repo
        .join(".worktrees")
        .join(task["alias"].as_str().unwrap());
    assert!(!worktree.join("src/limit.txt").exists());
}
