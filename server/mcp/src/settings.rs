//! The configuration sections the MCP face reads: `[server]`, `[http]`, `[stdio]`,
//! `[approvals]` and the agents' `[[agents.mcp]]` sources. The `baton` binary's config file
//! holds them; this crate owns what they mean.

use std::collections::BTreeSet;
use std::path::PathBuf;

use baton_kit::Role;
use serde::Deserialize;

/// What the MCP face needs of the configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The config file these came from, to name in errors.
    pub source: Option<PathBuf>,
    /// `[server]`
    pub server: ServerSection,
    /// `[http]`
    pub http: HttpSection,
    /// `[stdio]`
    pub stdio: StdioSection,
    /// `[approvals]`
    pub approvals: ApprovalsSection,
    /// `[console]`
    pub console: ConsoleSection,
    /// `[telemetry]`
    pub telemetry: TelemetrySection,
}

impl Settings {
    /// Where people reach the console (the public URL, no trailing `/`), when the server
    /// knows it and serves the console: approvals link there.
    pub fn console_base(&self) -> Option<&str> {
        self.http
            .public_url
            .as_deref()
            .filter(|_| self.console.enabled)
            .map(|url| url.trim_end_matches('/'))
    }
}

/// `[telemetry]`: what operators watch — Prometheus metrics and OpenTelemetry traces.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// Serve `GET /metrics` (Prometheus, OpenMetrics text) beside `/mcp` under
    /// `baton serve --http`. Off by default. With tokens configured it needs one: an
    /// admin's, or one whose principal is in `metrics_principals`.
    pub metrics: bool,
    /// Principals besides admins that may scrape `/metrics`: give the scraper a token of its
    /// own, with no roles (`roles = []`), so it can call no tool.
    pub metrics_principals: Vec<String>,
    /// Export traces over OTLP/HTTP (protobuf) to this base URL (`http://collector:4318`;
    /// `/v1/traces` is appended). Unset: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` when set, else no export.
    pub otlp_endpoint: Option<String>,
}

/// `[console]`: the reviewers' console, served under `/console` by `baton serve --http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Serve the console (on by default; it signs in only `reviewer` and `admin` tokens).
    pub enabled: bool,
    /// Hours a console sign-in lasts.
    pub session_hours: u64,
    /// Console sign-ins held at once; past it, the oldest is signed out.
    pub max_sessions: usize,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            enabled: true,
            session_hours: 12,
            max_sessions: 1000,
        }
    }
}

/// `[[approvals.webhooks]]`: who to tell when an approval is asked for and when it is decided.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEntry {
    /// Where to POST (http or https).
    pub url: String,
    /// The body's shape.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Seconds one delivery may take.
    #[serde(default = "webhook_timeout")]
    pub timeout_s: u64,
    /// Deliveries tried after the first fails (1 s, 2 s, 4 s … apart).
    #[serde(default = "webhook_retries")]
    pub retries: u32,
}

fn webhook_timeout() -> u64 {
    5
}

fn webhook_retries() -> u32 {
    3
}

/// The body of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event": "approval.created" | "approval.decided", "approval": {…}, "console": url}`.
    #[default]
    Json,
    /// A Slack-compatible `{"text": …}` (incoming webhooks, and chat tools that copy them).
    Slack,
}

/// `[agents]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsSection {
    /// MCP servers whose tools agents may call (each call still passes Baton's gate).
    pub mcp: Vec<McpSource>,
    /// The role that takes the manager's builder tasks (`agent_builder`): `codex-builder`
    /// hands them to Codex (needs a `[[agents.mcp]]` named `codex`). Default: `builder`.
    pub builder: Option<String>,
}

/// `[[agents.mcp]]`: an MCP server over stdio (`command`) or Streamable HTTP (`url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSource {
    /// Short name; its tools appear as `<name>_<tool>`.
    pub name: String,
    /// Program and arguments of a stdio server, e.g. `["codex", "mcp-server"]`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// URL of a Streamable HTTP server.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding a bearer token for `url`.
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Only these tools (default: all the server lists).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// What the gate treats its tools as doing (default `exec`: foreign tools are assumed to act).
    #[serde(default = "exec")]
    pub effect: baton_kit::Effect,
    /// JSON pointers to arguments naming the paths its tools act on, so `workspace-write` can
    /// check them (e.g. `["/cwd"]` for `codex`).
    #[serde(default)]
    pub path_args: Vec<String>,
}

fn exec() -> baton_kit::Effect {
    baton_kit::Effect::Exec
}

/// `[approvals]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// Let the person using the MCP client decide an approval in the client (elicitation on
    /// 2025-11-25 sessions, `InputRequiredResult` on 2026-07-28). With `false`, only a separate
    /// reviewer can (`baton approvals approve`, or `approvals_decide` with a reviewer token).
    pub ask_client: bool,
    /// Webhooks told when an approval is asked for and when it ends.
    pub webhooks: Vec<WebhookEntry>,
}

impl Default for ApprovalsSection {
    fn default() -> Self {
        ApprovalsSection {
            ask_client: true,
            webhooks: Vec::new(),
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Largest JSON-RPC message accepted, in bytes, on any transport.
    pub max_message_bytes: usize,
    /// Items per page in `tools/list`, `resources/list`, `prompts/list`.
    pub page_size: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            max_message_bytes: 4 * 1024 * 1024,
            page_size: 100,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Seconds a client has to send a request's headers (also how long an idle keep-alive
    /// connection is kept); then the connection is closed.
    pub header_timeout_s: u64,
    /// Seconds a client has to send a request's body; then it gets `408` and a JSON-RPC error.
    pub body_timeout_s: u64,
    /// Connections open at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Live MCP sessions (2025-11-25 clients); past it, the session idle longest is closed.
    pub max_sessions: usize,
    /// Seconds a session may sit unused before it is closed.
    pub session_idle_s: u64,
    /// The address people and clients reach this server at (e.g. `https://baton.example.com`),
    /// when it differs from the bound one: `pending_approval` results and webhooks link to
    /// the console there, and an `https` URL marks the console's cookie `Secure`.
    pub public_url: Option<String>,
    /// Largest upload `POST /v1/artifacts` keeps, in bytes (also the largest multipart body
    /// of `POST /v1/tools/<name>`).
    pub upload_max_bytes: usize,
    /// Seconds a `POST /v1/tools/<name>` call may run before it is cancelled (audited as
    /// such) and answered `504`; long tools run as jobs and are not bound by it.
    pub request_timeout_s: u64,
    /// Extra `Host` values accepted besides loopback names (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Extra browser `Origin`s accepted besides loopback origins.
    pub allowed_origins: Vec<String>,
    /// Bearer tokens and the principals they stand for. With none, only loopback binds are
    /// allowed and every caller is the anonymous local principal.
    pub tokens: Vec<TokenEntry>,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            header_timeout_s: 10,
            body_timeout_s: 30,
            max_connections: 1024,
            max_sessions: 1000,
            session_idle_s: 300,
            public_url: None,
            upload_max_bytes: 64 * 1024 * 1024,
            request_timeout_s: 300,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            tokens: Vec::new(),
        }
    }
}

/// `[[http.tokens]]`: one bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The principal this token authenticates.
    pub principal: String,
    /// Roles of that principal (default: `agent`).
    #[serde(default = "default_roles")]
    pub roles: BTreeSet<Role>,
    /// SHA-256 of the token, hex; keeps the secret itself out of the file.
    pub token_sha256: Option<String>,
    /// Name of an environment variable holding the token.
    pub token_env: Option<String>,
    /// Whether the person using this token's client may answer Baton's approval form there
    /// (elicitation, or an `InputRequiredResult`). Only for tokens whose client is known to
    /// show the form to a person: an agent holding the token could otherwise approve its own
    /// calls. Default `false`: its approvals wait for a reviewer.
    #[serde(default)]
    pub approve_in_client: bool,
}

/// `[stdio]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdioSection {
    /// The principal a stdio client acts as.
    pub principal: String,
    /// Its roles.
    pub roles: BTreeSet<Role>,
    /// Whether the person at the stdio client (Codex, Claude Desktop) may answer Baton's
    /// approval form there. A stdio client is started by the person who uses it, so this is
    /// on by default; turn it off when the client is itself an unattended agent.
    pub approve_in_client: bool,
    /// Requests unanswered plus answers unwritten before stdin is read no further: a client
    /// that sends and never reads then fills its own pipe, not the server's memory.
    pub max_pending: usize,
}

impl Default for StdioSection {
    fn default() -> Self {
        StdioSection {
            principal: "stdio".into(),
            roles: default_roles(),
            approve_in_client: true,
            max_pending: 256,
        }
    }
}

fn default_roles() -> BTreeSet<Role> {
    BTreeSet::from([Role::Agent])
}
