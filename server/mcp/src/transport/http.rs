//! Streamable HTTP: rmcp's service behind bearer-token authentication, on loopback by default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use baton_kit::Principal;
use http::{HeaderValue, StatusCode, header};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use rmcp::ServerHandler;

use crate::{ClientApproves, HttpSection, McpError, Result, Settings};

/// A token's principal, and whether its client may answer approval forms.
pub type Caller = (Arc<Principal>, ClientApproves);

/// The configured bearer tokens and who they stand for: what MCP over HTTP and the console's
/// sign-in both authenticate with.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// SHA-256 of each token → its principal. Hashing first keeps the comparison from leaking
    /// the token through timing, and the secrets out of memory dumps of the config.
    by_hash: Arc<HashMap<[u8; 32], Caller>>,
}

impl Tokens {
    /// The tokens of `[[http.tokens]]`; an error names a bad hash or a missing variable.
    pub fn from_settings(settings: &Settings) -> Result<Tokens> {
        let mut by_hash = HashMap::new();
        for entry in &settings.http.tokens {
            let hash: [u8; 32] = match (&entry.token_sha256, &entry.token_env) {
                (Some(hex), _) => decode_hex(hex).ok_or_else(|| McpError::TokenHash {
                    config: settings.source.clone().unwrap_or_default(),
                })?,
                (None, Some(variable)) => {
                    let token = std::env::var(variable)
                        .ok()
                        .filter(|token| !token.is_empty())
                        .ok_or_else(|| McpError::MissingTokenEnv(variable.clone()))?;
                    Sha256::digest(token.as_bytes()).into()
                }
                (None, None) => continue,
            };
            by_hash.insert(
                hash,
                (
                    Arc::new(Principal::new(
                        entry.principal.clone(),
                        entry.roles.iter().copied(),
                    )),
                    ClientApproves(entry.approve_in_client),
                ),
            );
        }
        Ok(Tokens {
            by_hash: Arc::new(by_hash),
        })
    }

    /// Whether no tokens are configured.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Who `token` stands for, if anyone.
    pub fn principal(&self, token: &str) -> Option<Arc<Principal>> {
        self.caller(token).map(|(principal, _)| principal)
    }

    /// Who a request's `Authorization: Bearer <token>` header stands for, and whether its
    /// client may answer approval forms; or why the header does not authenticate.
    pub fn bearer(&self, headers: &http::HeaderMap) -> Result<Caller, &'static str> {
        let token = headers
            .get(header::AUTHORIZATION)
            .ok_or("missing `Authorization: Bearer <token>` header")?
            .to_str()
            .ok()
            // The scheme name is case-insensitive (RFC 9110); the token is not.
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or("`Authorization` header is not `Bearer <token>`")?;
        self.caller(token).ok_or("unknown bearer token")
    }

    fn caller(&self, token: &str) -> Option<Caller> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash.get(&hash).cloned()
    }
}

/// Who the bearer tokens stand for.
#[derive(Debug, Clone)]
struct Authenticator {
    tokens: Tokens,
    /// The caller when no tokens are configured (loopback only).
    anonymous: Arc<Principal>,
    /// `server.max_message_bytes`.
    limit: usize,
    /// `http.body_timeout_s`.
    body_timeout: std::time::Duration,
}

impl Authenticator {
    fn from_settings(settings: &Settings) -> Result<Authenticator> {
        let stdio = &settings.stdio;
        Ok(Authenticator {
            tokens: Tokens::from_settings(settings)?,
            anonymous: Arc::new(Principal::new(
                format!("{}@http", stdio.principal),
                stdio.roles.iter().copied(),
            )),
            limit: settings.server.max_message_bytes,
            body_timeout: std::time::Duration::from_secs(settings.http.body_timeout_s),
        })
    }

    /// The caller, and whether its client may answer approval forms. The anonymous loopback
    /// caller may not: any local process can be it.
    fn authenticate(
        &self,
        request: &Request,
    ) -> Result<(Arc<Principal>, ClientApproves), &'static str> {
        if self.tokens.is_empty() {
            return Ok((self.anonymous.clone(), ClientApproves(false)));
        }
        self.tokens.bearer(request.headers())
    }
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// rmcp answers some bad requests with plain text (`415` for a body that is not JSON, `413` for
/// one over the limit, `403` for a foreign Host or Origin). Clients expect JSON-RPC errors, so
/// those answers are rewritten here; a body that does not parse is `400` + `-32700` (JSON-RPC's
/// parse error). Successful responses pass untouched.
async fn jsonrpc_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let (status, code, message) = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE if text.starts_with("fail to deserialize") => (
            StatusCode::BAD_REQUEST,
            -32700,
            format!(
                "parse error: {}",
                text.trim_start_matches("fail to deserialize request body")
                    .trim()
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            status,
            -32600,
            "invalid request: body exceeds the size limit (server.max_message_bytes)".to_owned(),
        ),
        other => (other, -32600, format!("invalid request: {text}")),
    };
    let body =
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// Everything in front of rmcp, in one layer (each axum layer costs a boxed future per
/// request): refuse an oversized body, authenticate, read the body within its time limit,
/// then turn rmcp's plain-text refusals into JSON-RPC errors.
async fn front_door(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(response) = refuse_oversized(&mut request, auth.limit).await {
        return response;
    }
    match auth.authenticate(&request) {
        Ok((principal, approves)) => {
            let mut request = match read_body(request, auth.limit, auth.body_timeout).await {
                Ok(request) => request,
                Err(response) => return response,
            };
            request.extensions_mut().insert(principal);
            request.extensions_mut().insert(approves);
            jsonrpc_errors(next.run(request).await).await
        }
        Err(reason) => {
            tracing::warn!(reason, "rejected an HTTP request");
            let mut response = jsonrpc_error(
                StatusCode::UNAUTHORIZED,
                -32001,
                format!("unauthorized: {reason}"),
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"baton\""),
            );
            response
        }
    }
}

fn jsonrpc_error(status: StatusCode, code: i32, message: String) -> Response {
    let body =
        json!({ "jsonrpc": "2.0", "id": null, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

/// Refuse a body whose declared length is over the limit before rmcp reads it, after
/// [`drain`]ing it.
async fn refuse_oversized(request: &mut Request, limit: usize) -> Option<Response> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&length| length > limit as u64)?;
    drain(std::mem::take(request.body_mut())).await;
    Some(jsonrpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        -32600,
        format!(
            "invalid request: body of {declared} bytes exceeds the {limit}-byte limit (server.max_message_bytes)"
        ),
    ))
}

/// Read a refused request's body and throw it away (at most [`DRAIN_BYTES`] over
/// [`DRAIN_TIME`]): a server that answers and closes while the client is still uploading makes
/// the client see a broken pipe instead of the answer.
pub async fn drain(mut body: axum::body::Body) {
    let mut drained = 0usize;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while drained < DRAIN_BYTES {
            match http_body_util::BodyExt::frame(&mut body).await {
                Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => break,
            }
        }
    })
    .await;
}

/// The request with its whole body read within `timeout`: a client trickling its body
/// byte by byte gets `408` instead of holding the connection for as long as it likes.
async fn read_body(
    request: Request,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Request, Response> {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => match baton_kit::duplicate_key(&bytes) {
            // A key given twice is ambiguous (the parser would keep the last): refuse it.
            Some((at, key)) => {
                let error = super::stdio::duplicate_error(&at, &key);
                let body = json!({ "jsonrpc": "2.0", "id": null, "error": error });
                Err((StatusCode::BAD_REQUEST, axum::Json(body)).into_response())
            }
            None => Ok(Request::from_parts(parts, axum::body::Body::from(bytes))),
        },
        Ok(Err(_)) => Err(jsonrpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
            format!(
                "invalid request: the body exceeds the {limit}-byte limit (server.max_message_bytes) or broke off"
            ),
        )),
        Err(_) => Err(jsonrpc_error(
            StatusCode::REQUEST_TIMEOUT,
            -32600,
            format!(
                "invalid request: the body did not arrive within {} s (http.body_timeout_s)",
                timeout.as_secs()
            ),
        )),
    }
}

const DRAIN_BYTES: usize = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Bind `addr`, then serve `handler` as MCP at `/mcp` until `shutdown` fires, as `settings`
/// say. `beside` may add routes of other faces (the console) for the bound address; they
/// authenticate on their own. `on_ready` receives the bound address (useful with port 0).
pub async fn serve<H: ServerHandler + Clone + Send + Sync + 'static>(
    handler: H,
    settings: &Settings,
    addr: SocketAddr,
    shutdown: CancellationToken,
    beside: impl FnOnce(SocketAddr) -> Option<axum::Router>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let auth = Authenticator::from_settings(settings)?;
    if auth.tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(McpError::Unauthenticated { addr });
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| McpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| McpError::Bind { addr, source })?;

    let http = &settings.http;
    let hosts = allowed_hosts(settings, bound);
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .into_iter()
        .map(String::from)
        .collect();
    origins.extend(http.allowed_origins.iter().cloned());
    let service_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.server.max_message_bytes)
        .with_json_response(true)
        .with_cancellation_token(shutdown.child_token());
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(std::time::Duration::from_secs(http.session_idle_s));
    let sessions = super::sessions::BoundedSessions::new(sessions, http.max_sessions);
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(sessions),
        service_config,
    );
    let mut router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(auth, front_door));
    if let Some(routes) = beside(bound) {
        router = router.merge(routes);
    }

    on_ready(bound);
    accept(listener, router, http, shutdown).await;
    Ok(())
}

/// The `Host` values a server bound at `bound` accepts (DNS-rebinding protection): loopback
/// names, the bound address unless it is unspecified, and `[http] allowed_hosts`.
pub fn allowed_hosts(settings: &Settings, bound: SocketAddr) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !bound.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    hosts.extend(settings.http.allowed_hosts.iter().cloned());
    hosts
}

/// A request's `Host` header, when it has one that is text.
pub fn request_host(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
}

/// Whether a request's `Host` header (`name[:port]`, `[v6]:port`) names one of `hosts`.
pub fn host_allowed(hosts: &[String], host: &str) -> bool {
    let name = strip_port(host);
    hosts.iter().any(|allowed| allowed == name)
}

/// `host[:port]` or `[v6]:port` without the port (and brackets).
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Serve connections from `listener` until `shutdown`, at most `max_connections` at once (the
/// rest are closed as they arrive), each closed when a request's headers take longer than
/// `header_timeout_s`; then wait (a bounded time) for the open ones to finish.
async fn accept(
    listener: TcpListener,
    router: axum::Router,
    http: &HttpSection,
    shutdown: CancellationToken,
) {
    let max = http.max_connections;
    let header_timeout = std::time::Duration::from_secs(http.header_timeout_s);
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(
                max,
                "connection closed: the server holds its maximum of open connections (http.max_connections)"
            );
            drop(stream);
            continue;
        };
        // Nagle's algorithm would hold each small response ~40 ms waiting for the client's ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection =
                builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    // Every connection returns its permit when it ends.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        permits.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)),
    )
    .await;
}
