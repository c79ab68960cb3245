//! The `baton` command line: output people and scripts read, exit codes, configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::common::Home;
use pretty_assertions::assert_eq;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(home: &Home, args: &[&str]) -> Run {
    let output = home.baton_std(args).output().unwrap();
    let clean = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes).replace(&home.path().display().to_string(), "[HOME]")
    };
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: clean(&output.stdout),
        stderr: clean(&output.stderr),
    }
}

#[test]
fn tools_list_prints_a_table_and_json() {
    let home = Home::new("");
    let table = run(&home, &["tools", "list"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    insta::assert_snapshot!("tools_list", table.stdout);

    let json = run(&home, &["tools", "list", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let names: Vec<&str> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, super::common::BATON_TOOLS.to_vec());
    assert_eq!(value[1]["effect"], "read");
    assert_eq!(
        value[1]["input_schema"]["required"],
        serde_json::json!(["query"])
    );
}

#[test]
fn tools_call_prints_the_structured_result() {
    let home = Home::new("");
    let search = run(
        &home,
        &[
            "tools",
            "call",
            "knowledge_search",
            "--args",
            r#"{"query": "hash-chained audit"}"#,
        ],
    );
    assert_eq!(search.code, 0, "{}", search.stderr);
    insta::assert_snapshot!("tools_call_search", search.stdout);
    assert!(search.stderr.is_empty(), "stderr: {}", search.stderr);

    let info = run(&home, &["tools", "call", "baton_info"]);
    assert_eq!(info.code, 0);
    let value: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(value["data_dir"], "[HOME]/.baton");
}

#[test]
fn tools_call_errors_exit_non_zero_with_a_clear_message() {
    let home = Home::new("");
    let cases = [
        (
            "bad JSON",
            vec![
                "tools",
                "call",
                "knowledge_search",
                "--args",
                "{\"query\": ",
            ],
        ),
        (
            "not an object",
            vec!["tools", "call", "knowledge_search", "--args", "[\"gate\"]"],
        ),
        (
            "args that fail the schema",
            vec![
                "tools",
                "call",
                "knowledge_search",
                "--args",
                r#"{"query": "x", "limit": -1}"#,
            ],
        ),
        (
            "unknown field",
            vec![
                "tools",
                "call",
                "knowledge_search",
                "--args",
                r#"{"query": "x", "top": 3}"#,
            ],
        ),
        ("unknown tool", vec!["tools", "call", "dsp_nothing"]),
        (
            "unknown pack",
            vec![
                "tools",
                "call",
                "knowledge_search",
                "--args",
                r#"{"query": "x", "pack": "rx"}"#,
            ],
        ),
    ];
    let mut report = String::new();
    for (name, args) in cases {
        let result = run(&home, &args);
        assert!(result.stdout.is_empty(), "{name}: stdout {}", result.stdout);
        report.push_str(&format!(
            "{name}: exit {}\n{}\n",
            result.code, result.stderr
        ));
    }
    insta::assert_snapshot!("tools_call_errors", report);
}

#[test]
fn configuration_errors_name_the_file_and_key() {
    let cases = [
        ("unknown key", "[server]\npage_sise = 3\n"),
        ("wrong type", "[server]\npage_size = \"ten\"\n"),
        ("bad TOML", "[server\n"),
        ("no secret", "[[http.tokens]]\nprincipal = \"ci\"\n"),
        (
            "bad hash",
            "[[http.tokens]]\nprincipal = \"ci\"\ntoken_sha256 = \"abc\"\n",
        ),
        (
            "unknown role",
            "[[http.tokens]]\nprincipal = \"ci\"\nroles = [\"root\"]\ntoken_env = \"X\"\n",
        ),
    ];
    let mut report = String::new();
    for (name, toml) in cases {
        let home = Home::new("");
        std::fs::write(home.config(), toml).unwrap();
        let result = run(&home, &["tools", "list"]);
        report.push_str(&format!(
            "{name}: exit {}\n{}\n",
            result.code, result.stderr
        ));
    }
    let home = Home::new("");
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"danger-full-access\"\nfull_access_reason = \"demo\"\n",
    )
    .unwrap();
    let result = run(&home, &["tools", "list"]);
    report.push_str(&format!(
        "full access without the flag: exit {}\n{}\n",
        result.code, result.stderr
    ));
    let home = Home::new("");
    let result = run(&home, &["--config", "missing.toml", "tools", "list"]);
    report.push_str(&format!(
        "missing file: exit {}\n{}\n",
        result.code, result.stderr
    ));
    insta::assert_snapshot!("config_errors", report);
}

#[test]
fn help_everywhere() {
    let home = Home::new("");
    let mut report = String::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["tools", "--help"],
        vec!["tools", "list", "--help"],
        vec!["tools", "call", "--help"],
        vec!["approvals", "--help"],
        vec!["approvals", "reject", "--help"],
        vec!["runs", "--help"],
        vec!["audit", "--help"],
        vec!["run", "--help"],
        vec!["run", "resume", "--help"],
        vec!["sop", "guard", "--help"],
        vec!["store", "copy", "--help"],
        vec!["worker", "--help"],
        vec!["workers", "--help"],
        vec!["completions", "--help"],
    ] {
        let result = run(&home, &args);
        assert_eq!(result.code, 0, "{args:?}");
        report.push_str(&format!("$ baton {}\n{}\n", args.join(" "), result.stdout));
    }
    insta::assert_snapshot!("help", report);
}

/// The shipped binary has no way around the gate: no `--gate-off`, no bench commands (they
/// live in the separate `baton-bench` binary).
#[test]
fn the_shipped_binary_cannot_turn_the_gate_off() {
    let home = Home::new("");
    let gate_off = run(&home, &["serve", "--gate-off"]);
    assert_eq!(gate_off.code, 2, "{}", gate_off.stderr);
    assert!(
        gate_off
            .stderr
            .contains("unexpected argument '--gate-off' found"),
        "{}",
        gate_off.stderr
    );
    for hidden in ["bench", "bench-bare"] {
        let result = run(&home, &[hidden]);
        assert_eq!(result.code, 2, "{}", result.stderr);
        assert!(
            result
                .stderr
                .contains(&format!("unrecognized subcommand '{hidden}'")),
            "{}",
            result.stderr
        );
    }
    let help = run(&home, &["--help"]);
    assert!(!help.stdout.contains("bench"), "{}", help.stdout);
}

/// The CLI acts as the operating-system user: `USER=someone-else` does not make one's own
/// request someone else's to approve. An approved call runs with `--approval ID`.
#[test]
fn the_cli_principal_is_the_os_user_whatever_user_says() {
    let home = Home::new("");
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let args = serde_json::json!({
        "repo": home.path().join("repo"),
        "path": "NOTE.md",
        "content": "hi"
    })
    .to_string();
    let asked = run(&home, &["tools", "call", "repo_write", "--args", &args]);
    assert_eq!(asked.code, 3, "{}", asked.stderr);
    let pending: serde_json::Value = serde_json::from_str(&asked.stdout).unwrap();
    let id = pending["pending_approval"]["approval_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        asked.stderr.contains(&format!("--approval {id}")),
        "{}",
        asked.stderr
    );
    let me = baton_cli::config::os_user();

    let spoofed = home
        .baton_std(&["approvals", "approve", &id])
        .env("USER", "someone-else")
        .env("LOGNAME", "someone-else")
        .output()
        .unwrap();
    assert_eq!(spoofed.status.code(), Some(1));
    let message = String::from_utf8_lossy(&spoofed.stderr);
    assert!(
        message.contains(&format!("`{me}` requested this call and cannot decide it")),
        "{message}"
    );
    assert!(!home.path().join("repo/NOTE.md").exists());

    // Another person (a reviewer principal, through the same gate) approves; the CLI then
    // runs exactly that call once.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = baton_cli::Config::load(Some(&home.config())).unwrap();
        let app = baton_cli::App::build(config).unwrap();
        let decided = app
            .gate()
            .call(baton_kit::Invocation {
                principal: std::sync::Arc::new(baton_kit::Principal::new(
                    "rev",
                    [baton_kit::Role::Reviewer],
                )),
                tool: "approvals_decide".into(),
                args: serde_json::json!({ "id": id, "decision": "approve" }),
                approval_id: None,
                context: baton_kit::ToolContext::new(Default::default()),
            })
            .await;
        assert!(decided.is_ok(), "{decided:?}");
    });
    drop(runtime);
    let ran = run(
        &home,
        &[
            "tools",
            "call",
            "repo_write",
            "--args",
            &args,
            "--approval",
            &id,
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(home.path().join("repo/NOTE.md")).unwrap(),
        "hi"
    );
    let again = run(
        &home,
        &[
            "tools",
            "call",
            "repo_write",
            "--args",
            &args,
            "--approval",
            &id,
        ],
    );
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("it was already used"),
        "{}",
        again.stderr
    );
}

/// The completion scripts are real ones: bash's, sourced into a bash, completes `baton wor`
/// to the two worker commands; zsh's and fish's are those shells' formats; another shell is
/// refused by name.
#[test]
fn completions_for_bash_zsh_and_fish() {
    let home = Home::new("");
    let bash = run(&home, &["completions", "bash"]);
    assert_eq!(bash.code, 0);
    let script = home.path().join("baton.bash");
    std::fs::write(&script, &bash.stdout).unwrap();
    let completed = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(baton wor); COMP_CWORD=1; _baton baton wor baton; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let mut words: Vec<String> = String::from_utf8_lossy(&completed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    words.sort();
    assert_eq!(
        words,
        vec!["worker", "workers"],
        "{}",
        String::from_utf8_lossy(&completed.stderr)
    );
    let zsh = run(&home, &["completions", "zsh"]);
    assert!(zsh.stdout.starts_with("#compdef baton"), "{}", zsh.stdout);
    let fish = run(&home, &["completions", "fish"]);
    assert!(
        fish.stdout
            .contains("complete -c baton -n \"__fish_baton_needs_command\" -f -a \"workers\""),
        "{}",
        fish.stdout
    );
    let tcsh = run(&home, &["completions", "tcsh"]);
    assert_eq!(tcsh.code, 2);
    assert!(
        tcsh.stderr.contains("invalid value 'tcsh'"),
        "{}",
        tcsh.stderr
    );
}
