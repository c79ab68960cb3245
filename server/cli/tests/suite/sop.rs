//! The repo-orchestration pack through the real `baton` binary: many processes at once, the
//! policy gate in front of it, and `baton sop guard` as a hook would run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use super::common::{Home, git};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// A Baton home whose policy lets tools write inside `repo/` (a fresh git repository).
fn setup(sandbox: &str) -> (Home, PathBuf) {
    setup_with(sandbox, "")
}

/// [`setup`] with `extra` in the config.
fn setup_with(sandbox: &str, extra: &str) -> (Home, PathBuf) {
    let home = Home::new(extra);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("src/lib.rs"), "pub fn hello() {}\n").unwrap();
    std::fs::write(repo.join(".gitignore"), ".runs/\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    std::fs::write(
        home.path().join("policy.toml"),
        format!("sandbox = \"{sandbox}\"\napproval = \"never\"\nwritable_roots = [\"repo\"]\n"),
    )
    .unwrap();
    (home, repo.canonicalize().unwrap())
}

async fn call(home: &Home, tool: &str, args: &Value) -> Result<Value, String> {
    let output = home
        .baton(&["tools", "call", tool, "--args", &args.to_string()])
        .env("BATON_LOG", "warn")
        .output()
        .await
        .unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// A feature with one planned task and one with a spec; returns the task aliases.
async fn planned(home: &Home, repo: &Path) -> (String, String) {
    let repo = repo.display().to_string();
    call(home, "sop_prd_create", &json!({"repo": repo, "feature": "api", "brief": {"title": "API",
        "requirements": [{"title": "Shared endpoint"}, {"title": "Session token check", "description": "Validate the token"}]}}))
        .await
        .unwrap();
    let tasks = call(
        home,
        "sop_tasks_generate",
        &json!({"repo": repo, "feature": "api"}),
    )
    .await
    .unwrap();
    let plain = tasks["created"][0]["alias"].as_str().unwrap().to_owned();
    let secure = tasks["created"][1]["alias"].as_str().unwrap().to_owned();
    call(
        home,
        "sop_spec_create",
        &json!({"repo": repo, "task": secure, "summary": "Check tokens", "files": ["src/lib.rs"]}),
    )
    .await
    .unwrap();
    call(
        home,
        "sop_plan_create",
        &json!({"repo": repo, "feature": "api"}),
    )
    .await
    .unwrap();
    (plain, secure)
}

/// Call `tool` over Streamable HTTP at `url` as the principal of `token`.
async fn call_http(url: &str, token: &str, tool: &str, args: &Value) -> Result<Value, String> {
    use rmcp::ServiceExt as _;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            url.to_owned(),
        )
        .auth_header(token.to_owned()),
    );
    let client = ().serve(transport).await.unwrap();
    let mut params = rmcp::model::CallToolRequestParams::new(tool.to_owned());
    params.arguments = args.as_object().cloned();
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    let result = match result {
        Ok(result) => result,
        Err(error) => return Err(error.to_string()),
    };
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect();
    match (result.is_error, result.structured_content) {
        (Some(false) | None, Some(value)) => Ok(value),
        _ => Err(text),
    }
}

fn sha(token: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn thirty_two_agents_claim_once_and_processes_lose_no_update() {
    let tokens: String = (0..32)
        .map(|n| {
            format!(
                "[[http.tokens]]\nprincipal = \"agent-{n}\"\nroles = [\"agent\"]\ntoken_sha256 = \"{}\"\n",
                sha(&format!("token-{n}"))
            )
        })
        .collect();
    let (home, repo) = setup_with("workspace-write", &tokens);
    let (task, _) = planned(&home, &repo).await;
    let repo_arg = repo.display().to_string();

    // 32 agents (each its own principal) race for one task: exactly one claim wins. A claim
    // belongs to the caller: naming another agent is refused.
    let server = super::common::HttpServer::start(&home, &[]).await;
    let url = server.url();
    let impostor = call_http(
        &url,
        "token-1",
        "sop_task_claim",
        &json!({"repo": repo_arg, "task": task, "agent": "agent-0"}),
    )
    .await
    .unwrap_err();
    assert!(
        impostor.contains("`agent-0` is not the caller: the SOP acts as `agent-1`"),
        "{impostor}"
    );
    let claims = (0..32).map(|n| {
        let args = json!({"repo": repo_arg, "task": task});
        let url = &url;
        async move { call_http(url, &format!("token-{n}"), "sop_task_claim", &args).await }
    });
    let results = futures::future::join_all(claims).await;
    let mut server = server;
    server.child.kill().await.unwrap();
    let winners: Vec<&Value> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:#?}");
    for refused in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            refused.contains("sop.claim") && refused.contains("is claimed by `agent-"),
            "{refused}"
        );
    }
    let winner = winners[0]["agent"].as_str().unwrap().to_owned();
    let got = call(
        &home,
        "sop_task_get",
        &json!({"repo": repo_arg, "task": task}),
    )
    .await
    .unwrap();
    assert_eq!(got["task"]["claimed_by"]["agent"], winner);
    assert_eq!(got["task"]["runs"].as_array().unwrap().len(), 1);

    // 32 processes update the same task at once: every update lands.
    let updates = (0..32).map(|n| {
        let args = json!({"repo": repo_arg, "task": task, "metadata": {format!("note-{n}"): n}});
        let home = &home;
        async move { call(home, "sop_task_update", &args).await }
    });
    let results = futures::future::join_all(updates).await;
    assert!(results.iter().all(Result::is_ok), "{results:#?}");
    let got = call(
        &home,
        "sop_task_get",
        &json!({"repo": repo_arg, "task": task}),
    )
    .await
    .unwrap();
    let metadata = got["task"]["metadata"].as_object().unwrap();
    assert_eq!(metadata.len(), 32, "{metadata:?}");
    for n in 0..32 {
        assert_eq!(metadata[&format!("note-{n}")], n);
    }
    assert_eq!(
        got["task"]["claimed_by"]["agent"], winner,
        "the claim survived the updates"
    );

    // Every call went through the gate and left an audit record (the impostor's refused claim
    // included).
    let output = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verified = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        verified.starts_with("audit log verified: 71 records"),
        "{verified}"
    );
}

#[tokio::test]
async fn read_only_denies_writes_and_commands_by_rule() {
    let (home, repo) = setup("read-only");
    let repo_arg = repo.display().to_string();
    let write = call(
        &home,
        "repo_write",
        &json!({"repo": repo_arg, "path": "a.txt", "content": "x"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        write,
        "error: repo_write: denied by rule `sandbox.read-only`: the sandbox is `read-only` and `repo_write` has effect `write`"
    );
    let exec = call(
        &home,
        "repo_exec",
        &json!({"repo": repo_arg, "argv": ["touch", "b.txt"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        exec,
        "error: repo_exec: denied by rule `sandbox.read-only`: the sandbox is `read-only` and `repo_exec` has effect `exec`"
    );
    assert!(!repo.join("a.txt").exists() && !repo.join("b.txt").exists());
    // Reads still work.
    let read = call(
        &home,
        "repo_read",
        &json!({"repo": repo_arg, "path": "src/lib.rs"}),
    )
    .await
    .unwrap();
    assert_eq!(read["content"], "pub fn hello() {}");
}

#[tokio::test]
async fn workspace_write_keeps_writes_in_the_roots_even_when_repo_is_left_out() {
    let (home, repo) = setup("workspace-write");
    // Without `repo` the tool works in the current directory (the home, outside the roots).
    let refused = call(
        &home,
        "sop_prd_create",
        &json!({"feature": "x", "brief": {"title": "X"}}),
    )
    .await
    .unwrap_err();
    assert!(
        refused.contains("sandbox.workspace-write.outside-roots"),
        "{refused}"
    );
    assert!(!home.path().join("tasks").exists());
    let inside = call(
        &home,
        "sop_prd_create",
        &json!({"repo": repo.display().to_string(), "feature": "x", "brief": {"title": "X"}}),
    )
    .await;
    assert!(inside.is_ok(), "{inside:?}");
}

#[tokio::test]
async fn the_guard_finds_old_and_outdated_specs_and_fails_the_hook() {
    let (home, repo) = setup("workspace-write");
    let (_, secure) = planned(&home, &repo).await;
    let repo_arg = repo.display().to_string();
    // A second spec, reviewed 31 days ago (its front matter as a review that long ago left it).
    let old_task = call(
        &home,
        "sop_tasks_generate",
        &json!({"repo": repo_arg, "feature": "api",
        "tasks": [{"title": "Old migration", "triggers": ["migration"]}]}),
    )
    .await
    .unwrap()["created"][0]["alias"]
        .as_str()
        .unwrap()
        .to_owned();
    let spec = call(
        &home,
        "sop_spec_create",
        &json!({"repo": repo_arg, "task": old_task, "summary": "Move a column"}),
    )
    .await
    .unwrap()["spec"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = repo.join(spec);
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let old = today.checked_sub(jiff::Span::new().days(31)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replace(
        &format!("last_review = \"{today}\""),
        &format!("last_review = \"{old}\""),
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    // Commit the SOP files, then the clean guard passes… except for the old spec.
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "sop"]);
    // The file the security spec governs changes after its review.
    std::fs::write(
        repo.join("src/lib.rs"),
        "pub fn hello() { /* changed */ }\n",
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "change lib"]);

    let output = home
        .baton(&["sop", "guard", "--repo", &repo_arg, "--format", "json"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut kinds: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["task"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 2, "{report:#}");
    assert_eq!(kinds[0].0, "age");
    assert_eq!(kinds[1], ("changed".to_owned(), secure.clone()));
    let age = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "age")
        .unwrap();
    assert!(
        age["message"]
            .as_str()
            .unwrap()
            .ends_with("is stale: last reviewed 31 days ago"),
        "{age}"
    );
    let changed = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "changed")
        .unwrap();
    assert_eq!(changed["files"], json!(["src/lib.rs"]));
    assert!(String::from_utf8_lossy(&output.stderr).contains("blocking spec findings"));

    // SARIF for CI.
    let output = home
        .baton(&["sop", "guard", "--repo", &repo_arg, "--format", "sarif"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let rules: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 2);
    assert!(rules.contains(&"spec/age") && rules.contains(&"spec/changed"));

    // Re-reviewing both specs clears the guard.
    for task in [&secure, &old_task] {
        call(&home, "sop_spec_create", &json!({"repo": repo_arg, "task": task, "summary": "Reviewed again", "files": ["src/lib.rs"]}))
            .await
            .unwrap();
    }
    let output = home
        .baton(&["sop", "guard", "--repo", &repo_arg])
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2 spec(s) checked, 0 finding(s), none blocking\n"
    );
}

/// Without a config file, the `./baton.toml` the next start would read is Baton's own: a
/// command whose writable root holds that folder is refused, since it could plant one (and
/// with it another policy, store or data folder); once the file exists the command runs, and
/// neither it nor the checkpoint signing key can be read or rewritten.
#[tokio::test]
async fn a_command_cannot_plant_the_config_the_next_start_reads_nor_read_the_key() {
    let host = baton_sop::host_confinement();
    if !baton_test_support::needs(
        "sop::a_command_cannot_plant_the_config_the_next_start_reads_nor_read_the_key",
        host.backend.is_some(),
        host.unavailable.as_deref().unwrap_or("no backend"),
    ) {
        return;
    }
    let home = Home::new("");
    std::fs::remove_file(home.config()).unwrap();
    git(home.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\".\"]\n",
    )
    .unwrap();
    let key = home.path().join("audit.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let exec = |script: &str| {
        let args = json!({"repo": home.path(), "argv": [script], "shell": true});
        let mut command = home.baton(&["tools", "call", "repo_exec", "--args", &args.to_string()]);
        command
            .env_remove("BATON_CONFIG")
            .env("BATON_AUDIT_KEY", &key)
            .env("BATON_LOG", "warn");
        command
    };
    let plant = "printf '[policy]\\nfile = \"mine.toml\"\\n' > baton.toml; cat audit.key";
    let output = exec(plant).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let config = home.path().join("baton.toml");
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "Baton's own file {} does not exist, and it would be in the writable root",
            config.display()
        )),
        "{stderr}"
    );
    assert!(!config.exists());

    std::fs::write(&config, "").unwrap();
    let output = exec(&format!("{plant}; echo ran")).output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["stdout"], "ran\n", "{out}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "ab".repeat(32));
}
