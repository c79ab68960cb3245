//! `POST /v1/artifacts` and `GET /v1/artifacts/<sha256>`.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use baton_kit::{ARTIFACT_URI_PREFIX, Principal};
use baton_runs::{ArtifactRef, Blob, StoreApi as _, StoreError};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::Rest;
use crate::problem::problem;

/// `POST /v1/artifacts`: keep the body; answer its URI, size and media type.
pub(crate) async fn upload(
    State(rest): State<Rest>,
    Extension(principal): Extension<Arc<Principal>>,
    request: Request,
) -> Response {
    let declared = match crate::media::declared(request.headers()) {
        Ok(media) => media,
        Err(why) => return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Bad media type", why),
    };
    let bytes = match read_body(&rest, request, rest.upload_limit, "http.upload_max_bytes").await {
        Ok(bytes) => bytes,
        Err(refused) => return *refused,
    };
    if bytes.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "Empty upload",
            "the request has no body to keep",
        );
    }
    match keep(&rest, &principal, bytes, &declared).await {
        Ok(kept) => (
            StatusCode::CREATED,
            [(header::CONTENT_TYPE, "application/json")],
            described(&kept).to_string(),
        )
            .into_response(),
        Err(refused) => *refused,
    }
}

/// What `POST /v1/artifacts` answers about a kept artifact.
pub(crate) fn described(kept: &ArtifactRef) -> Value {
    json!({
        "uri": format!("{ARTIFACT_URI_PREFIX}{}", kept.sha256),
        "sha256": kept.sha256,
        "size": kept.size,
        "media_type": kept.media_type,
    })
}

/// The whole body, within `limit` bytes (the setting `key`) and the body time limit.
pub(crate) async fn read_body(
    rest: &Rest,
    request: Request,
    limit: usize,
    key: &str,
) -> Result<Vec<u8>, Box<Response>> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        baton_mcp::transport::http::drain(request.into_body()).await;
        return Err(too_large(limit, key));
    }
    let body = request.into_body();
    match tokio::time::timeout(rest.body_timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
        Ok(Err(_)) => Err(too_large(limit, key)),
        Err(_) => Err(too_slow(rest)),
    }
}

pub(crate) fn too_large(limit: usize, key: &str) -> Box<Response> {
    Box::new(problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Body too large",
        format!("the body exceeds the {limit}-byte limit ({key})"),
    ))
}

pub(crate) fn too_slow(rest: &Rest) -> Box<Response> {
    Box::new(problem(
        StatusCode::REQUEST_TIMEOUT,
        "Upload too slow",
        format!(
            "the upload did not arrive within {} s (http.body_timeout_s)",
            rest.body_timeout.as_secs()
        ),
    ))
}

/// Keep `bytes` declared as `declared` for `principal`: type checked, quota counted.
pub(crate) async fn keep(
    rest: &Rest,
    principal: &Principal,
    bytes: Vec<u8>,
    declared: &str,
) -> Result<ArtifactRef, Box<Response>> {
    let media = baton_gate::check_media(declared, &bytes).map_err(|why| {
        Box::new(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad media type",
            why,
        ))
    })?;
    rest.served
        .gate
        .upload(principal, bytes, media)
        .await
        .map_err(|error| {
            Box::new(match error {
                StoreError::Quota { message } => problem(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "Upload quota reached",
                    message,
                ),
                StoreError::TooLarge { message } => {
                    problem(StatusCode::PAYLOAD_TOO_LARGE, "Too large to keep", message)
                }
                other => problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Store unavailable",
                    other.to_string(),
                ),
            })
        })
}

/// `GET /v1/artifacts/<sha256>`: the bytes, whole or one byte range.
pub(crate) async fn download(
    State(rest): State<Rest>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Response {
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "Not an artifact id",
            format!("`{sha256}` is not a SHA-256 digest (64 lowercase hex digits)"),
        );
    }
    let (artifact, Blob(bytes)) = match rest.served.gate.store().artifact(sha256.clone()).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => {
            return problem(
                StatusCode::NOT_FOUND,
                "No such artifact",
                format!("no artifact `{sha256}`"),
            );
        }
        Err(error) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Store unavailable",
                error.to_string(),
            );
        }
    };
    let etag = format!("\"{sha256}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        })
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let size = bytes.len() as u64;
    // Only one byte range is served; other units and several ranges are ignored, as HTTP
    // lets a server do, and the whole artifact answers.
    let range = match headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("bytes=") && !v.contains(','))
        .map(|v| parse_range(v, size))
    {
        None => None,
        Some(Ok(range)) => Some(range),
        Some(Err(why)) => {
            let mut refused = problem(StatusCode::RANGE_NOT_SATISFIABLE, "Bad range", why);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return refused;
        }
    };
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, bytes, None),
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            bytes[start as usize..=end as usize].to_vec(),
            Some(format!("bytes {start}-{end}/{size}")),
        ),
    };
    let mut response = (status, Body::from(body)).into_response();
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&artifact.media_type) {
        out.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Bytes someone uploaded, served from the console's origin: never rendered as a page,
    // never sniffed into something runnable.
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if !(artifact.media_type.starts_with("image/") || artifact.media_type.starts_with("audio/")) {
        out.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    // Content-addressed: the bytes under this name never change.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Some(value) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        out.insert(header::CONTENT_RANGE, value);
    }
    response
}

/// One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) of `size` bytes, inclusive.
fn parse_range(value: &str, size: u64) -> Result<(u64, u64), String> {
    let spec = value
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("Range `{value}` is not `bytes=…`"))?;
    let (first, last) = spec
        .split_once('-')
        .ok_or_else(|| format!("Range `{value}` has no `-`"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("Range `{value}`: `{s}` is not a number"))
    };
    let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => return Err(format!("Range `{value}` names no bytes")),
        (true, false) => {
            let suffix = number(last)?.min(size);
            (size - suffix, size.saturating_sub(1))
        }
        (false, true) => (number(first)?, size.saturating_sub(1)),
        (false, false) => (number(first)?, number(last)?.min(size.saturating_sub(1))),
    };
    if size == 0 || start > end || start >= size {
        return Err(format!("Range `{value}` is outside the {size} bytes"));
    }
    Ok((start, end))
}
