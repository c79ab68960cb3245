//! What tools kept in the store (`baton://artifacts/<sha256>`), readable as MCP resources.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_kit::ARTIFACT_URI_PREFIX;
use baton_runs::StoreApi as _;
use rmcp::ErrorData;
use rmcp::model::{ReadResourceResult, ResourceContents, ResourceTemplate};
use serde_json::json;

use baton_runs::StoreHandle;

/// The template clients fill with an address a tool returned.
pub(crate) fn template() -> ResourceTemplate {
    ResourceTemplate::new(
        format!("{ARTIFACT_URI_PREFIX}{{sha256}}"),
        "Stored artifact",
    )
    .with_description(
        "Something a tool kept in Baton's store (a batch report…), by the SHA-256 the tool \
         returned as its `uri`",
    )
}

/// The artifact at `uri`, or `None` when `uri` is not an artifact address.
pub(crate) async fn read(
    store: &StoreHandle,
    uri: &str,
) -> Option<Result<ReadResourceResult, ErrorData>> {
    let sha256 = uri.strip_prefix(ARTIFACT_URI_PREFIX)?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Some(Err(ErrorData::invalid_params(
            format!("`{uri}`: an artifact address is 64 lowercase hex digits (a SHA-256)"),
            Some(json!({ "uri": uri })),
        )));
    }
    let (artifact, bytes) = match store.artifact(sha256.to_owned()).await {
        Ok(found) => found,
        Err(baton_runs::StoreError::NotFound { .. }) => {
            return Some(Err(ErrorData::resource_not_found(
                format!("no artifact `{sha256}` in this store"),
                Some(json!({ "uri": uri })),
            )));
        }
        Err(error) => {
            return Some(Err(ErrorData::internal_error(
                format!("cannot read artifact `{sha256}`: {error}"),
                Some(json!({ "uri": uri })),
            )));
        }
    };
    let textual =
        artifact.media_type.starts_with("text/") || artifact.media_type == "application/json";
    let contents = match String::from_utf8(bytes.0) {
        Ok(text) if textual => ResourceContents::text(text, uri),
        Ok(text) => ResourceContents::blob(BASE64.encode(text.as_bytes()), uri),
        Err(not_text) => ResourceContents::blob(BASE64.encode(not_text.as_bytes()), uri),
    };
    Some(Ok(ReadResourceResult::new(vec![
        contents.with_mime_type(artifact.media_type),
    ])))
}
