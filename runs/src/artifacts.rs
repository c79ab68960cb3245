use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::hex;
use crate::error::{corrupt, encode};
use crate::{Result, RunsError, Store};

/// Artifacts up to this size live in the database; larger ones in files beside it.
const INLINE_LIMIT: usize = 256 * 1024;

/// A stored artifact (diff, report, image), addressed by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type.
    pub media_type: String,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    media_type: String,
    size: u64,
    /// The bytes, when small; else they are in `file_for(sha)`.
    inline: Option<Vec<u8>>,
}

impl Store {
    fn artifact_file(&self, sha256: &str) -> PathBuf {
        let (dir, rest) = sha256.split_at(2.min(sha256.len()));
        self.inner.root.join("artifacts").join(dir).join(rest)
    }

    /// Store `bytes`; storing the same bytes twice stores them once.
    pub fn put_artifact(&self, bytes: &[u8], media_type: &str) -> Result<ArtifactRef> {
        let sha256 = hex(&Sha256::digest(bytes));
        let size = bytes.len() as u64;
        if self.inner.artifacts.get(sha256.as_bytes())?.is_none() {
            let inline = if bytes.len() <= INLINE_LIMIT {
                Some(bytes.to_vec())
            } else {
                let path = self.artifact_file(&sha256);
                let io = |source| RunsError::Io {
                    path: path.clone(),
                    source,
                };
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                // Write then rename, so a crash never leaves half a file under the final name.
                let partial = path.with_extension("partial");
                std::fs::write(&partial, bytes).map_err(io)?;
                std::fs::rename(&partial, &path).map_err(io)?;
                None
            };
            let entry = Entry {
                media_type: media_type.to_owned(),
                size,
                inline,
            };
            let encoded = serde_json::to_vec(&entry).map_err(|e| encode("artifact", e))?;
            self.inner.artifacts.insert(sha256.as_bytes(), encoded)?;
            self.inner.artifacts.flush()?;
        }
        Ok(ArtifactRef {
            sha256,
            size,
            media_type: media_type.to_owned(),
        })
    }

    /// The bytes of artifact `sha256`.
    pub fn artifact(&self, sha256: &str) -> Result<(ArtifactRef, Vec<u8>)> {
        let value = self
            .inner
            .artifacts
            .get(sha256.as_bytes())?
            .ok_or_else(|| RunsError::NotFound {
                what: "artifact",
                id: sha256.to_owned(),
            })?;
        let entry: Entry = serde_json::from_slice(&value).map_err(|e| corrupt("artifact", e))?;
        let bytes = match entry.inline {
            Some(bytes) => bytes,
            None => {
                let path = self.artifact_file(sha256);
                std::fs::read(&path).map_err(|source| RunsError::Io { path, source })?
            }
        };
        Ok((
            ArtifactRef {
                sha256: sha256.to_owned(),
                size: entry.size,
                media_type: entry.media_type,
            },
            bytes,
        ))
    }
}
