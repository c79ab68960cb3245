//! The media type a request declares, read with the gate's rules.

use http::{HeaderMap, header};

/// The media type a request declares (parameters dropped), or `application/octet-stream`.
pub(crate) fn declared(headers: &HeaderMap) -> Result<String, String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok("application/octet-stream".into());
    };
    baton_gate::parse_media_type(value.to_str().unwrap_or_default())
}
