//! The rx pack through the real binary: a rule edited on disk applies to the next call of a
//! running server (and a broken edit keeps the last good rules), the tables are MCP resources,
//! and `baton rx validate` / `baton eval rx` work on the committed fixtures and eval set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use super::common::{Home, HttpServer};
use pretty_assertions::assert_eq;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A home whose knowledge root holds a copy of the committed rule tables.
fn home_with_rules() -> Home {
    let home = Home::new("");
    let rules = home.path().join("knowledge/rx");
    std::fs::create_dir_all(&rules).unwrap();
    for entry in std::fs::read_dir(repo().join("knowledge/rx")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, rules.join(path.file_name().unwrap())).unwrap();
    }
    home
}

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("fixtures/rx").join(name)).unwrap()).unwrap()
}

async fn validate(client: &RunningService<RoleClient, ()>, prescription: &Value) -> Value {
    let mut params = CallToolRequestParams::new("rx_validate");
    params.arguments = json!({ "prescription": prescription }).as_object().cloned();
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    result.structured_content.unwrap()
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_rule_edited_on_disk_applies_to_the_next_call_without_restart() {
    let home = home_with_rules();
    let server = HttpServer::start(&home, &[]).await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();

    // Four months old on the check date: inside the 6-month S8 validity.
    let mut rx = fixture("nsw-cat2-sas-b.json");
    rx["authored_on"] = json!("2026-06-01");
    rx["treatment_started"] = json!("2026-06-01");
    rx["repeats"] = json!(0);
    let before = validate(&client, &rx).await;
    assert_eq!(
        (before["valid"].clone(), codes(&before)),
        (json!(true), vec![])
    );

    // The law changes: S8 prescriptions are valid 3 months. One number in one table.
    let table = home.path().join("knowledge/rx/federal.toml");
    let text = std::fs::read_to_string(&table).unwrap();
    let edited = text.replacen(
        "title = \"An S8 prescription is valid for 6 months\"\ncode = \"E-RX-EXPIRED\"\ncheck = \"validity\"\nmonths = 6",
        "title = \"An S8 prescription is valid for 3 months\"\ncode = \"E-RX-EXPIRED\"\ncheck = \"validity\"\nmonths = 3",
        1,
    );
    assert_ne!(edited, text, "the validity rule was not found to edit");
    std::fs::write(&table, &edited).unwrap();
    let started = Instant::now();
    let after = loop {
        let report = validate(&client, &rx).await;
        if report["valid"] == json!(false) || started.elapsed() > Duration::from_secs(10) {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(codes(&after), vec!["E-RX-EXPIRED".to_owned()], "{after:#}");
    assert_eq!(after["findings"][0]["rule"], json!("FED-19"));
    assert!(
        after["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("valid for 3 months"),
        "{after:#}"
    );
    assert_ne!(after["rules_version"], before["rules_version"]);

    // A broken edit keeps the last good rules (and says why in the log).
    std::fs::write(&table, format!("{edited}\n[[rule]]\nid = \"FED-99\"\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = validate(&client, &rx).await;
    assert_eq!(kept["rules_version"], after["rules_version"]);
    assert_eq!(codes(&kept), vec!["E-RX-EXPIRED".to_owned()]);
    assert!(
        server
            .log()
            .contains("rx rules change ignored; the last good version stays in force")
            && server.log().contains("missing field `version`"),
        "{}",
        server.log()
    );

    // The tables are resources, read as they are now.
    let resources = client.list_all_resources().await.unwrap();
    let federal = resources
        .iter()
        .find(|r| r.uri == "knowledge://rx/federal.toml")
        .expect("the federal table is listed");
    assert_eq!(federal.mime_type.as_deref(), Some("application/toml"));
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "knowledge://rx/federal.toml",
        ))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("not text: {read:?}");
    };
    assert!(text.contains("FED-99"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn unreadable_input_is_one_e_input_finding_naming_where() {
    let home = home_with_rules();
    let server = HttpServer::start(&home, &[]).await;
    let client = ().serve(StreamableHttpClientTransport::from_uri(server.url())).await.unwrap();
    let cases = [
        (json!("{\"jurisdiction\": \"NSW\", "), "$"),
        (json!({ "resourceType": "Patient" }), "resourceType"),
        (
            json!({ "resourceType": "Bundle", "type": "collection" }),
            "Bundle.entry",
        ),
        (json!({ "authored_on": "2026-02-30" }), "authored_on"),
        (
            json!({ "product": { "ingredients": [{ "name": "THC", "amount": 5000, "unit": "mg", "per": "mL" }] } }),
            "product.ingredients[0].amount",
        ),
    ];
    for (input, path) in cases {
        let report = validate(&client, &input).await;
        assert_eq!(report["valid"], json!(false));
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 1, "{report:#}");
        assert_eq!(findings[0]["code"], json!("E-INPUT"));
        assert_eq!(findings[0]["path"], json!(path), "{report:#}");
    }
    client.cancel().await.unwrap();
}

fn redact(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("rx-") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 3..];
        let hex = tail.chars().take_while(char::is_ascii_hexdigit).count();
        if hex == 12 {
            out.push_str("rx-[version]");
            rest = &tail[12..];
        } else {
            out.push_str("rx-");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn rx_validate_prints_findings_and_exits_1_when_any_is_invalid() {
    let home = home_with_rules();
    let files: Vec<String> = [
        "nsw-cat2-sas-b.json",
        "nsw-cat2-sas-b.fhir.json",
        "act-no-cho.json",
        "wa-child-np-ap.fhir.json",
    ]
    .iter()
    .map(|name| repo().join("fixtures/rx").join(name).display().to_string())
    .collect();
    let mut args = vec!["rx", "validate"];
    args.extend(files.iter().map(String::as_str));
    let output = home.baton_std(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stdout = stdout.replace(&format!("{}/", repo().join("fixtures/rx").display()), "");
    insta::assert_snapshot!("rx_validate_text", redact(&stdout));
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 of 4 prescription(s) invalid"));

    args.push("--json");
    let output = home.baton_std(&args).output().unwrap();
    let reports: Value = serde_json::from_slice(&output.stdout).unwrap();
    let verdicts: Vec<bool> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report"]["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(verdicts, vec![true, true, false, false]);
}

#[test]
fn eval_rx_meets_its_targets_on_the_committed_cases() {
    let home = home_with_rules();
    let output = home.baton_std(&["eval", "rx"]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("false rejections of valid:    0/"),
        "{stdout}"
    );
    assert!(stdout.contains("= 100.0 %"), "{stdout}");
    assert!(stdout.contains("every code exact): met"), "{stdout}");
}
