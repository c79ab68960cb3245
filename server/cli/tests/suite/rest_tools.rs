//! Every tool over plain HTTP (`POST /v1/tools/<name>`), through the gate MCP uses: curl
//! sends a photo and gets its cut-out back by URI, fifty photos become a job, an elevated call
//! waits for a reviewer and runs once, REST and MCP calls share one audit chain, and every
//! bad request — or abuse of the limits — is a problem-details answer naming what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::{Home, HttpServer};
use super::rest::problem;

const SHOP: &str = r#"
[[http.tokens]]
principal = "shop"
roles = ["agent"]
token_env = "SHOP_TOKEN"

[[http.tokens]]
principal = "pharmacy"
roles = ["agent"]
token_env = "PHARMACY_TOKEN"
"#;

const ENV: [(&str, &str); 2] = [("SHOP_TOKEN", "shop-t"), ("PHARMACY_TOKEN", "pharmacy-t")];

fn shots(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vision/shots");
    baton_test_support::generated(test, &dir).then_some(dir)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail-with-body"])
        .args(args)
        .output()
        .expect("curl is installed (./scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A small PNG, different for every `n`.
pub(super) fn photo(n: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(96, 72, |x, y| {
        let inside = (20..76).contains(&x) && (16..56).contains(&y);
        if inside {
            image::Rgb([(n * 4 % 200) as u8 + 30, 60, 160])
        } else {
            image::Rgb([240, 240, 238])
        }
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// Send `request`; its JSON answer.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Send `request`; its problem-details answer.
async fn refused(request: reqwest::RequestBuilder) -> (u16, Value) {
    problem(request.send().await.unwrap()).await
}

#[tokio::test]
async fn curl_sends_a_photo_and_gets_its_cut_out_back_by_uri() {
    let Some(shots) = shots("rest_tools::curl_sends_a_photo_and_gets_its_cut_out_back_by_uri")
    else {
        return;
    };
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let shoe = shots.join("clean-blue-ellipse.jpg");
    let auth = "Authorization: Bearer shop-t";
    let answer: Value = serde_json::from_slice(&curl(&[
        "-H",
        auth,
        "-F",
        &format!("path=@{}", shoe.display()),
        &format!("{base}/v1/tools/vision_process"),
    ]))
    .unwrap();
    // The photo went in as an artifact, and everything written came back as one: no path on
    // Baton's disk in the answer.
    let uploaded = digest(&std::fs::read(&shoe).unwrap());
    assert_eq!(answer["source"], format!("baton://artifacts/{uploaded}"));
    let image = answer["image"].as_str().unwrap();
    let sha = image.strip_prefix("baton://artifacts/").unwrap();
    assert!(!answer.to_string().contains("/tmp/"), "{answer:#}");
    let names: Vec<&str> = answer["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["media_type"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["image/png", "application/json"]);

    let cut = curl(&["-H", auth, &format!("{base}/v1/artifacts/{sha}")]);
    assert_eq!(digest(&cut), sha);
    let decoded = image::load_from_memory(&cut).unwrap();
    let original = image::open(&shoe).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (original.width(), original.height())
    );
    // The backdrop is white now: the corner that was blue-grey.
    assert_eq!(decoded.to_rgb8().get_pixel(0, 0).0, [255, 255, 255]);
    // The metadata file kept beside it speaks of the photo and cut-out by URI too.
    let metadata = answer["metadata"]
        .as_str()
        .unwrap()
        .strip_prefix("baton://artifacts/")
        .unwrap();
    let metadata: Value = serde_json::from_slice(&curl(&[
        "-H",
        auth,
        &format!("{base}/v1/artifacts/{metadata}"),
    ]))
    .unwrap();
    assert_eq!(
        (&metadata["source"], &metadata["image"]),
        (&answer["source"], &answer["image"])
    );

    // The document a client is generated from lists the tool with the same schemas as MCP.
    let document: Value =
        serde_json::from_slice(&curl(&["-H", auth, &format!("{base}/v1/openapi.json")])).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let operation = &document["paths"]["/v1/tools/vision_process"]["post"];
    assert_eq!(operation["operationId"], "vision_process");
    assert!(
        operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["path"]
            .is_object()
    );
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["required"],
        json!(["path"])
    );
}

/// Poll job `url` until it is no longer working.
pub(super) async fn finished(http: &reqwest::Client, url: &str, token: &str) -> Value {
    for _ in 0..600 {
        let job: Value = answer(http.get(url).bearer_auth(token)).await;
        if job["status"] != "working" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {url} did not finish in 60 s");
}

#[tokio::test]
async fn fifty_photos_are_a_job_that_completes_and_only_its_owner_sees_it() {
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let mut form = reqwest::multipart::Form::new();
    for n in 0..50 {
        let part = reqwest::multipart::Part::bytes(photo(n))
            .file_name(format!("p{n}.png"))
            .mime_str("image/png")
            .unwrap();
        form = form.part("paths", part);
    }
    let started = http
        .post(format!("{base}/v1/tools/vision_batch"))
        .bearer_auth("shop-t")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["job"]["url"], location);

    // Another principal cannot read or stop it: it is as unknown as a missing one.
    let (status, _) = refused(
        http.get(format!("{base}{location}"))
            .bearer_auth("pharmacy-t"),
    )
    .await;
    assert_eq!(status, 404);

    let job = finished(&http, &format!("{base}{location}"), "shop-t").await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let result = &job["result"];
    assert_eq!(
        (&result["processed"], &result["failed"]),
        (&json!(50), &json!(0))
    );
    let items = result["items"].as_array().unwrap();
    assert!(items.iter().all(|item| {
        item["source"]
            .as_str()
            .unwrap()
            .starts_with("baton://artifacts/")
            && item["image"]
                .as_str()
                .unwrap()
                .starts_with("baton://artifacts/")
    }));
    // 50 cut-outs, 50 metadata files and the batch summary.
    assert_eq!(result["artifacts"].as_array().unwrap().len(), 101);
    let (status, body) = refused(
        http.delete(format!("{base}{location}"))
            .bearer_auth("shop-t"),
    )
    .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn rest_and_mcp_calls_share_one_audit_chain_and_inline_content_is_audited_as_its_uri() {
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dsp/audio");
    if !baton_test_support::generated(
        "rest_tools::rest_and_mcp_calls_share_one_audit_chain_and_inline_content_is_audited_as_its_uri",
        &audio,
    ) {
        return;
    }
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let wav = std::fs::read(audio.join("clipped-44k-stereo-16.wav")).unwrap();
    let kept: Value = answer(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "audio/wav")
            .body(wav.clone()),
    )
    .await;
    let uri = kept["uri"].as_str().unwrap().to_owned();
    let by_rest: Value = answer(
        http.post(format!("{base}/v1/tools/dsp_analyze"))
            .bearer_auth("shop-t")
            .json(&json!({ "path": uri })),
    )
    .await;

    use base64::Engine as _;
    use rmcp::ServiceExt as _;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            server.url(),
        )
        .auth_header("shop-t"),
    );
    let client = ().serve(transport).await.unwrap();
    let inline = format!(
        "data:audio/wav;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&wav)
    );
    let by_mcp = client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("dsp_analyze")
                .with_arguments(json!({ "path": inline }).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    client.cancel().await.unwrap();
    assert_eq!(by_mcp.structured_content.unwrap(), by_rest);

    let verified = home.baton(&["audit", "verify"]).output().await.unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let records: Vec<Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|r: &Value| r["tool"] == "dsp_analyze")
        .collect();
    // Both calls, one after the other in the chain, with the same argument digest: the gate
    // saw the artifact URI, never the bytes sent inline.
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0]["args_digest"], records[1]["args_digest"]);
    assert_eq!(
        records[0]["args_digest"],
        baton_runs::args_digest(&json!({ "path": uri }))
    );
    assert_eq!(records[1]["prev_hash"], records[0]["hash"]);
}

#[tokio::test]
async fn an_elevated_call_over_rest_waits_for_a_reviewer_and_runs_once() {
    let home = Home::new(SHOP);
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let args = json!({ "repo": home.path().join("repo"), "path": "NOTE.md", "content": "hi" });
    let asked = http
        .post(format!("{base}/v1/tools/repo_write"))
        .bearer_auth("shop-t")
        .json(&args)
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 202);
    let pending: Value = asked.json().await.unwrap();
    assert_eq!(pending["status"], "pending_approval");
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(
        pending["retry"]["url"],
        format!("/v1/tools/repo_write?approval_id={id}")
    );
    assert!(!home.path().join("repo/NOTE.md").exists());

    // Too early: not approved yet.
    let early = http
        .post(format!("{base}/v1/tools/repo_write?approval_id={id}"))
        .bearer_auth("shop-t")
        .json(&args)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(early).await;
    assert_eq!((status, &body["rule"]), (403, &json!("approval")), "{body}");

    let approved = home
        .baton(&["approvals", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    // Another principal cannot use it, nor can the requester for other arguments.
    for (token, body) in [
        ("pharmacy-t", args.clone()),
        (
            "shop-t",
            json!({ "repo": home.path().join("repo"), "path": "NOTE.md", "content": "evil" }),
        ),
    ] {
        let (status, _) = refused(
            http.post(format!("{base}/v1/tools/repo_write?approval_id={id}"))
                .bearer_auth(token)
                .json(&body),
        )
        .await;
        assert_eq!(status, 403);
    }
    let done = http
        .post(format!("{base}/v1/tools/repo_write?approval_id={id}"))
        .bearer_auth("shop-t")
        .json(&args)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let written: Value = done.json().await.unwrap();
    assert_eq!(written["created"], true);
    assert_eq!(
        std::fs::read_to_string(home.path().join("repo/NOTE.md")).unwrap(),
        "hi"
    );
    // Once.
    let again = http
        .post(format!("{base}/v1/tools/repo_write?approval_id={id}"))
        .bearer_auth("shop-t")
        .json(&args)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(again).await;
    assert_eq!(status, 403, "{body}");
}

const LIMITED: &str = r#"
[http]
upload_max_bytes = 300000
request_timeout_s = 1

[limits]
calls_per_minute = 3
inline_max_kb = 8
upload_quota_mb = 1
"#;

/// Each bad request, and each limit, answers problem details naming what was wrong.
#[tokio::test]
async fn bad_requests_and_abuse_are_refused_by_name() {
    let home = Home::new(&format!("{LIMITED}\n{SHOP}"));
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let call = |tool: &str| format!("{base}/v1/tools/{tool}");
    let contains = |body: &Value, text: &str| {
        assert!(
            body["detail"].as_str().unwrap().contains(text),
            "`{text}` not in {body}"
        );
    };

    // An upload over the limit; a type Baton reads nothing of; bytes that belie their type.
    let (status, body) = refused(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "image/png")
            .body(vec![0u8; 300_001]),
    )
    .await;
    assert_eq!(status, 413);
    contains(&body, "http.upload_max_bytes");
    let (status, body) = refused(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "text/html")
            .body("<script>"),
    )
    .await;
    assert_eq!(status, 415);
    contains(&body, "text/html");
    let (status, body) = refused(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "image/jpeg")
            .body(photo(1)),
    )
    .await;
    assert_eq!(status, 415);
    contains(&body, "its bytes are `image/png`");

    // An artifact URI that does not exist, named by its argument.
    let missing = format!("baton://artifacts/{}", "0".repeat(64));
    let (status, body) = refused(
        http.post(call("vision_qa"))
            .bearer_auth("shop-t")
            .json(&json!({ "path": missing })),
    )
    .await;
    assert_eq!((status, &body["argument"]), (422, &json!("path")), "{body}");
    contains(&body, "no artifact");

    // A part bound to no argument; a file part on an argument that takes no file.
    for (part, text) in [
        ("nonsense", "bound to no argument"),
        ("args", "`args` part"),
    ] {
        let form = reqwest::multipart::Form::new().text(part.to_owned(), "x");
        let (status, body) = refused(
            http.post(call("vision_qa"))
                .bearer_auth("shop-t")
                .multipart(form),
        )
        .await;
        assert_eq!((status, &body["part"]), (400, &json!(part)), "{body}");
        contains(&body, text);
    }
    let form = reqwest::multipart::Form::new().part(
        "background",
        reqwest::multipart::Part::bytes(photo(2)).file_name("x.png"),
    );
    let (status, body) = refused(
        http.post(call("vision_process"))
            .bearer_auth("shop-t")
            .multipart(form),
    )
    .await;
    assert_eq!(status, 400);
    contains(
        &body,
        "not a file argument of `vision_process` (its file arguments: path)",
    );

    // No such tool; a body that is not an object of arguments.
    let (status, _) = refused(
        http.post(call("rm_rf"))
            .bearer_auth("shop-t")
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = refused(
        http.post(call("baton_info"))
            .bearer_auth("shop-t")
            .json(&json!([1, 2])),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // Inline content over its limit (MCP's inline path, here through REST's JSON body).
    use base64::Engine as _;
    let big = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(vec![7u8; 20_000])
    );
    let (status, body) = refused(
        http.post(call("vision_qa"))
            .bearer_auth("pharmacy-t")
            .json(&json!({ "path": big })),
    )
    .await;
    assert_eq!((status, &body["argument"]), (422, &json!("path")), "{body}");
    contains(&body, "limits.inline_max_kb");

    // The rate: 3 calls a minute each. Of `shop`'s requests so far one reached the gate (the
    // missing artifact; refused bodies and media never did): two more pass, the next is not.
    for _ in 0..2 {
        let ok = http
            .post(call("baton_info"))
            .bearer_auth("shop-t")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let (status, body) = refused(http.post(call("baton_info")).bearer_auth("shop-t")).await;
    assert_eq!(status, 429, "{body}");
    contains(&body, "limits.calls_per_minute");
    // Starting a job is paced too: no job record is kept for a refused start.
    let (status, body) = refused(
        http.post(call("vision_batch"))
            .bearer_auth("shop-t")
            .json(&json!({ "paths": [] })),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    // Another principal has its own rate.
    let ok = http
        .post(call("baton_info"))
        .bearer_auth("pharmacy-t")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // `pharmacy` has one call left: not enough for a job (its start and its call).
    let (status, body) = refused(
        http.post(call("vision_batch"))
            .bearer_auth("pharmacy-t")
            .json(&json!({ "paths": [] })),
    )
    .await;
    assert_eq!(status, 429, "{body}");
}

const QUOTA: &str = r#"
[http]
upload_max_bytes = 700000
request_timeout_s = 1

[limits]
upload_quota_mb = 1
"#;

/// Uploads count against a quota until retention lets them go; a call past the request
/// time limit is cancelled, on the record.
#[tokio::test]
async fn uploads_stay_within_quota_until_gc_and_slow_calls_time_out() {
    let home = Home::new(&format!("{QUOTA}\n{SHOP}"));
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let upload = |fill: u8| {
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "application/octet-stream")
            .body(vec![fill; 600_000])
            .send()
    };
    assert_eq!(upload(1).await.unwrap().status(), 201);
    // The same bytes again count once.
    assert_eq!(upload(1).await.unwrap().status(), 201);
    let (status, body) = problem(upload(2).await.unwrap()).await;
    assert_eq!(status, 507, "{body}");
    // Nothing of a refused upload stays on disk (a kept one does, beside the store).
    let on_disk = |fill: u8| {
        let sha = digest(&[fill; 600_000]);
        home.path()
            .join(".baton/artifacts")
            .join(&sha[..2])
            .join(&sha[2..])
            .exists()
    };
    assert_eq!((on_disk(1), on_disk(2)), (true, false));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("limits.upload_quota_mb"),
        "{body}"
    );
    // Another principal has its own quota.
    let theirs = http
        .post(format!("{base}/v1/artifacts"))
        .bearer_auth("pharmacy-t")
        .body(vec![2u8; 600_000])
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 201);

    let gc = home
        .baton(&["artifacts", "gc", "--keep-days", "0", "--json"])
        .output()
        .await
        .unwrap();
    assert!(gc.status.success(), "{gc:?}");
    let gc: Value = serde_json::from_slice(&gc.stdout).unwrap();
    assert_eq!(
        (&gc["removed"], &gc["bytes"]),
        (&json!(2), &json!(1_200_000))
    );
    let sha = digest(&[1u8; 600_000]);
    let gone = http
        .get(format!("{base}/v1/artifacts/{sha}"))
        .bearer_auth("shop-t")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    assert_eq!(upload(2).await.unwrap().status(), 201);

    // Ten minutes of audio through a filter chain takes longer than the one second allowed.
    let chain: Vec<Value> = (0..8)
        .map(|_| json!({ "type": "peaking", "freq_hz": 1000.0, "q": 1.0, "gain_db": 3.0 }))
        .collect();
    let slow = http
        .post(format!("{base}/v1/tools/dsp_latency"))
        .bearer_auth("shop-t")
        .json(&json!({ "sample_rate": 384000, "chain": chain, "seconds": 600.0 }))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(slow).await;
    assert_eq!(status, 504, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("http.request_timeout_s"),
        "{body}"
    );
    let records = cancelled_latency(&home).await;
    assert_eq!(records.len(), 1, "{records:#?}");
}

/// The `dsp_latency` audit records, once one says `cancelled`.
async fn cancelled_latency(home: &Home) -> Vec<Value> {
    for _ in 0..100 {
        let export = home
            .baton(&["audit", "export", "--jsonl"])
            .output()
            .await
            .unwrap();
        let records: Vec<Value> = String::from_utf8(export.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .filter(|r: &Value| r["tool"] == "dsp_latency")
            .collect();
        if records
            .iter()
            .any(|r| r["outcome"]["error_kind"] == "cancelled")
        {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no cancelled dsp_latency record");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_call_on_the_record() {
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let chain: Vec<Value> = (0..8)
        .map(|_| json!({ "type": "peaking", "freq_hz": 1000.0, "q": 1.0, "gain_db": 3.0 }))
        .collect();
    let gone = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(format!("http://{}/v1/tools/dsp_latency", server.addr))
        .bearer_auth("shop-t")
        .json(&json!({ "sample_rate": 384000, "chain": chain, "seconds": 600.0 }))
        .send()
        .await;
    assert!(gone.unwrap_err().is_timeout());
    let records = cancelled_latency(&home).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["principal"], "shop");
}

/// A result that echoes an input lying in the output folder does not make that input an
/// artifact: only files the call wrote are kept.
#[tokio::test]
async fn only_files_the_call_wrote_are_kept_not_inputs_beside_them() {
    let Some(shots) =
        shots("rest_tools::only_files_the_call_wrote_are_kept_not_inputs_beside_them")
    else {
        return;
    };
    let home = Home::new(SHOP);
    let out = home.path().join("repo/out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::copy(shots.join("clean-blue-ellipse.jpg"), out.join("secret.jpg")).unwrap();
    std::fs::write(out.join("old.txt"), "not written by the call").unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"on-request\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let http = reqwest::Client::new();
    let started: Value = answer(
        http.post(format!("http://{}/v1/tools/vision_batch", server.addr))
            .bearer_auth("shop-t")
            .json(&json!({ "paths": [out.join("secret.jpg")], "out_dir": out })),
    )
    .await;
    let url = format!(
        "http://{}{}",
        server.addr,
        started["job"]["url"].as_str().unwrap()
    );
    let job = finished(&http, &url, "shop-t").await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let kept: Vec<(&str, &str)> = job["result"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["path"].as_str().unwrap()))
        .collect();
    let at = |name: &str| out.join(name).display().to_string();
    assert_eq!(
        kept,
        [
            ("secret.png", at("secret.png").as_str()),
            ("batch.json", at("batch.json").as_str())
        ]
    );
    // Named places keep their paths: local use is unchanged.
    assert_eq!(job["result"]["items"][0]["source"], at("secret.jpg"));
}

/// Content and URIs that are not what they claim are refused, naming the argument.
#[tokio::test]
async fn bad_inline_content_and_uris_are_named() {
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let http = reqwest::Client::new();
    for (tool, args, argument, text) in [
        (
            "vision_qa",
            json!({ "path": "data:image/png,rawbytes" }),
            "path",
            "base64",
        ),
        (
            "vision_qa",
            json!({ "path": "data:image/png;base64,@@@@" }),
            "path",
            "not base64",
        ),
        (
            "vision_qa",
            json!({ "path": "data:nothing" }),
            "path",
            "data:<media type>",
        ),
        (
            "vision_qa",
            json!({ "path": "baton://artifacts/../../etc/passwd" }),
            "path",
            "not an artifact URI",
        ),
        (
            "vision_segment",
            json!({ "path": "x.png", "out": "baton://artifacts/abc" }),
            "out",
            "not a place to write",
        ),
    ] {
        let (status, body) = refused(
            http.post(format!("http://{}/v1/tools/{tool}", server.addr))
                .bearer_auth("shop-t")
                .json(&args),
        )
        .await;
        assert_eq!(
            (status, body["argument"].as_str()),
            (422, Some(argument)),
            "{body}"
        );
        assert!(body["detail"].as_str().unwrap().contains(text), "{body}");
    }
    // A long tool's call runs as a job: bad arguments fail the job, naming the argument.
    let started: Value = answer(
        http.post(format!("http://{}/v1/tools/vision_batch", server.addr))
            .bearer_auth("shop-t")
            .json(&json!({ "paths": ["baton://artifacts/abc"] })),
    )
    .await;
    let url = format!(
        "http://{}{}",
        server.addr,
        started["job"]["url"].as_str().unwrap()
    );
    let job = finished(&http, &url, "shop-t").await;
    assert_eq!(
        (&job["status"], &job["argument"]),
        (&json!("failed"), &json!("paths[0]")),
        "{job:#}"
    );
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("not an artifact URI"),
        "{job:#}"
    );
}

/// A value the reviewer saw as `[REDACTED]` is still part of what was approved: swapping it
/// after approval is refused.
#[tokio::test]
async fn a_redacted_value_cannot_be_swapped_after_approval() {
    let home = Home::new(SHOP);
    let rules = home.path().join("knowledge/rx");
    std::fs::create_dir_all(&rules).unwrap();
    let tables = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge/rx");
    for table in std::fs::read_dir(tables).unwrap() {
        let table = table.unwrap().path();
        std::fs::copy(&table, rules.join(table.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        home.path().join("policy.toml"),
        "[[rules]]\nid = \"rx-reviewed\"\ntool = \"rx_validate\"\naction = \"require-approval\"\nreason = \"prescriptions are reviewed\"\n",
    )
    .unwrap();
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/v1/tools/rx_validate", server.addr);
    let with =
        |token: &str| json!({ "prescription": { "jurisdiction": "NSW", "api_token": token } });
    let pending: Value = answer(
        http.post(&url)
            .bearer_auth("shop-t")
            .json(&with("harmless")),
    )
    .await;
    let id = pending["approval_id"].as_str().unwrap().to_owned();
    let shown = home
        .baton(&["approvals", "list", "--json"])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        shown.contains("[REDACTED]") && !shown.contains("harmless"),
        "{shown}"
    );
    let approved = home
        .baton(&["approvals", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(approved.status.success(), "{approved:?}");
    let (status, body) = refused(
        http.post(format!("{url}?approval_id={id}"))
            .bearer_auth("shop-t")
            .json(&with("attacker-chosen")),
    )
    .await;
    assert_eq!((status, &body["rule"]), (403, &json!("approval")), "{body}");
    let ran = http
        .post(format!("{url}?approval_id={id}"))
        .bearer_auth("shop-t")
        .json(&with("harmless"))
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), 200, "{}", ran.text().await.unwrap());
    // The audit log keeps the redacted digest for every record of the call.
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let redacted = baton_runs::args_digest(&with("anything"));
    let digests: Vec<String> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["tool"] == "rx_validate")
        .map(|r| r["args_digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(digests, vec![redacted; 3]);
}

/// What comes back is what was sent, said as the caller knows it: inline content of a type
/// Baton reads nothing of is refused, errors name artifacts by URI (never Baton's private
/// folder), downloads are never rendered as pages, and HTTP's lenient corners are honoured.
#[tokio::test]
async fn inline_content_is_typed_and_answers_speak_of_uris() {
    let home = Home::new(SHOP);
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    use base64::Engine as _;
    let html = format!(
        "data:text/html;base64,{}",
        base64::engine::general_purpose::STANDARD.encode("<script>alert(1)</script>")
    );
    let (status, body) = refused(
        http.post(format!("{base}/v1/tools/vision_qa"))
            .bearer_auth("shop-t")
            .json(&json!({ "path": html })),
    )
    .await;
    assert_eq!((status, &body["argument"]), (422, &json!("path")), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("text/html"),
        "{body}"
    );

    // Not a photo: the error names the artifact, not where Baton put it.
    let kept: Value = http
        .post(format!("{base}/v1/artifacts"))
        .header("authorization", "bearer shop-t")
        .body(vec![0x42u8; 5000])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uri = kept["uri"].as_str().unwrap();
    let (status, body) = refused(
        http.post(format!("{base}/v1/tools/vision_qa"))
            .bearer_auth("shop-t")
            .json(&json!({ "path": uri })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(uri) && !detail.contains("/tmp/"), "{body}");

    // Downloads: no sniffing, no rendering; a JSON artifact is an attachment.
    let json_uri: Value = answer(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "application/json")
            .body(r#"{"a": 1}"#),
    )
    .await;
    let got = http
        .get(format!(
            "{base}/v1/artifacts/{}",
            json_uri["sha256"].as_str().unwrap()
        ))
        .bearer_auth("shop-t")
        .header("range", "items=0-1")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200, "a range in another unit is ignored");
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        got.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert_eq!(got.headers()["content-disposition"], "attachment");

    // Unknown routes and methods answer problem details too.
    let (status, _) = refused(http.get(format!("{base}/v1/nothing")).bearer_auth("shop-t")).await;
    assert_eq!(status, 404);
    let (status, _) = refused(
        http.put(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t"),
    )
    .await;
    assert_eq!(status, 405);
}

/// Files a call writes count against its caller's quota like uploads: a few bytes in cannot
/// become gigabytes kept.
#[tokio::test]
async fn outputs_count_against_the_callers_quota() {
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dsp/audio");
    if !baton_test_support::generated(
        "rest_tools::outputs_count_against_the_callers_quota",
        &audio,
    ) {
        return;
    }
    let home = Home::new(&format!("[limits]\nupload_quota_mb = 2\n{SHOP}"));
    let server = HttpServer::start_with_env(&home, &[], &ENV).await;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    // 705 kB of 16-bit stereo in; the filtered 32-bit float copy is twice that.
    let wav = std::fs::read(audio.join("clipped-44k-stereo-16.wav")).unwrap();
    let kept: Value = answer(
        http.post(format!("{base}/v1/artifacts"))
            .bearer_auth("shop-t")
            .header("content-type", "audio/wav")
            .body(wav),
    )
    .await;
    let (status, body) = refused(
        http.post(format!("{base}/v1/tools/dsp_filter"))
            .bearer_auth("shop-t")
            .json(&json!({ "path": kept["uri"], "chain": [{ "type": "lowpass", "freq_hz": 1000.0 }] })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("limits.upload_quota_mb"), "{body}");
    assert!(!detail.contains("/tmp/"), "{body}");
    // Another principal, with room, gets its output.
    let theirs = http
        .post(format!("{base}/v1/tools/dsp_filter"))
        .bearer_auth("pharmacy-t")
        .json(&json!({ "path": kept["uri"], "chain": [{ "type": "lowpass", "freq_hz": 1000.0 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 200);
}
