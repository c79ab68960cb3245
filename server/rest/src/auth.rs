//! Who is calling: a `[[http.tokens]]` bearer token, as for MCP; with no tokens configured,
//! the anonymous loopback caller (the transport refuses a non-loopback bind without tokens).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use baton_kit::Principal;
use http::{HeaderValue, StatusCode, header};

use crate::Rest;
use crate::problem::problem;

/// Authenticate the request, or answer `401`.
pub(crate) async fn authenticate(
    State(rest): State<Rest>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match caller(&rest, &request) {
        Ok(principal) => principal,
        Err(why) => {
            tracing::warn!(why, "rejected an HTTP request to /v1");
            let mut response = problem(StatusCode::UNAUTHORIZED, "Unauthorized", why);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"baton\""),
            );
            return response;
        }
    };
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// Refuse a request whose `Host` names no name this server answers to, before anything else:
/// a web page whose own name an attacker made resolve to this loopback server (DNS
/// rebinding) must not reach its tools or its metrics, as `/mcp` and the console refuse it.
pub(crate) async fn check_host(
    State(hosts): State<Arc<Vec<String>>>,
    request: Request,
    next: Next,
) -> Response {
    match baton_mcp::transport::http::request_host(request.headers()) {
        Some(host) if baton_mcp::transport::http::host_allowed(&hosts, host) => {
            next.run(request).await
        }
        other => {
            let named = other.unwrap_or("(none)");
            tracing::warn!(host = named, "refused an HTTP request for a foreign Host");
            problem(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "Host `{}` is not a name this server answers to; add it to `[http] allowed_hosts`",
                    crate::auth::printable_host(named)
                ),
            )
        }
    }
}

/// A `Host` value fit to quote: at most 100 characters, no control character.
fn printable_host(host: &str) -> String {
    host.chars()
        .take(100)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn caller(rest: &Rest, request: &Request) -> Result<Arc<Principal>, &'static str> {
    if rest.tokens.is_empty() {
        return Ok(rest.anonymous.clone());
    }
    rest.tokens
        .bearer(request.headers())
        .map(|(principal, _)| principal)
}
