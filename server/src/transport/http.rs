//! Streamable HTTP: rmcp's service behind bearer-token authentication, on loopback by default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use baton_kit::Principal;
use http::{HeaderValue, StatusCode, header};
use rmcp::transport::StreamableHttpService;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::mcp::BatonMcp;

/// Who the bearer tokens stand for.
#[derive(Debug, Clone)]
struct Authenticator {
    /// SHA-256 of each token → its principal. Hashing first keeps the comparison from leaking
    /// the token through timing, and the secrets out of memory dumps of the config.
    tokens: Arc<HashMap<[u8; 32], Principal>>,
    /// The caller when no tokens are configured (loopback only).
    anonymous: Principal,
}

impl Authenticator {
    fn from_config(config: &Config) -> Result<Authenticator> {
        let mut tokens = HashMap::new();
        for entry in &config.file.http.tokens {
            let hash: [u8; 32] = match (&entry.token_sha256, &entry.token_env) {
                (Some(hex), _) => decode_hex(hex).ok_or_else(|| {
                    ServerError::Config(crate::config::ConfigError::Invalid {
                        path: config.path.clone().unwrap_or_default(),
                        key: "http.tokens.token_sha256".into(),
                        message: "must be 64 hex digits".into(),
                    })
                })?,
                (None, Some(variable)) => {
                    let token = std::env::var(variable)
                        .ok()
                        .filter(|token| !token.is_empty())
                        .ok_or_else(|| ServerError::MissingTokenEnv(variable.clone()))?;
                    Sha256::digest(token.as_bytes()).into()
                }
                (None, None) => continue,
            };
            tokens.insert(
                hash,
                Principal::new(entry.principal.clone(), entry.roles.iter().copied()),
            );
        }
        let stdio = &config.file.stdio;
        Ok(Authenticator {
            tokens: Arc::new(tokens),
            anonymous: Principal::new(
                format!("{}@http", stdio.principal),
                stdio.roles.iter().copied(),
            ),
        })
    }

    fn authenticate(&self, request: &Request) -> Result<Principal, &'static str> {
        if self.tokens.is_empty() {
            return Ok(self.anonymous.clone());
        }
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or("missing `Authorization: Bearer <token>` header")?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or("`Authorization` header is not `Bearer <token>`")?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.tokens
            .get(&hash)
            .cloned()
            .ok_or("unknown bearer token")
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

async fn authenticate(
    State(auth): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    match auth.authenticate(&request) {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(reason) => {
            tracing::warn!(reason, "rejected an HTTP request");
            let body = json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32001, "message": format!("unauthorized: {reason}") }
            });
            let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"baton\""),
            );
            response
        }
    }
}

/// Bind `addr`, then serve MCP at `/mcp` until `shutdown` fires. `on_ready` receives the bound
/// address (useful with port 0).
pub async fn serve(
    handler: BatonMcp,
    addr: SocketAddr,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let config = &handler.app().config;
    let auth = Authenticator::from_config(config)?;
    if auth.tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ServerError::Unauthenticated { addr });
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;

    let http = &config.file.http;
    let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    hosts.extend(http.allowed_hosts.iter().cloned());
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        .into_iter()
        .map(String::from)
        .collect();
    origins.extend(http.allowed_origins.iter().cloned());
    let service_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(config.file.server.max_message_bytes)
        .with_json_response(true)
        .with_cancellation_token(shutdown.child_token());
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        service_config,
    );
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(auth, authenticate));

    on_ready(bound);
    // Nagle's algorithm would hold each small response ~40 ms waiting for the client's ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|source| ServerError::Io {
            context: "serving HTTP",
            source,
        })
}
