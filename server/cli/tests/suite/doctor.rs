//! `baton doctor` on this machine (everything the test command installs: ONNX Runtime,
//! PostgreSQL, bubblewrap, a model endpoint on the loopback) and on one where ONNX Runtime and
//! PostgreSQL are missing: the right line for each, with its fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pretty_assertions::assert_eq;
use serde_json::Value;

use super::common::Home;

const TEST: &str = "suite::doctor";

/// What a run printed, with this run's paths, ports and digests masked.
fn masked(home: &Home, text: &[u8], replace: &[(&str, &str)]) -> String {
    let mut text = String::from_utf8_lossy(text).into_owned();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    text = text
        .replace(&home.path().display().to_string(), "[HOME]")
        .replace(env!("CARGO_BIN_EXE_baton"), "[BATON]");
    // The policy file's digest changes with nothing a reader cares about here.
    mask_after(&text, "sha256 ", 12)
}

/// `text` with the `len` characters after each `marker` replaced by `#`.
fn mask_after(text: &str, marker: &str, len: usize) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let cut = tail.char_indices().nth(len).map_or(tail.len(), |(i, _)| i);
        out.push_str(&"#".repeat(tail[..cut].chars().count()));
        rest = &tail[cut..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn on_this_machine_every_check_is_ok_and_names_what_it_found() {
    let Some(ort) = baton_test_support::provided("ORT_DYLIB_PATH", TEST) else {
        return;
    };
    let Some((_cluster, url)) = baton_test_support::pg_database(TEST) else {
        return;
    };
    let model = baton_test_support::ResponsesServer::start(|_| Vec::new()).await;
    let home = Home::new(&format!(
        "[store]\nurl = \"{url}\"\n\n[model]\nbase_url = \"{}\"\napi_key_env = \"DOCTOR_KEY\"\n",
        model.base_url
    ));
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\nwritable_roots = [\"repo\"]\n\n\
         [[rules]]\nid = \"rx-reviewed\"\ntool = \"rx_validate\"\naction = \"require-approval\"\nreason = \"reviewed\"\n",
    )
    .unwrap();
    // Awaited: the model endpoint answers on this test's runtime meanwhile.
    let output = home
        .baton(&["doctor"])
        .env("ORT_DYLIB_PATH", &ort)
        .env("DOCTOR_KEY", "k")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .await
        .unwrap();
    let stdout = masked(
        &home,
        &output.stdout,
        &[
            (&url, "[PG]"),
            (&ort.display().to_string(), "[ORT]"),
            (&model.base_url, "[MODEL]"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{output:?}");
    insta::assert_snapshot!("doctor_this_machine", stdout);
}

#[test]
fn without_onnx_runtime_or_postgresql_the_checks_say_so_and_how_to_fix_it() {
    let home = Home::new("[store]\nurl = \"postgres://baton@127.0.0.1:1/baton\"\n");
    let run = |args: &[&str]| {
        home.baton_std(args)
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("BATON_STORE_URL")
            .output()
            .unwrap()
    };
    let output = run(&["doctor"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    insta::assert_snapshot!("doctor_missing", masked(&home, &output.stdout, &[]));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "error: 1 check failed"
    );

    let json: Value = serde_json::from_slice(&run(&["doctor", "--json"]).stdout).unwrap();
    let statuses: Vec<(&str, &str)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("config", "ok"),
            ("policy", "ok"),
            ("store", "fail"),
            ("onnx", "warn"),
            ("commands", "ok"),
            ("model", "warn"),
            ("clients", "ok"),
        ]
    );
}

#[test]
fn a_config_that_does_not_load_is_the_one_failed_check() {
    let home = Home::new("[telemetry]\nmetric = true\n");
    let output = home.baton_std(&["doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = masked(&home, &output.stdout, &[]);
    assert!(stdout.starts_with("FAIL  config"), "{stdout}");
    assert!(stdout.contains("unknown field `metric`"), "{stdout}");
}
