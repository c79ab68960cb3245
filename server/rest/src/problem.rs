//! RFC 9457 problem details: every error of the HTTP face, naming what was wrong.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// A problem-details answer: `status`, a short `title`, and `detail` naming what was wrong.
pub(crate) fn problem(status: StatusCode, title: &str, detail: impl Into<String>) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": title,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}
