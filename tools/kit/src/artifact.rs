//! Artifacts: what a tool keeps in Baton's store beside its answer (a batch report, a diff),
//! addressed by content and readable afterwards as an MCP resource.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Result;

/// The URI prefix under which stored artifacts are MCP resources.
pub const ARTIFACT_URI_PREFIX: &str = "baton://artifacts/";

/// An artifact kept in Baton's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoredArtifact {
    /// SHA-256 of the bytes, hex: the artifact's address.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub media_type: String,
    /// Where an MCP client reads it (`resources/read`).
    pub uri: String,
}

impl StoredArtifact {
    /// The artifact with this address, size and type.
    pub fn new(sha256: String, size: u64, media_type: String) -> StoredArtifact {
        let uri = format!("{ARTIFACT_URI_PREFIX}{sha256}");
        StoredArtifact {
            sha256,
            size,
            media_type,
            uri,
        }
    }
}

/// Where a call's artifacts go. The gate hands every call it lets through one backed by the
/// store, so what a tool keeps is kept whoever called it.
pub trait ArtifactSink: Send + Sync {
    /// Store `bytes` of type `media_type`; the same bytes twice are stored once.
    fn put(&self, bytes: Vec<u8>, media_type: String)
    -> BoxFuture<'static, Result<StoredArtifact>>;
}
