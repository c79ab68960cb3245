//! `GET /metrics`: scraped before and after a known set of calls, the counters move by exactly
//! those calls; only an admin or a named scraper may read it; off unless configured.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};

const TEAM: &str = r#"
[telemetry]
metrics = true
metrics_principals = ["prometheus"]

[[http.tokens]]
principal = "shop"
roles = ["agent"]
token_env = "SHOP_TOKEN"

[[http.tokens]]
principal = "prometheus"
roles = []
token_env = "PROM_TOKEN"

[[http.tokens]]
principal = "ops"
roles = ["admin"]
token_env = "OPS_TOKEN"
"#;

const ENV: [(&str, &str); 3] = [
    ("SHOP_TOKEN", "shop-t"),
    ("PROM_TOKEN", "prom-t"),
    ("OPS_TOKEN", "ops-t"),
];

/// Every sample of a scrape, by its name and labels as written (`name{a="b"}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

async fn scrape(http: &reqwest::Client, server: &HttpServer, token: &str) -> BTreeMap<String, f64> {
    let response = http
        .get(format!("http://{}/metrics", server.addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    samples(&response.text().await.unwrap())
}

/// What moved between two scrapes, for samples whose name starts with `prefix`.
fn moved(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    prefix: &str,
) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(name, value)| {
            (
                name.clone(),
                value - before.get(name).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, delta)| *delta != 0.0)
        .collect()
}

#[tokio::test]
async fn counters_move_by_exactly_the_calls_made_and_only_scrapers_read_them() {
    let home = Home::new(TEAM);
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n\n\
         [[rules]]\nid = \"no-latency\"\ntool = \"dsp_latency\"\naction = \"forbid\"\nreason = \"not here\"\n",
    )
    .unwrap();
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let before = scrape(&http, &server, "prom-t").await;

    let call = |tool: &str, args: Value| {
        http.post(format!("{base}/v1/tools/{tool}"))
            .bearer_auth("shop-t")
            .json(&args)
            .send()
    };
    let response =
        json!({ "sample_rate": 48000, "chain": [{ "type": "lowpass", "freq_hz": 1000 }] });
    for _ in 0..2 {
        assert_eq!(
            call("dsp_response", response.clone())
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let missing = json!({ "repo": home.path().join("repo"), "path": "absent.txt" });
    assert_eq!(call("repo_read", missing).await.unwrap().status(), 404);
    let write = json!({ "repo": home.path().join("repo"), "path": "NOTE.md", "content": "hi" });
    assert_eq!(call("repo_write", write).await.unwrap().status(), 202);
    let latency =
        json!({ "sample_rate": 48000, "chain": [{ "type": "lowpass", "freq_hz": 1000 }] });
    assert_eq!(call("dsp_latency", latency).await.unwrap().status(), 403);

    let after = scrape(&http, &server, "ops-t").await;
    let calls = |tool: &str, decision: &str, outcome: &str| {
        (
            format!(
                "baton_tool_calls_total{{tool=\"{tool}\",role=\"agent\",decision=\"{decision}\",outcome=\"{outcome}\"}}"
            ),
            1.0,
        )
    };
    let two = |(name, _): (String, f64)| (name, 2.0);
    assert_eq!(
        moved(&before, &after, "baton_tool_calls_total"),
        vec![
            calls("dsp_latency", "forbid", "denied"),
            two(calls("dsp_response", "allow", "ok")),
            calls("repo_read", "allow", "error"),
            calls("repo_write", "needs_approval", "pending_approval"),
        ]
    );
    let counted = |tool: &str| {
        after[&format!("baton_tool_call_duration_seconds_count{{tool=\"{tool}\"}}")]
            - before
                .get(&format!(
                    "baton_tool_call_duration_seconds_count{{tool=\"{tool}\"}}"
                ))
                .copied()
                .unwrap_or(0.0)
    };
    assert_eq!(
        [
            counted("dsp_response"),
            counted("repo_read"),
            counted("repo_write")
        ],
        [2.0, 1.0, 1.0]
    );
    assert_eq!(after["baton_approvals_pending"], 1.0);
    assert_eq!(after["baton_audit_head"] - before["baton_audit_head"], 5.0);
    assert!(after["baton_store_size_bytes"] > 0.0);
    assert!(after["baton_audit_batch_records_count"] >= 1.0);
    assert_eq!(
        after["baton_audit_sync_seconds_count"],
        after["baton_audit_batch_records_count"]
    );

    // Only an admin or a named scraper reads it; an agent's token, or none, does not.
    let read = |token: Option<&str>| {
        let request = http.get(format!("{base}/metrics"));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
        .send()
    };
    let refused = read(Some("shop-t")).await.unwrap();
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("`shop` may not read metrics"), "{body}");
    assert!(!body.contains("baton_tool_calls"), "{body}");
    assert_eq!(read(None).await.unwrap().status(), 401);
    assert_eq!(read(Some("forged")).await.unwrap().status(), 401);
    // The scrapes themselves are not tool calls: the counters did not move.
    let again = scrape(&http, &server, "prom-t").await;
    assert_eq!(moved(&after, &again, "baton_tool_calls_total"), vec![]);
}

#[tokio::test]
async fn metrics_are_off_unless_configured() {
    let home = Home::new("");
    let server = HttpServer::start(&home, &[]).await;
    let response = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(body.contains("[telemetry] metrics = true"), "{body}");
}

#[tokio::test]
async fn a_foreign_host_reaches_neither_metrics_nor_tools() {
    // No tokens: anyone on this machine may scrape, so a web page whose name an attacker made
    // resolve to 127.0.0.1 (DNS rebinding) must be refused by its `Host`.
    let home = Home::new("[telemetry]\nmetrics = true\n");
    let server = HttpServer::start(&home, &[]).await;
    let http = reqwest::Client::new();
    for (method, path) in [("GET", "/metrics"), ("POST", "/v1/tools/baton_info")] {
        let request = http
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", server.addr),
            )
            .header("host", "attacker.example:8080");
        let request = match method {
            "POST" => request.json(&json!({})),
            _ => request,
        };
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 403, "{path}");
        let body = refused.text().await.unwrap();
        assert!(
            body.contains("`attacker.example:8080` is not a name this server answers to"),
            "{body}"
        );
    }
    let own = http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
}
