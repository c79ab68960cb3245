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

fn caller(rest: &Rest, request: &Request) -> Result<Arc<Principal>, &'static str> {
    if rest.tokens.is_empty() {
        return Ok(rest.anonymous.clone());
    }
    rest.tokens
        .bearer(request.headers())
        .map(|(principal, _)| principal)
}
