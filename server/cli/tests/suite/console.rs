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

pub(super) const TOKENS: &str = r#"
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

pub(super) const ENV: &[(&str, &str)] = &[
    ("ALICE_TOKEN", "alice-secret-token"),
    ("WRITER_TOKEN", "writer-secret-token"),
    ("BOT_TOKEN", "bot-secret-token"),
];

pub(super) fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/screenshots")
        .join(name)
}

pub(super) async fn sign_in(client: &Client, base: &str, token: &str) {
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
        // The answer page: a refusal's message, or a signed-in page's navigation.
        .for_element(Locator::Css("main .flash, header nav"))
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

/// The text of `css` once the page has it: the element is looked for again if the page
/// moved on under it (a form's answer arriving, the live list redrawn).
pub(super) async fn text(client: &Client, css: &str) -> String {
    let mut last = None;
    for _ in 0..50 {
        let found = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
        match found.text().await {
            Ok(text) => return text,
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` kept going stale: {last:?}")
}

/// The flash message once it reads `expected` (the answer to a form just sent: until the
/// browser has it, the page before may still show the previous flash), or what it read last.
async fn flash_once(client: &Client, expected: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = text(client, ".flash").await;
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// Click `css` once the page has it, looking for it again if the page moved on under it.
async fn click(client: &Client, css: &str) {
    for _ in 0..50 {
        let found = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"));
        if found.click().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` kept going stale");
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
    click(&client, &format!("article[id='{id}'] button.approve")).await;
    let approved = "Approved `repo_write` for agent:writer.";
    assert_eq!(flash_once(&client, approved).await, approved);
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
    click(&client, "#pending article button.reject").await;
    let rejected = "Rejected `repo_write` for agent:writer.";
    assert_eq!(flash_once(&client, rejected).await, rejected);
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

// ---- the console over plain HTTP: what a browser's attacker would send ---------------------

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `(name=value, the whole Set-Cookie line)` of `name` in `response`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|line| (line.split(';').next().unwrap().to_owned(), line.to_owned()))
}

/// Sign in over HTTP with `token`: the session cookie (`baton_session=…`) and the page's CSRF
/// token, or the refusal's status.
pub(super) async fn http_sign_in(base: &str, token: &str) -> Result<(String, String), u16> {
    let http = no_redirects();
    let form = http
        .get(format!("{base}/console/signin"))
        .send()
        .await
        .unwrap();
    let (nonce_cookie, _) = set_cookie(&form, "baton_signin").unwrap();
    let nonce = nonce_cookie.trim_start_matches("baton_signin=").to_owned();
    let signed = http
        .post(format!("{base}/console/signin"))
        .header("cookie", &nonce_cookie)
        .form(&[("token", token), ("nonce", &nonce)])
        .send()
        .await
        .unwrap();
    if signed.status() != 303 {
        return Err(signed.status().as_u16());
    }
    let (session, line) = set_cookie(&signed, "baton_session").unwrap();
    assert!(
        line.contains("HttpOnly")
            && line.contains("SameSite=Strict")
            && line.contains("Path=/console"),
        "{line}"
    );
    let page = http
        .get(format!("{base}/console/approvals"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    Ok((session, csrf))
}

async fn http_sign_out(base: &str, session: &str, csrf: &str) {
    let out = no_redirects()
        .post(format!("{base}/console/signout"))
        .header("cookie", session)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
}

#[tokio::test]
async fn the_console_refuses_strangers_foreign_hosts_and_foreign_origins() {
    let home = Home::new(TOKENS);
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let base = format!("http://{}", server.addr);
    let http = no_redirects();

    // No session: pages send to sign-in, the live stream and the export too; forms are refused.
    for page in [
        "approvals",
        "approvals/live",
        "runs",
        "workers",
        "audit",
        "audit/export",
    ] {
        let response = http
            .get(format!("{base}/console/{page}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303, "{page}");
        assert_eq!(response.headers()["location"], "/console/signin", "{page}");
    }
    let forged = http
        .get(format!("{base}/console/approvals"))
        .header("cookie", "baton_session=0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        303,
        "a session id chosen by the client is not one"
    );
    let post = http
        .post(format!("{base}/console/approvals/01ANY"))
        .form(&[("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);

    // Sign-in needs the form's own nonce, and a reviewer's token.
    let nonce_mismatch = http
        .post(format!("{base}/console/signin"))
        .header("cookie", "baton_signin=aaaa")
        .form(&[("token", "alice-secret-token"), ("nonce", "bbbb")])
        .send()
        .await
        .unwrap();
    assert_eq!(nonce_mismatch.status(), 403);
    assert_eq!(http_sign_in(&base, "bot-secret-token").await, Err(403));
    assert_eq!(http_sign_in(&base, "no-such-token").await, Err(401));
    let (session, csrf) = http_sign_in(&base, "alice-secret-token").await.unwrap();

    // DNS rebinding: a foreign Host is refused even with a session.
    let rebound = http
        .get(format!("{base}/console/approvals"))
        .header("host", "evil.example")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A form from another site is refused even with the right CSRF token.
    let cross = http
        .post(format!("{base}/console/audit/verify"))
        .header("cookie", &session)
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let page = http
        .get(format!("{base}/console/audit"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["cache-control"], "no-store");

    // Signing out ends the session for good.
    http_sign_out(&base, &session, &csrf).await;
    let after = http
        .get(format!("{base}/console/approvals"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303);
}

#[tokio::test]
async fn the_console_is_off_when_configured_so_and_secure_behind_https() {
    let home = Home::new(&format!("{TOKENS}\n[console]\nenabled = false\n"));
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let off = no_redirects()
        .get(format!("http://{}/console/signin", server.addr))
        .send()
        .await
        .unwrap();
    // Nothing answers there but the MCP front door, which wants a bearer token.
    assert_eq!(off.status(), 401);

    let home = Home::new(&format!(
        "[http]\npublic_url = \"https://baton.example.com\"\n{TOKENS}"
    ));
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let signin = no_redirects()
        .get(format!("http://{}/console/signin", server.addr))
        .header("host", "baton.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(signin.status(), 200, "the public URL's host is this server");
    let (_, line) = set_cookie(&signin, "baton_signin").unwrap();
    assert!(line.ends_with("; Secure"), "{line}");
}

// ---- webhooks --------------------------------------------------------------------------------

pub(super) type Heard = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// A webhook receiver on loopback that keeps each request's JSON body; it answers `200`, or
/// never answers when `hang`.
pub(super) async fn receiver(hang: bool) -> (String, Heard) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let heard: Heard = Default::default();
    let sink = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    bytes.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                };
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                if hang {
                    std::future::pending::<()>().await;
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (url, heard)
}

pub(super) async fn heard_where(heard: &Heard, what: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(found) = heard.lock().unwrap().iter().find(|v| what(v)) {
            return found.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not heard: {:#?}", heard.lock().unwrap());
}

#[tokio::test]
async fn webhooks_hear_of_approvals_and_never_hold_a_call_up() {
    use rmcp::ServiceExt as _;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

    let (json_url, json_heard) = receiver(false).await;
    let (slack_url, slack_heard) = receiver(false).await;
    let (hang_url, hang_heard) = receiver(true).await;
    let home = Home::new(&format!(
        "[http]\npublic_url = \"https://baton.example.com\"\n{TOKENS}\n\
         [[approvals.webhooks]]\nurl = \"{json_url}\"\n\n\
         [[approvals.webhooks]]\nurl = \"{slack_url}\"\nformat = \"slack\"\n\n\
         [[approvals.webhooks]]\nurl = \"{hang_url}\"\ntimeout_s = 60\nretries = 0\n"
    ));
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).auth_header("bot-secret-token"),
    );
    let client = ().serve(transport).await.unwrap();
    let mut params = rmcp::model::CallToolRequestParams::new("repo_write");
    params.arguments = serde_json::json!({
        "repo": home.path().join("repo"), "path": "a.txt", "content": "x"
    })
    .as_object()
    .cloned();
    let result = client.call_tool(params).await.unwrap();
    client.cancel().await.unwrap();
    let pending = result.structured_content.unwrap()["pending_approval"].clone();
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let link = format!("https://baton.example.com/console/approvals#{id}");
    assert_eq!(pending["console"], link.as_str());

    let created = heard_where(&json_heard, |v| v["event"] == "approval.created").await;
    assert_eq!(
        (
            &created["approval"]["id"],
            &created["approval"]["requester"],
            &created["console"]
        ),
        (
            &Value::from(id.as_str()),
            &Value::from("bot"),
            &Value::from(link.as_str())
        )
    );
    let slack = heard_where(&slack_heard, |v| v["text"].is_string()).await;
    assert!(
        slack["text"]
            .as_str()
            .unwrap()
            .starts_with("Approval needed: `repo_write` requested by bot"),
        "{slack}"
    );
    // The hanging webhook got its request and never answered; the call had long returned.
    heard_where(&hang_heard, |v| v["event"] == "approval.created").await;

    let reject = home
        .baton(&["approvals", "reject", &id, "--reason", "not today"])
        .output()
        .await
        .unwrap();
    assert!(
        reject.status.success(),
        "{}",
        String::from_utf8_lossy(&reject.stderr)
    );
    let decided = heard_where(&json_heard, |v| v["event"] == "approval.decided").await;
    assert_eq!(
        (&decided["approval"]["state"], &decided["approval"]["note"]),
        (&Value::from("rejected"), &Value::from("not today"))
    );
}

/// Ask for approval of a `repo_write` from the shell (the requester is the OS user).
async fn ask_write(home: &Home, path: &str, content: &str) {
    let args =
        serde_json::json!({ "repo": home.path().join("repo"), "path": path, "content": content });
    let asked = home
        .baton(&["tools", "call", "repo_write", "--args", &args.to_string()])
        .output()
        .await
        .unwrap();
    assert_eq!(
        asked.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
}

#[tokio::test]
async fn the_console_holds_against_a_hostile_agent() {
    let home = Home::new(TOKENS);
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    // A file outside the repository, hard-linked into it.
    std::fs::write(home.path().join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::fs::hard_link(home.path().join("secret.txt"), repo.join("linked.txt")).unwrap();
    let server = HttpServer::start_with_env(&home, &[], ENV).await;
    let base = format!("http://{}", server.addr);
    let http = no_redirects();
    let (session, csrf) = http_sign_in(&base, "alice-secret-token").await.unwrap();

    // The live stream: its first event, then nothing after sign-out.
    let mut live = http
        .get(format!("{base}/console/approvals/live"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    let first = live.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: pending"));

    ask_write(&home, "linked.txt", "replaced\n").await;
    // 100 KB on one line (near the longest argument a command line takes), and 8,000 lines
    // wholly different from the current file's.
    ask_write(&home, "huge.txt", &"A".repeat(100_000)).await;
    let old: String = (0..8_000).map(|n| format!("old line {n}\n")).collect();
    std::fs::write(repo.join("big.txt"), &old).unwrap();
    let new: String = (0..8_000).map(|n| format!("new {n}\n")).collect();
    ask_write(&home, "big.txt", &new).await;

    let page = http
        .get(format!("{base}/console/approvals"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("TOP-SECRET"),
        "a hard-linked file outside the repository is never shown"
    );
    assert!(page.contains("the file has other hard links"));
    assert!(page.contains("Diff cut to its first 400 lines"));
    assert!(page.len() < 100 * 1024, "the page is {} bytes", page.len());

    http_sign_out(&base, &session, &csrf).await;
    ask_write(&home, "after-signout.txt", "secret-after-signout").await;
    let mut after = Vec::new();
    while let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(30), live.chunk())
        .await
        .unwrap()
    {
        after.extend_from_slice(&chunk);
    }
    assert!(
        !String::from_utf8_lossy(&after).contains("after-signout"),
        "a signed-out stream is sent nothing more"
    );

    // Guessing tokens: after 20 failures in a minute, sign-in refuses everyone for a while.
    for _ in 0..20 {
        assert_eq!(http_sign_in(&base, "guess").await, Err(401));
    }
    assert_eq!(http_sign_in(&base, "alice-secret-token").await, Err(429));
}
