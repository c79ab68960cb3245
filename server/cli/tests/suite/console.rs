//! The reviewers' console in a real headless Chromium: sign-in with tokens, a pending
//! `repo_write` with its diff, approve and reject from the browser while a `baton run` waits,
//! and the attacks — an agent token, the requester's own token, a form without its CSRF token.
//! The screenshots in `docs/` are taken here, so they show the console as it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_test_support::Browser;
use fantoccini::{Client, Locator};
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::common::{Home, HttpServer};
use super::run::{pending, run_command, setup_with};

const TOKENS: &str = r#"
[[http.tokens]]
principal = "alice"
roles = ["reviewer"]
token_env = "ALICE_TOKEN"

[[http.tokens]]
principal = "agent:writer"
roles = ["agent", "reviewer"]
token_env = "WRITER_TOKEN"

[[http.tokens]]
principal = "bot"
roles = ["agent"]
token_env = "BOT_TOKEN"
"#;

const ENV: &[(&str, &str)] = &[
    ("ALICE_TOKEN", "alice-secret-token"),
    ("WRITER_TOKEN", "writer-secret-token"),
    ("BOT_TOKEN", "bot-secret-token"),
];

fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/screenshots")
        .join(name)
}

async fn sign_in(client: &Client, base: &str, token: &str) {
    client
        .goto(&format!("{base}/console/signin"))
        .await
        .unwrap();
    let field = client.find(Locator::Css("#token")).await.unwrap();
    // Keyboard only: type the token, press Enter.
    field.send_keys(&format!("{token}\u{E007}")).await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("main h1, main .flash"))
        .await
        .unwrap();
}

async fn sign_out(client: &Client) {
    client
        .find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("#token"))
        .await
        .unwrap();
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
        .text()
        .await
        .unwrap()
}

/// Post a form from the page, as a script on it (or another site's page) could: `fields`
/// become hidden inputs. The browser then shows what the server answered.
async fn post_form(client: &Client, action: &str, fields: &[(&str, &str)]) {
    let fields: Value = fields
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect::<serde_json::Map<_, _>>()
        .into();
    client
        .execute(
            "const [action, fields] = arguments; const f = document.createElement('form');
             f.method = 'post'; f.action = action;
             for (const [k, v] of Object.entries(fields)) { const i = document.createElement('input');
               i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }
             document.body.appendChild(f); f.submit();",
            vec![Value::String(action.into()), fields],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn approval_state(home: &Home, id: &str) -> String {
    let output = home
        .baton(&["approvals", "list", "--all", "--json"])
        .output()
        .await
        .unwrap();
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .map(|a| a["state"].as_str().unwrap().to_owned())
        .unwrap()
}

#[tokio::test]
async fn a_reviewer_decides_in_the_browser_and_the_waiting_run_goes_on() {
    let test = "console::a_reviewer_decides_in_the_browser_and_the_waiting_run_goes_on";
    let Some(browser) = Browser::start(test, 1100, 900).await else {
        return;
    };
    let client = browser.client.clone();
    let (home, repo, agents, cassette) = setup_with(TOKENS);
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let base = format!("http://{}", server.addr);

    // A run waits for a reviewer.
    let run = run_command(&home, &repo, &agents, &cassette)
        .spawn()
        .unwrap();
    let approval = pending(&home).await;
    let id = approval["id"].as_str().unwrap().to_owned();

    // An agent token cannot sign in, and gets no session.
    sign_in(&client, &base, "bot-secret-token").await;
    let refused = text(&client, ".flash").await;
    assert!(
        refused.contains("`bot` has no reviewer or admin role"),
        "{refused}"
    );
    client
        .goto(&format!("{base}/console/approvals"))
        .await
        .unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/signin")
    );

    // The requester's own token (it even has the reviewer role) sees no form, and a decision
    // forged with its session's CSRF token is refused by the gate.
    sign_in(&client, &base, "writer-secret-token").await;
    let card = text(&client, &format!("article[id='{id}']")).await;
    assert!(card.contains("You requested this call"), "{card}");
    let csrf = client
        .find(Locator::Css("form.signout input[name=csrf]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    post_form(
        &client,
        &format!("/console/approvals/{id}"),
        &[("csrf", &csrf), ("decision", "approve")],
    )
    .await;
    let flash = text(&client, ".flash").await;
    assert!(
        flash.contains("requested this call and cannot decide it"),
        "{flash}"
    );
    assert_eq!(approval_state(&home, &id).await, "pending");
    sign_out(&client).await;

    // A reviewer signs in; a forged form without the CSRF token is refused.
    sign_in(&client, &base, "alice-secret-token").await;
    post_form(
        &client,
        &format!("/console/approvals/{id}"),
        &[("decision", "approve")],
    )
    .await;
    let body = text(&client, "body").await;
    assert!(body.contains("CSRF token is missing or wrong"), "{body}");
    assert_eq!(approval_state(&home, &id).await, "pending");

    // The pending repo_write with its diff; approve it.
    client
        .goto(&format!("{base}/console/approvals"))
        .await
        .unwrap();
    let diff = text(&client, &format!("article[id='{id}'] pre.diff")).await;
    assert!(
        diff.contains("+++ b/NOTE.md") && diff.contains("+hi"),
        "{diff}"
    );
    std::fs::create_dir_all(screenshot_path("")).unwrap();
    std::fs::write(
        screenshot_path("console-approvals.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
    client
        .find(Locator::Css(&format!("article[id='{id}'] button.approve")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = text(&client, ".flash").await;
    assert_eq!(flash, "Approved `repo_write` for agent:writer.");
    let done = tokio::time::timeout(Duration::from_secs(30), run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out: Value = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&done.stderr)));
    assert_eq!(out["output"], "NOTE.md written.");
    assert_eq!(std::fs::read_to_string(repo.join("NOTE.md")).unwrap(), "hi");

    // A second run: its approval appears live (no reload), and is rejected with a note that
    // reaches the agent.
    std::fs::remove_file(repo.join("NOTE.md")).unwrap();
    let run = run_command(&home, &repo, &agents, &cassette)
        .spawn()
        .unwrap();
    let second = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#pending article textarea"))
        .await
        .unwrap();
    second.send_keys("not in this repository").await.unwrap();
    client
        .find(Locator::Css("#pending article button.reject"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let flash = text(&client, ".flash").await;
    assert_eq!(flash, "Rejected `repo_write` for agent:writer.");
    let done = tokio::time::timeout(Duration::from_secs(30), run.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let out: Value = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&done.stderr)));
    assert_eq!(
        out["output"],
        "A reviewer said no: not in this repository. Nothing written."
    );
    assert!(!repo.join("NOTE.md").exists());

    // The first run's timeline.
    client.goto(&format!("{base}/console/runs")).await.unwrap();
    let runs = client
        .find_all(Locator::Css("tbody tr td a"))
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    runs[1].click().await.unwrap();
    let timeline = text(&client, "ol.timeline").await;
    assert!(
        timeline.contains("Approval for repo_write approved by alice"),
        "{timeline}"
    );
    assert!(timeline.contains("Final output"), "{timeline}");
    std::fs::write(
        screenshot_path("console-run.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // The audit page shows the rejection, by whom, with the note.
    client
        .goto(&format!("{base}/console/audit?tool=repo_write"))
        .await
        .unwrap();
    let audit = text(&client, "table").await;
    assert!(
        audit.contains("rejected by alice") && audit.contains("not in this repository"),
        "{audit}"
    );
    std::fs::write(
        screenshot_path("console-audit.png"),
        client.screenshot().await.unwrap(),
    )
    .unwrap();

    // At 360 px wide nothing needs sideways scrolling.
    client.set_window_size(360, 800).await.unwrap();
    for page in ["approvals", "runs", "audit"] {
        client
            .goto(&format!("{base}/console/{page}"))
            .await
            .unwrap();
        let width = client
            .execute("return document.documentElement.scrollWidth", vec![])
            .await
            .unwrap();
        assert!(
            width.as_u64().unwrap() <= 360,
            "{page} is {width} px wide at 360"
        );
    }
    browser.close().await;
}
