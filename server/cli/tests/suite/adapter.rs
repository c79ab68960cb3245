//! The MCP adapter in-process: progress, cancellation and pagination reach kit tools through
//! the gate. A real rmcp client talks to `BatonMcp` over Baton's own stdio transport on a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::common::Home;
use baton_cli::{App, BatonMcp, Config};
use baton_kit::{Effect, Principal, Role, Tool, ToolContext, ToolError};
use baton_mcp::transport::stdio::StdioTransport;
use pretty_assertions::assert_eq;
use rmcp::model::{
    CallToolRequestParams, ClientRequest, PaginatedRequestParams, ProgressNotificationParam,
    Request, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;

/// Arguments of `test_slow`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SlowArgs {
    /// How many steps.
    steps: u32,
    /// Milliseconds per step.
    step_ms: u64,
}

/// How far it got.
#[derive(Debug, Serialize, JsonSchema)]
struct SlowOutput {
    /// Steps completed.
    done: u32,
}

struct Slow {
    saw_cancel: Arc<AtomicBool>,
}

impl Tool for Slow {
    type Args = SlowArgs;
    type Output = SlowOutput;
    const NAME: &'static str = "test_slow";
    const DESCRIPTION: &'static str = "Sleeps in steps, reporting progress.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: SlowArgs, ctx: ToolContext) -> baton_kit::Result<SlowOutput> {
        for step in 1..=args.steps {
            tokio::select! {
                () = ctx.cancellation().cancelled() => {
                    self.saw_cancel.store(true, Ordering::SeqCst);
                    return Err(ToolError::Cancelled);
                }
                () = tokio::time::sleep(Duration::from_millis(args.step_ms)) => {}
            }
            ctx.progress(
                f64::from(step),
                Some(f64::from(args.steps)),
                format!("step {step}"),
            );
        }
        Ok(SlowOutput { done: args.steps })
    }
}

#[derive(Clone)]
struct Watcher(mpsc::UnboundedSender<ProgressNotificationParam>);

impl ClientHandler for Watcher {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params);
    }
}

struct Harness {
    client: RunningService<RoleClient, Watcher>,
    progress: mpsc::UnboundedReceiver<ProgressNotificationParam>,
    saw_cancel: Arc<AtomicBool>,
    _home: Home,
}

async fn harness(extra_config: &str) -> Harness {
    let home = Home::new(extra_config);
    let config = Config::load(Some(&home.config())).unwrap();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let flag = saw_cancel.clone();
    let app = App::builder(config)
        .tools(move |registry| registry.register("test", Slow { saw_cancel: flag }))
        .build()
        .unwrap();
    let handler = BatonMcp::new(
        app.served.clone(),
        Some(Arc::new(Principal::new("tester", [Role::Agent]))),
    )
    .unwrap();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let (read, write) = tokio::io::split(server_io);
    tokio::spawn(async move {
        let running = handler
            .serve(StdioTransport::new(read, write, 1 << 20))
            .await
            .unwrap();
        let _ = running.waiting().await;
    });
    let (tx, progress) = mpsc::unbounded_channel();
    let client = Watcher(tx).serve(client_io).await.unwrap();
    Harness {
        client,
        progress,
        saw_cancel,
        _home: home,
    }
}

fn slow(steps: u32, step_ms: u64) -> ClientRequest {
    let mut params = CallToolRequestParams::new("test_slow");
    params.arguments = json!({ "steps": steps, "step_ms": step_ms })
        .as_object()
        .cloned();
    ClientRequest::CallToolRequest(Request::new(params))
}

#[tokio::test]
async fn progress_reaches_the_client_in_order() {
    let mut h = harness("").await;
    let handle = h
        .client
        .send_cancellable_request(slow(3, 5), PeerRequestOptions::no_options())
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result");
    };
    assert_eq!(result.structured_content, Some(json!({ "done": 3 })));
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let update = tokio::time::timeout(Duration::from_secs(5), h.progress.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(update.progress_token, token);
        seen.push((update.progress, update.total, update.message));
    }
    assert_eq!(
        seen,
        vec![
            (1.0, Some(3.0), Some("step 1".to_owned())),
            (2.0, Some(3.0), Some("step 2".to_owned())),
            (3.0, Some(3.0), Some("step 3".to_owned())),
        ]
    );
}

#[tokio::test]
async fn cancellation_reaches_the_tool_and_the_server_keeps_serving() {
    let mut h = harness("").await;
    let handle = h
        .client
        .send_cancellable_request(slow(10_000, 10), PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Wait until the tool is demonstrably running, then cancel.
    tokio::time::timeout(Duration::from_secs(5), h.progress.recv())
        .await
        .unwrap()
        .unwrap();
    handle.cancel(Some("test".into())).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !h.saw_cancel.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the tool never saw the cancellation");

    let info = h
        .client
        .call_tool(CallToolRequestParams::new("baton_info"))
        .await
        .unwrap();
    assert_eq!(info.structured_content.unwrap()["name"], "baton");
}

#[tokio::test]
async fn lists_paginate_and_foreign_cursors_are_refused() {
    let h = harness("[server]\npage_size = 1").await;
    let first = h.client.list_tools(None).await.unwrap();
    assert_eq!(first.tools.len(), 1);
    assert_eq!(first.next_cursor.as_deref(), Some("1"));
    let names: Vec<String> = h
        .client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|tool| tool.name.to_string())
        .collect();
    assert_eq!(names, [super::common::BATON_TOOLS, &["test_slow"]].concat());

    let error = h
        .client
        .list_tools(Some(
            PaginatedRequestParams::default().with_cursor(Some("bogus".into())),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Mcp error: -32602: invalid cursor `bogus`({\"cursor\":\"bogus\"})"
    );
}

mod hostile {
    //! Property test: arbitrary JSON as the arguments of every tool a default Baton serves is
    //! bound (checked against the tool's argument type) or refused as invalid arguments,
    //! naming where — never a panic, never another kind of error. Fixed seed, bounded cases.
    use std::sync::LazyLock;

    use baton_kit::{Registry, ToolErrorKind};
    use proptest::prelude::*;
    use proptest::test_runner::{Config as RunnerConfig, RngSeed};
    use serde_json::Value;

    static REGISTRY: LazyLock<(super::Home, baton_cli::App)> = LazyLock::new(|| {
        let home = super::Home::new("");
        let config = super::Config::load(Some(&home.config())).unwrap();
        let app = super::App::build(config).unwrap();
        (home, app)
    });

    fn registry() -> &'static Registry {
        REGISTRY.1.gate().registry()
    }

    /// Names the tools' arguments really have, and others.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "path",
                "repo",
                "out",
                "out_dir",
                "query",
                "fft_size",
                "hop",
                "chain",
                "document",
                "paths",
                "task",
                "agent",
                "content",
                "argv",
                "shell",
                "timeout_s",
                "id",
                "decision",
                "note",
                "feature",
                "brief",
                "spectrogram",
                "method",
                "to",
            ])
            .prop_map(str::to_owned),
            proptest::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            proptest::collection::vec(any::<char>(), 0..8)
                .prop_map(|c| Value::from(String::from_iter(c))),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(RunnerConfig {
            cases: 20_000,
            rng_seed: RngSeed::Fixed(0x5eed_0016),
            failure_persistence: None,
            ..RunnerConfig::default()
        })]

        #[test]
        fn arbitrary_arguments_bind_or_are_invalid_never_panic(
            tool in 0usize..64,
            args in json(),
        ) {
            let names: Vec<String> = registry().descriptors().map(|d| d.name.clone()).collect();
            let name = &names[tool % names.len()];
            let tool = registry().get(name).unwrap().clone();
            if let Err(error) = tool.bind(&args) {
                prop_assert_eq!(error.kind(), ToolErrorKind::InvalidArgs, "{}: {}", name, error);
            }
        }
    }
}
