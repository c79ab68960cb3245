//! The plain-HTTP face's artifacts: an upload answered by its URI, read back whole, by byte
//! range and with its ETag, and every bad request a problem-details error naming what was
//! wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pretty_assertions::assert_eq;
use serde_json::Value;

use super::common::{Home, HttpServer};

const TOKENS: &str = r#"
[http]
upload_max_bytes = 400000

[[http.tokens]]
principal = "shop"
roles = ["agent"]
token_env = "SHOP_TOKEN"
"#;

/// The status and problem-details body of a refusal.
pub(super) async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn uploads_come_back_whole_by_range_and_by_etag_and_bad_requests_are_named() {
    let home = Home::new(TOKENS);
    let server = HttpServer::start_with_env(&home, &[], &[("SHOP_TOKEN", "shop-t")]).await;
    let base = format!("http://{}/v1/artifacts", server.addr);
    let http = reqwest::Client::new();
    let bytes: Vec<u8> = (0..300_000u32).map(|n| (n * 7 % 251) as u8).collect();

    let kept: Value = http
        .post(&base)
        .bearer_auth("shop-t")
        .header("content-type", "audio/wav")
        .body(bytes.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sha = kept["sha256"].as_str().unwrap().to_owned();
    assert_eq!(kept["uri"], format!("baton://artifacts/{sha}"));
    assert_eq!(
        (&kept["size"], &kept["media_type"]),
        (&Value::from(300_000), &Value::from("audio/wav"))
    );

    let whole = http
        .get(format!("{base}/{sha}"))
        .bearer_auth("shop-t")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.headers()["etag"], format!("\"{sha}\""));
    assert_eq!(whole.bytes().await.unwrap().to_vec(), bytes);

    let cached = http
        .get(format!("{base}/{sha}"))
        .bearer_auth("shop-t")
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    for (range, want, from, to) in [
        ("bytes=10-19", "bytes 10-19/300000", 10, 20),
        ("bytes=-5", "bytes 299995-299999/300000", 299_995, 300_000),
    ] {
        let part = http
            .get(format!("{base}/{sha}"))
            .bearer_auth("shop-t")
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (
                part.status().as_u16(),
                part.headers()["content-range"].to_str().unwrap()
            ),
            (206, want)
        );
        assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[from..to]);
    }

    // MCP clients read the same bytes with resources/read.
    use rmcp::ServiceExt as _;
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
            server.url(),
        )
        .auth_header("shop-t"),
    );
    let client = ().serve(transport).await.unwrap();
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "baton://artifacts/{sha}"
        )))
        .await
        .unwrap();
    let blob = serde_json::to_value(&read.contents[0]).unwrap()["blob"]
        .as_str()
        .unwrap()
        .to_owned();
    client.cancel().await.unwrap();
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap(),
        bytes
    );

    // Every refusal names what was wrong.
    let (status, body) = problem(http.post(&base).body("x").send().await.unwrap()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = problem(
        http.post(&base)
            .bearer_auth("shop-t")
            .body(vec![0u8; 400_001])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("http.upload_max_bytes"),
        "{body}"
    );
    let (status, body) = problem(
        http.post(&base)
            .bearer_auth("shop-t")
            .header("content-type", "not a type")
            .body("x")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 415);
    assert!(
        body["detail"].as_str().unwrap().contains("not a type"),
        "{body}"
    );
    let missing = "0".repeat(64);
    let (status, body) = problem(
        http.get(format!("{base}/{missing}"))
            .bearer_auth("shop-t")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["detail"].as_str().unwrap().contains(&missing),
        "{body}"
    );
    let (status, _) = problem(
        http.get(format!("{base}/..%2f..%2fetc%2fpasswd"))
            .bearer_auth("shop-t")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = problem(
        http.get(format!("{base}/{sha}"))
            .bearer_auth("shop-t")
            .header("range", "bytes=400000-")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 416);
}
