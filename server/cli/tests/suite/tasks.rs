//! Long tools as MCP tasks (the tasks extension rmcp implements): a `vision_batch` of 200
//! photos returns a task at once, survives its client going away, can be cancelled, and a
//! server killed in the middle of one reports it failed after its restart — with the audit
//! record the call never got.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, ClientConfig,
    GetTaskParams, Implementation, TaskStatus,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, RoleClient, ServiceExt as _};
use serde_json::{Value, json};

use super::common::{Home, HttpServer};

#[derive(Clone)]
struct TaskClient;

impl ClientHandler for TaskClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_tasks().build(),
            Implementation::new("tasks-test", "1"),
        )
    }
}

async fn connect(server: &HttpServer) -> RunningService<RoleClient, TaskClient> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()),
    );
    TaskClient.serve(transport).await.unwrap()
}

/// 200 product shots: a coloured box on a white backdrop, a little different each.
fn photos(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for n in 0..200u32 {
        let image = image::RgbImage::from_fn(480, 480, |x, y| {
            let inside = (120 + n % 40..360).contains(&x) && (100..380 - n % 30).contains(&y);
            if inside {
                image::Rgb([(40 + n % 150) as u8, 90, (200 - n % 100) as u8])
            } else {
                image::Rgb([252, 252, 252])
            }
        });
        image.save(dir.join(format!("shot-{n:03}.png"))).unwrap();
    }
}

async fn start_batch(
    client: &RunningService<RoleClient, TaskClient>,
    home: &Home,
    out: &str,
) -> (String, Duration) {
    let mut params = CallToolRequestParams::new("vision_batch");
    params.arguments =
        json!({ "dir": home.path().join("photos"), "out_dir": home.path().join(out) })
            .as_object()
            .cloned();
    let asked = Instant::now();
    let response = client.peer().call_tool_once(params).await.unwrap();
    let took = asked.elapsed();
    let CallToolResponse::Task(created) = response else {
        panic!("not a task: {response:?}");
    };
    (created.task.task_id, took)
}

async fn until(
    client: &RunningService<RoleClient, TaskClient>,
    id: &str,
    status: TaskStatus,
    limit: Duration,
) -> Value {
    let started = Instant::now();
    loop {
        let got = client
            .peer()
            .get_task(GetTaskParams::new(id.to_owned()))
            .await
            .unwrap();
        if got.task.status() == status {
            return serde_json::to_value(&got).unwrap();
        }
        assert!(
            started.elapsed() < limit,
            "task {id} is {:?}, not {status:?}, after {limit:?}",
            got.task.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_long_batch_runs_as_a_task_that_outlives_its_client_cancels_and_survives_a_crash() {
    let home = Home::new("");
    photos(&home.path().join("photos"));
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"out\", \"out2\", \"out3\"]\n",
    )
    .unwrap();
    let mut server = HttpServer::start(&home, &[]).await;

    // A task at once; the client goes away; another connection gets the report.
    let client = connect(&server).await;
    let (id, took) = start_batch(&client, &home, "out").await;
    eprintln!("task id returned in {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "the task took {took:?} to be handed out"
    );
    client.cancel().await.unwrap();
    let client = connect(&server).await;
    let done = until(
        &client,
        &id,
        TaskStatus::Completed,
        Duration::from_secs(300),
    )
    .await;
    let items = done["result"]["structuredContent"]["items"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 200, "{done:#}");

    // Cancelled mid-way: it stops, and says so.
    let (id, _) = start_batch(&client, &home, "out2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Its progress shows as the task's status message.
    let mut message = None;
    for _ in 0..100 {
        let working = client
            .peer()
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .unwrap();
        assert_eq!(working.task.status(), TaskStatus::Working);
        message = working.task.task.status_message.clone();
        if message.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let message = message.unwrap_or_default();
    assert!(
        message.contains("/200: ") && message.ends_with("of 200 photos"),
        "status message: {message:?}"
    );
    let asked = Instant::now();
    client
        .peer()
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .unwrap();
    until(&client, &id, TaskStatus::Cancelled, Duration::from_secs(10)).await;
    eprintln!("cancelled within {:?}", asked.elapsed());
    assert!(!home.path().join("out2/batch.json").exists());
    client.cancel().await.unwrap();

    // The server is killed in the middle of one: after its restart the task is failed, and
    // the call has its audit record.
    let client = connect(&server).await;
    let (id, _) = start_batch(&client, &home, "out3").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    drop(client);
    let server = HttpServer::start(&home, &[]).await;
    let client = connect(&server).await;
    let failed = until(&client, &id, TaskStatus::Failed, Duration::from_secs(5)).await;
    assert_eq!(
        failed["error"]["data"]["kind"], "server_stopped",
        "{failed:#}"
    );
    client.cancel().await.unwrap();
    let export = home
        .baton(&["audit", "export", "--jsonl"])
        .output()
        .await
        .unwrap();
    let lost = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["tool"] == "vision_batch" && r["outcome"]["error_kind"] == "server_stopped")
        .count();
    assert_eq!(lost, 1);
}
