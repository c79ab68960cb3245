//! The gate through rmcp's client over stdio and HTTP: sandbox denials naming the rule, the
//! three approval paths, separation of duties, expiry. Servers run in-process (with two
//! test-only tools that really write a file and really run a process); reviewers act through
//! a second HTTP principal or the real `baton` CLI in another process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::common::Home;
use baton_cli::{App, BatonMcp, Config};
use baton_gate::ManualClock;
use baton_kit::{Effect, Principal, Role, Tool, ToolContext, ToolError};
use baton_mcp::transport::{http, stdio::StdioTransport};
use baton_runs::{OutcomeStatus, Ownership, StoreApi as _};
use pretty_assertions::assert_eq;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient, ServiceExt,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

// ---- test-only tools with real effects -------------------------------------------------

/// Arguments of `test_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    /// Repository root.
    repo: String,
    /// File to write, relative to `repo`.
    path: String,
    /// What to write.
    content: String,
}

/// What was written.
#[derive(Debug, Serialize, JsonSchema)]
struct Written {
    /// Bytes written.
    bytes: usize,
}

struct TestWrite;

impl Tool for TestWrite {
    type Args = WriteArgs;
    type Output = Written;
    const NAME: &'static str = "test_write";
    const DESCRIPTION: &'static str = "Append a line to a file in a repository (test tool).";
    const EFFECT: Effect = Effect::Write;
    const PATH_ARGS: &'static [&'static str] = &["/path"];
    const ROOT_ARG: Option<&'static str> = Some("/repo");

    async fn call(&self, args: WriteArgs, _ctx: ToolContext) -> baton_kit::Result<Written> {
        use std::io::Write as _;
        let path = std::path::Path::new(&args.repo).join(&args.path);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| ToolError::failed(format!("{}: {e}", path.display())))?;
        writeln!(file, "{}", args.content).map_err(|e| ToolError::failed(e.to_string()))?;
        Ok(Written {
            bytes: args.content.len() + 1,
        })
    }
}

/// Arguments of `test_exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ExecArgs {
    /// Working directory.
    cwd: String,
    /// Program and arguments.
    argv: Vec<String>,
}

/// How it ended.
#[derive(Debug, Serialize, JsonSchema)]
struct Ran {
    /// Exit code.
    code: i32,
}

struct TestExec;

impl Tool for TestExec {
    type Args = ExecArgs;
    type Output = Ran;
    const NAME: &'static str = "test_exec";
    const DESCRIPTION: &'static str = "Run a program (test tool).";
    const EFFECT: Effect = Effect::Exec;
    const PATH_ARGS: &'static [&'static str] = &["/cwd"];

    async fn call(&self, args: ExecArgs, _ctx: ToolContext) -> baton_kit::Result<Ran> {
        let (program, rest) = args
            .argv
            .split_first()
            .ok_or_else(|| ToolError::invalid_args("argv", "empty"))?;
        let status = std::process::Command::new(program)
            .args(rest)
            .current_dir(&args.cwd)
            .status()
            .map_err(|e| ToolError::failed(e.to_string()))?;
        Ok(Ran {
            code: status.code().unwrap_or(-1),
        })
    }
}

/// Arguments of `test_hold`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HoldArgs {
    /// How long to hold the call, in milliseconds.
    ms: u64,
}

/// A heavy read that takes `ms` (test tool).
struct TestHold;

/// Notified each time a `test_hold` call starts running.
static HELD: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

impl Tool for TestHold {
    type Args = HoldArgs;
    type Output = Ran;
    const NAME: &'static str = "test_hold";
    const DESCRIPTION: &'static str = "Hold a call for a while (test tool).";
    const EFFECT: Effect = Effect::Read;
    const HEAVY: bool = true;

    async fn call(&self, args: HoldArgs, _ctx: ToolContext) -> baton_kit::Result<Ran> {
        // The gate admitted the call: say so, so a test knows the room is taken.
        HELD.notify_one();
        tokio::time::sleep(Duration::from_millis(args.ms)).await;
        Ok(Ran { code: 0 })
    }
}

// ---- harness ------------------------------------------------------------------------------

pub(super) const AGENT: &str = "agent-token";
pub(super) const REVIEWER: &str = "reviewer-token";
pub(super) const BOTH: &str = "alice-token";
/// An agent's token whose client is not trusted to show approval forms to a person.
pub(super) const BOT: &str = "bot-token";

fn sha(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) struct Server {
    pub(super) home: Home,
    pub(super) addr: SocketAddr,
    pub(super) handler: BatonMcp,
    /// The server's clock: it stands still unless a test moves it.
    pub(super) clock: ManualClock,
    _shutdown: tokio_util::sync::DropGuard,
}

/// An in-process Baton owning its store, on HTTP (tokens for `codex` — whose client may
/// answer approval forms —, `rev`, `alice`, `bot`) and ready to serve stdio, with `policy` as
/// its policy file.
pub(super) async fn server(policy: &str) -> Server {
    server_with(policy, "").await
}

/// [`server`] with `stdio` appended to the `[stdio]` section of its config.
pub(super) async fn server_with(policy: &str, stdio: &str) -> Server {
    let home = Home::new(&format!(
        "[[http.tokens]]\nprincipal = \"codex\"\nroles = [\"agent\"]\ntoken_sha256 = \"{}\"\napprove_in_client = true\n\n\
         [[http.tokens]]\nprincipal = \"rev\"\nroles = [\"reviewer\"]\ntoken_sha256 = \"{}\"\n\n\
         [[http.tokens]]\nprincipal = \"alice\"\nroles = [\"agent\", \"reviewer\"]\ntoken_sha256 = \"{}\"\n\n\
         [[http.tokens]]\nprincipal = \"bot\"\nroles = [\"agent\"]\ntoken_sha256 = \"{}\"\n\n\
         [stdio]\nprincipal = \"codex\"\n{stdio}\n",
        sha(AGENT),
        sha(REVIEWER),
        sha(BOTH),
        sha(BOT)
    ));
    std::fs::create_dir_all(home.path().join("repo")).unwrap();
    std::fs::write(home.path().join("policy.toml"), policy).unwrap();
    let config = Config::load(Some(&home.config())).unwrap();
    let clock = ManualClock::starting_now();
    let app = App::builder(config)
        .ownership(Ownership::Serve)
        .clock(Arc::new(clock.clone()))
        .tools(|registry| {
            registry.register("test", TestWrite)?;
            registry.register("test", TestExec)
        })
        .build()
        .unwrap();
    app.store().connect().await.unwrap();
    let app = Arc::new(app);
    let handler = BatonMcp::new(
        app.served.clone(),
        Some(Arc::new(Principal::new("codex", [Role::Agent]))),
    )
    .unwrap();
    let http_handler = BatonMcp::new(app.served.clone(), None).unwrap();
    let shutdown = CancellationToken::new();
    let (ready, bound) = tokio::sync::oneshot::channel();
    let token = shutdown.clone();
    tokio::spawn(async move {
        http::serve(
            http_handler,
            &app.served.settings,
            "127.0.0.1:0".parse().unwrap(),
            token,
            |_| None,
            |addr| {
                let _ = ready.send(addr);
            },
        )
        .await
        .unwrap();
    });
    let addr = bound.await.unwrap();
    Server {
        home,
        addr,
        handler,
        clock,
        _shutdown: shutdown.drop_guard(),
    }
}

/// How a test client answers approval forms.
#[derive(Clone)]
pub(super) struct Client {
    /// `None`: declare no elicitation capability at all. Otherwise the form's decision and
    /// note; the decisions `decline` and `cancel` answer with those actions, and `hang`
    /// never answers.
    pub(super) answer: Option<(&'static str, &'static str)>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.answer.is_some() {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(
            capabilities,
            rmcp::model::Implementation::new("gate-test", "1"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let (decision, note) = self.answer.unwrap_or(("reject", "no answer configured"));
        let message = match &request {
            ElicitRequestParams::FormElicitationParams { message, .. } => message.clone(),
            _ => String::new(),
        };
        assert!(
            message.starts_with("Baton asks for approval: `test_write`"),
            "{message}"
        );
        match decision {
            "decline" => return Ok(ElicitResult::new(ElicitationAction::Decline)),
            "cancel" => return Ok(ElicitResult::new(ElicitationAction::Cancel)),
            "hang" => std::future::pending::<()>().await,
            _ => {}
        }
        let mut result = ElicitResult::new(ElicitationAction::Accept);
        result.content = Some(json!({ "decision": decision, "note": note }));
        Ok(result)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    Stdio,
    Http,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Era {
    Legacy,
    Modern,
}

pub(super) async fn connect(
    server: &Server,
    wire: Wire,
    era: Era,
    token: &str,
    client: Client,
) -> RunningService<RoleClient, Client> {
    let lifecycle = match era {
        Era::Legacy => ClientLifecycleMode::Initialize,
        Era::Modern => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    };
    match wire {
        Wire::Stdio => {
            let (server_io, client_io) = tokio::io::duplex(1 << 16);
            let (read, write) = tokio::io::split(server_io);
            let handler = server.handler.clone();
            tokio::spawn(async move {
                if let Ok(running) = handler
                    .serve(StdioTransport::new(read, write, 1 << 20))
                    .await
                {
                    let _ = running.waiting().await;
                }
            });
            client
                .serve_with_lifecycle(client_io, lifecycle)
                .await
                .unwrap()
        }
        Wire::Http => {
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(format!(
                    "http://{}/mcp",
                    server.addr
                ))
                .auth_header(token),
            );
            client
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .unwrap()
        }
    }
}

pub(super) fn params(name: &str, args: Value) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name.to_owned());
    params.arguments = args.as_object().cloned();
    params
}

pub(super) fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn write_args(server: &Server, content: &str) -> Value {
    json!({ "repo": server.home.path().join("repo"), "path": "notes.txt", "content": content })
}

fn file(server: &Server) -> String {
    std::fs::read_to_string(server.home.path().join("repo/notes.txt")).unwrap_or_default()
}

pub(super) const READ_ONLY: &str = "sandbox = \"read-only\"\napproval = \"untrusted\"\n";
pub(super) const WORKSPACE: &str =
    "sandbox = \"workspace-write\"\napproval = \"untrusted\"\nwritable_roots = [\"repo\"]\n";

// ---- tests -------------------------------------------------------------------------------

#[tokio::test]
async fn read_only_denies_write_and_exec_naming_the_rule() {
    let server = server(READ_ONLY).await;
    for wire in [Wire::Stdio, Wire::Http] {
        let client = connect(&server, wire, Era::Legacy, AGENT, Client { answer: None }).await;
        let write = client
            .call_tool(params("test_write", write_args(&server, "x")))
            .await
            .unwrap();
        let exec = client
            .call_tool(params(
                "test_exec",
                json!({ "cwd": server.home.path().join("repo"), "argv": ["touch", "ran"] }),
            ))
            .await
            .unwrap();
        assert_eq!(write.is_error, Some(true));
        assert_eq!(
            text(&write),
            "denied: denied by rule `sandbox.read-only`: the sandbox is `read-only` and `test_write` has effect `write`",
            "{wire:?}"
        );
        assert_eq!(
            text(&exec),
            "denied: denied by rule `sandbox.read-only`: the sandbox is `read-only` and `test_exec` has effect `exec`",
            "{wire:?}"
        );
        client.cancel().await.unwrap();
    }
    assert_eq!(file(&server), "", "nothing was written");
    assert!(!server.home.path().join("repo/ran").exists(), "nothing ran");
    let audit = server
        .handler
        .served()
        .gate
        .store()
        .audit_records(0, 100)
        .await
        .unwrap();
    let denied: Vec<(&str, &str, OutcomeStatus)> = audit
        .iter()
        .map(|r| (r.tool.as_str(), &*r.decision.rule, r.outcome.status))
        .collect();
    assert_eq!(denied.len(), 4);
    assert!(
        denied
            .iter()
            .all(|(_, rule, status)| *rule == "sandbox.read-only"
                && *status == OutcomeStatus::Denied)
    );
}

fn pending_id(result: &CallToolResult) -> String {
    result
        .structured_content
        .as_ref()
        .and_then(|v| v.pointer("/pending_approval/approval_id"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no pending approval in {result:?}"))
        .to_owned()
}

#[tokio::test]
async fn approval_by_pending_result_then_reviewer_then_recall_once() {
    let server = server(WORKSPACE).await;
    for wire in [Wire::Stdio, Wire::Http] {
        let agent = connect(&server, wire, Era::Legacy, AGENT, Client { answer: None }).await;
        let args = write_args(&server, &format!("via {wire:?}"));
        let first = agent
            .call_tool(params("test_write", args.clone()))
            .await
            .unwrap();
        assert_eq!(first.is_error, Some(true));
        let id = pending_id(&first);
        assert!(
            text(&first).contains(&format!("\"_baton_approval\": \"{id}\"")),
            "{}",
            text(&first)
        );

        // The reviewer: over HTTP with a reviewer token, or as the person at a shell with the
        // real CLI (another process, reaching this server's store through its socket).
        match wire {
            Wire::Http => {
                let reviewer = connect(
                    &server,
                    Wire::Http,
                    Era::Legacy,
                    REVIEWER,
                    Client { answer: None },
                )
                .await;
                let listed = reviewer
                    .call_tool(params("approvals_list", json!({})))
                    .await
                    .unwrap();
                assert_eq!(
                    listed.structured_content.unwrap()["approvals"][0]["id"],
                    id.as_str()
                );
                let decided = reviewer
                    .call_tool(params(
                        "approvals_decide",
                        json!({ "id": id, "decision": "approve", "note": "ok" }),
                    ))
                    .await
                    .unwrap();
                assert_eq!(
                    decided.structured_content.unwrap()["approval"]["decider"],
                    "rev"
                );
                reviewer.cancel().await.unwrap();
            }
            Wire::Stdio => {
                let output = server
                    .home
                    .baton(&["approvals", "approve", &id[..12]])
                    .output()
                    .await
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                assert!(
                    stdout.starts_with(&format!("approved {id}: `test_write` requested by codex")),
                    "{stdout}"
                );
            }
        }

        let mut again = args.clone();
        again["_baton_approval"] = json!(id);
        let ran = agent
            .call_tool(params("test_write", again.clone()))
            .await
            .unwrap();
        assert_eq!(ran.is_error, Some(false), "{}", text(&ran));
        assert_eq!(
            ran.structured_content,
            Some(json!({ "bytes": format!("via {wire:?}").len() + 1 }))
        );
        let twice = agent.call_tool(params("test_write", again)).await.unwrap();
        assert_eq!(
            text(&twice),
            format!("denied: denied by rule `approval`: approval `{id}`: it was already used")
        );
        agent.cancel().await.unwrap();
    }
    assert_eq!(
        file(&server),
        "via Stdio\nvia Http\n",
        "each approved call ran exactly once"
    );
}

#[tokio::test]
async fn approval_by_elicitation_on_2025_11_25_sessions() {
    let server = server(WORKSPACE).await;
    for wire in [Wire::Stdio, Wire::Http] {
        let yes = connect(
            &server,
            wire,
            Era::Legacy,
            AGENT,
            Client {
                answer: Some(("approve", "looks fine")),
            },
        )
        .await;
        let ran = yes
            .call_tool(params("test_write", write_args(&server, "elicited")))
            .await
            .unwrap();
        assert_eq!(ran.is_error, Some(false), "{wire:?}: {}", text(&ran));
        yes.cancel().await.unwrap();

        let no = connect(
            &server,
            wire,
            Era::Legacy,
            AGENT,
            Client {
                answer: Some(("reject", "not on main")),
            },
        )
        .await;
        let refused = no
            .call_tool(params("test_write", write_args(&server, "refused")))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true));
        assert!(
            text(&refused).ends_with("was rejected: not on main"),
            "{}",
            text(&refused)
        );
        no.cancel().await.unwrap();
    }
    assert_eq!(file(&server), "elicited\nelicited\n");
    let approvals = server
        .handler
        .served()
        .gate
        .store()
        .approvals()
        .await
        .unwrap();
    let mut deciders: Vec<String> = approvals.iter().filter_map(|a| a.decider.clone()).collect();
    deciders.sort();
    assert_eq!(
        deciders,
        [
            "codex@client:http",
            "codex@client:http",
            "codex@client:stdio",
            "codex@client:stdio"
        ]
    );
    // Each answer was decided through the gate: the audit log names the person at the client
    // and the channel.
    let audited: Vec<String> = server
        .handler
        .served()
        .gate
        .store()
        .audit_records(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.tool == "approvals_decide")
        .map(|r| r.principal)
        .collect();
    assert_eq!(audited.len(), 4, "{audited:?}");
    assert!(audited.iter().all(|p| p.starts_with("codex@client:")));
}

/// The attack: an agent holding an HTTP token declares elicitation and answers the approval
/// form itself. Its token is not trusted to reach a person, so no form is offered (either
/// era): the call waits for a reviewer and nothing is written. Over stdio the same holds when
/// `[stdio] approve_in_client = false`.
#[tokio::test]
async fn an_agent_cannot_answer_its_own_approval_form() {
    let server = server_with(WORKSPACE, "approve_in_client = false\n").await;
    for (wire, era) in [
        (Wire::Http, Era::Legacy),
        (Wire::Http, Era::Modern),
        (Wire::Stdio, Era::Legacy),
        (Wire::Stdio, Era::Modern),
    ] {
        let bot = connect(
            &server,
            wire,
            era,
            BOT,
            Client {
                answer: Some(("approve", "self-approved")),
            },
        )
        .await;
        let result = bot
            .call_tool(params("test_write", write_args(&server, "escaped")))
            .await
            .unwrap();
        let id = pending_id(&result);
        assert!(!id.is_empty(), "{wire:?} {era:?}: {}", text(&result));
        let state = server
            .handler
            .served()
            .gate
            .store()
            .approval(id.clone())
            .await
            .unwrap();
        assert_eq!(state.state_at(0).as_str(), "pending", "{wire:?} {era:?}");
        assert_eq!(state.decider, None);
        bot.cancel().await.unwrap();
    }
    assert_eq!(file(&server), "", "nothing was written");
    let decided = server
        .handler
        .served()
        .gate
        .store()
        .audit_records(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.tool == "approvals_decide")
        .count();
    assert_eq!(decided, 0);
}

#[tokio::test]
async fn approval_by_input_required_result_on_2026_07_28() {
    let server = server(WORKSPACE).await;
    for wire in [Wire::Stdio, Wire::Http] {
        let yes = connect(
            &server,
            wire,
            Era::Modern,
            AGENT,
            Client {
                answer: Some(("approve", "")),
            },
        )
        .await;
        // rmcp's client answers the InputRequiredResult through `create_elicitation` and retries.
        let ran = yes
            .call_tool(params("test_write", write_args(&server, "mrtr")))
            .await
            .unwrap();
        assert_eq!(ran.is_error, Some(false), "{wire:?}: {}", text(&ran));

        let once = yes
            .peer()
            .call_tool_once(params("test_write", write_args(&server, "mrtr-raw")))
            .await
            .unwrap();
        match once {
            rmcp::model::CallToolResponse::InputRequired(result) => {
                let requests = result.input_requests.unwrap();
                assert!(requests.contains_key("baton_approval"));
                assert!(
                    result.request_state.is_some(),
                    "the approval is sealed in requestState"
                );
            }
            other => panic!("expected InputRequiredResult, got {other:?}"),
        }
        yes.cancel().await.unwrap();

        let no = connect(
            &server,
            wire,
            Era::Modern,
            AGENT,
            Client {
                answer: Some(("reject", "wrong file")),
            },
        )
        .await;
        let refused = no
            .call_tool(params("test_write", write_args(&server, "refused")))
            .await
            .unwrap();
        assert!(
            text(&refused).ends_with("was rejected: wrong file"),
            "{}",
            text(&refused)
        );
        no.cancel().await.unwrap();
    }
    assert_eq!(file(&server), "mrtr\nmrtr\n");
}

#[tokio::test]
async fn a_requester_cannot_approve_itself_and_agents_cannot_decide() {
    let server = server(WORKSPACE).await;
    let alice = connect(
        &server,
        Wire::Http,
        Era::Legacy,
        BOTH,
        Client { answer: None },
    )
    .await;
    let pending = alice
        .call_tool(params("test_write", write_args(&server, "self")))
        .await
        .unwrap();
    let id = pending_id(&pending);
    let own = alice
        .call_tool(params(
            "approvals_decide",
            json!({ "id": id, "decision": "approve" }),
        ))
        .await
        .unwrap();
    assert_eq!(
        text(&own),
        format!(
            "denied: denied by rule `approvals.transition`: approval `{id}`: `alice` requested this call and cannot decide it; another reviewer must"
        )
    );
    let agent = connect(
        &server,
        Wire::Http,
        Era::Legacy,
        AGENT,
        Client { answer: None },
    )
    .await;
    let not_reviewer = agent
        .call_tool(params(
            "approvals_decide",
            json!({ "id": id, "decision": "approve" }),
        ))
        .await
        .unwrap();
    assert_eq!(
        text(&not_reviewer),
        "denied: denied by rule `approvals.reviewer`: only a `reviewer` or `admin` principal may call `approvals_decide`; `codex` is neither"
    );
    let mut again = write_args(&server, "self");
    again["_baton_approval"] = json!(id);
    let still = alice.call_tool(params("test_write", again)).await.unwrap();
    assert!(
        text(&still).ends_with("it is still waiting for a reviewer"),
        "{}",
        text(&still)
    );
    assert_eq!(file(&server), "");
}

#[tokio::test]
async fn an_expired_approval_is_refused() {
    let server = server(&format!("{WORKSPACE}approval_ttl = \"1s\"\n")).await;
    let agent = connect(
        &server,
        Wire::Http,
        Era::Legacy,
        AGENT,
        Client { answer: None },
    )
    .await;
    let reviewer = connect(
        &server,
        Wire::Http,
        Era::Legacy,
        REVIEWER,
        Client { answer: None },
    )
    .await;

    // Approved in time, used too late.
    let id = pending_id(
        &agent
            .call_tool(params("test_write", write_args(&server, "late")))
            .await
            .unwrap(),
    );
    reviewer
        .call_tool(params(
            "approvals_decide",
            json!({ "id": id, "decision": "approve" }),
        ))
        .await
        .unwrap();
    server.clock.advance(Duration::from_millis(1001));
    let mut again = write_args(&server, "late");
    again["_baton_approval"] = json!(id);
    let used = agent.call_tool(params("test_write", again)).await.unwrap();
    assert!(
        text(&used).contains(&format!("approval `{id}`: it expired at ")),
        "{}",
        text(&used)
    );

    // Decided too late.
    let id = pending_id(
        &agent
            .call_tool(params("test_write", write_args(&server, "later")))
            .await
            .unwrap(),
    );
    server.clock.advance(Duration::from_millis(1001));
    let decided = reviewer
        .call_tool(params(
            "approvals_decide",
            json!({ "id": id, "decision": "approve" }),
        ))
        .await
        .unwrap();
    assert!(
        text(&decided).contains("it expired at "),
        "{}",
        text(&decided)
    );
    assert_eq!(file(&server), "");
}

/// Past `limits.calls_per_principal` or `limits.heavy_calls`, a call waits `busy_wait_s` for
/// room and is then refused as busy — audited so — while other principals' light calls and
/// the next call after room is made run.
#[tokio::test]
async fn calls_past_the_limits_wait_then_are_refused_as_busy() {
    let home = Home::new("[limits]\ncalls_per_principal = 1\nheavy_calls = 1\nbusy_wait_s = 1\n");
    let config = Config::load(Some(&home.config())).unwrap();
    let app = Arc::new(
        App::builder(config)
            .tools(|registry| registry.register("test", TestHold))
            .build()
            .unwrap(),
    );
    let call = |who: &'static str, tool: &'static str, args: Value| {
        let app = app.clone();
        async move {
            app.gate()
                .call(baton_kit::Invocation {
                    principal: Arc::new(Principal::new(who, [Role::Agent])),
                    tool: tool.into(),
                    args,
                    approval_id: None,
                    context: ToolContext::new(CancellationToken::new()),
                })
                .await
        }
    };
    // Held well past the 1 s the others wait, so a loaded machine's late timers cannot let
    // them in.
    let holding = tokio::spawn(call("codex", "test_hold", json!({"ms": 4000})));
    HELD.notified().await;
    // The light call is a third principal's: `rev`'s heavy call, waiting for the heavy slot,
    // holds `rev`'s one call slot, so a light call of `rev`'s would race it for that slot.
    let (own, heavy, light) = tokio::join!(
        call("codex", "test_hold", json!({"ms": 0})),
        call("rev", "test_hold", json!({"ms": 0})),
        call("ops", "baton_info", json!({})),
    );
    let own = own.unwrap_err().to_string();
    assert!(
        own.starts_with(
            "busy: `codex` already has 1 calls running (limits.calls_per_principal); waited"
        ),
        "{own}"
    );
    let heavy = heavy.unwrap_err().to_string();
    assert!(
        heavy.starts_with(
            "busy: 1 heavy calls (audio, images) are running (limits.heavy_calls); waited"
        ),
        "{heavy}"
    );
    assert!(
        light.is_ok(),
        "a light call of another principal runs: {light:?}"
    );
    assert!(holding.await.unwrap().is_ok());
    assert!(call("codex", "test_hold", json!({"ms": 0})).await.is_ok());
    let busy = app
        .store()
        .audit_records(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome.error_kind.as_deref() == Some("busy"))
        .count();
    assert_eq!(busy, 2, "each refusal is in the audit log");
}
