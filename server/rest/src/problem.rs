//! RFC 9457 problem details: every error of the HTTP face, naming what was wrong.

use axum::response::{IntoResponse, Response};
use baton_kit::{ToolError, ToolErrorKind};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// Longest `detail` sent, in bytes.
const DETAIL_BYTES: usize = 2000;

/// A problem-details answer: `status`, a short `title`, and `detail` naming what was wrong.
pub(crate) fn problem(status: StatusCode, title: &str, detail: impl Into<String>) -> Response {
    problem_with(status, title, detail, Value::Null)
}

/// [`problem`] with extension members (`argument`, `rule`, `part`…) beside the standard ones.
pub(crate) fn problem_with(
    status: StatusCode,
    title: &str,
    detail: impl Into<String>,
    extra: Value,
) -> Response {
    let mut detail: String = detail.into();
    // A detail may quote what was sent; a megabyte of it helps nobody.
    baton_kit::clip(&mut detail, DETAIL_BYTES);
    let mut body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The status and title a tool error answers with over HTTP.
pub(crate) fn status_of(kind: ToolErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ToolErrorKind::InvalidArgs => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid arguments"),
        ToolErrorKind::NotFound => (StatusCode::NOT_FOUND, "Not found"),
        ToolErrorKind::Denied => (StatusCode::FORBIDDEN, "Denied by policy"),
        // The packs fail mostly on what they were given (an undecodable photo, a silent
        // file); the detail says which.
        ToolErrorKind::Failed => (StatusCode::UNPROCESSABLE_ENTITY, "The tool failed"),
        ToolErrorKind::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "Cancelled"),
        ToolErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "Timed out"),
        ToolErrorKind::Busy => (StatusCode::TOO_MANY_REQUESTS, "Busy"),
        // Not the caller's doing, and passing: a load balancer tries another server.
        ToolErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable"),
    }
}

/// A tool error as problem details; invalid arguments name the argument, denials the rule.
pub(crate) fn tool_problem(error: &ToolError) -> Response {
    let kind = error.kind();
    let (status, title) = status_of(kind);
    let extra = match error {
        ToolError::InvalidArgs { path, .. } => json!({ "kind": kind.as_str(), "argument": path }),
        ToolError::Denied { rule, .. } => json!({ "kind": kind.as_str(), "rule": rule }),
        _ => json!({ "kind": kind.as_str() }),
    };
    problem_with(status, title, error.to_string(), extra)
}
