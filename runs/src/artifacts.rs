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

/// An artifact as the store keeps it: what copying a store carries over besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptArtifact {
    /// The artifact.
    pub artifact: ArtifactRef,
    /// When its bytes were last kept, ms since the epoch (0: before the store recorded it).
    pub kept_ms: u64,
    /// Who uploaded these bytes (their quotas count them).
    pub uploaders: Vec<String>,
}

/// What `baton artifacts gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactGc {
    /// Artifacts deleted.
    pub removed: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Artifacts kept.
    pub kept: u64,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    media_type: String,
    size: u64,
    /// The bytes, when small; else they are in `file_for(sha)`.
    inline: Option<Vec<u8>>,
    /// When these bytes were last kept (stored or stored again), for retention; 0 for an
    /// artifact kept before the store recorded it.
    #[serde(default)]
    kept_ms: u64,
    /// Who uploaded these bytes (their quota counts them).
    #[serde(default)]
    uploaders: Vec<String>,
}

fn usage(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_be_bytes)
}

impl Store {
    fn artifact_file(&self, sha256: &str) -> PathBuf {
        let (dir, rest) = sha256.split_at(2.min(sha256.len()));
        self.inner.root.join("artifacts").join(dir).join(rest)
    }

    fn entry(&self, sha256: &str) -> Result<Option<Entry>> {
        self.inner
            .artifacts
            .get(sha256.as_bytes())?
            .map(|value| serde_json::from_slice(&value).map_err(|e| corrupt("artifact", e)))
            .transpose()
    }

    fn put_entry(&self, sha256: &str, entry: &Entry) -> Result<()> {
        let encoded = serde_json::to_vec(entry).map_err(|e| encode("artifact", e))?;
        self.inner.artifacts.insert(sha256.as_bytes(), encoded)?;
        self.inner.artifacts.flush()?;
        Ok(())
    }

    /// Store `bytes`; storing the same bytes twice stores them once.
    pub fn put_artifact(&self, bytes: &[u8], media_type: &str) -> Result<ArtifactRef> {
        self.keep(bytes, media_type, None)
    }

    /// Store `bytes` uploaded by `principal`, within its `quota` of kept upload bytes (0: no
    /// quota). The same bytes uploaded again by the same principal count once.
    pub fn put_upload(
        &self,
        bytes: &[u8],
        media_type: &str,
        principal: &str,
        quota: u64,
    ) -> Result<ArtifactRef> {
        self.keep(bytes, media_type, Some((principal, quota)))
    }

    fn keep(
        &self,
        bytes: &[u8],
        media_type: &str,
        uploader: Option<(&str, u64)>,
    ) -> Result<ArtifactRef> {
        let sha256 = hex(&Sha256::digest(bytes));
        let size = bytes.len() as u64;
        let existing = self.entry(&sha256)?;
        // Counted before anything is written: a refused upload leaves no bytes behind.
        let counted = match uploader {
            Some((principal, quota))
                if !existing
                    .as_ref()
                    .is_some_and(|e| e.uploaders.iter().any(|u| u == principal)) =>
            {
                self.count_upload(principal, size, quota)?;
                Some(principal)
            }
            _ => None,
        };
        let mut entry = match existing {
            Some(entry) => entry,
            None => {
                let placed = self.place(&sha256, bytes);
                let inline = match (placed, counted) {
                    (Ok(inline), _) => inline,
                    (Err(error), Some(principal)) => {
                        self.uncount(principal, size)?;
                        return Err(error);
                    }
                    (Err(error), None) => return Err(error),
                };
                Entry {
                    media_type: media_type.to_owned(),
                    size,
                    inline,
                    kept_ms: 0,
                    uploaders: Vec::new(),
                }
            }
        };
        if let Some(principal) = counted {
            entry.uploaders.push(principal.to_owned());
        }
        entry.kept_ms = crate::now_millis();
        self.put_entry(&sha256, &entry)?;
        Ok(ArtifactRef {
            sha256,
            size,
            media_type: entry.media_type,
        })
    }

    /// The bytes kept inline, or `None` once written to their own file.
    fn place(&self, sha256: &str, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        if bytes.len() <= INLINE_LIMIT {
            return Ok(Some(bytes.to_vec()));
        }
        let path = self.artifact_file(sha256);
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
        Ok(None)
    }

    /// Add `size` to what `principal` keeps, refusing past `quota` (atomically: two uploads
    /// at once cannot both slip under it).
    fn count_upload(&self, principal: &str, size: u64, quota: u64) -> Result<()> {
        let mut refused = None;
        self.inner
            .uploads
            .fetch_and_update(principal.as_bytes(), |old| {
                let would = usage(old) + size;
                if quota > 0 && would > quota {
                    refused = Some(would);
                    old.map(<[u8]>::to_vec)
                } else {
                    refused = None;
                    Some(would.to_be_bytes().to_vec())
                }
            })?;
        match refused {
            Some(would) => Err(RunsError::Quota {
                principal: principal.to_owned(),
                would,
                quota,
            }),
            None => Ok(()),
        }
    }

    /// Take `size` off what `principal` keeps.
    fn uncount(&self, principal: &str, size: u64) -> Result<()> {
        self.inner
            .uploads
            .fetch_and_update(principal.as_bytes(), |old| {
                Some(usage(old).saturating_sub(size).to_be_bytes().to_vec())
            })?;
        Ok(())
    }

    /// Delete every artifact last kept before `before_ms`, and its uploaders' share of it.
    pub fn gc_artifacts(&self, before_ms: u64) -> Result<ArtifactGc> {
        let mut gc = ArtifactGc::default();
        for item in self.inner.artifacts.iter() {
            let (key, value) = item?;
            let entry: Entry =
                serde_json::from_slice(&value).map_err(|e| corrupt("artifact", e))?;
            if entry.kept_ms >= before_ms {
                gc.kept += 1;
                continue;
            }
            let sha256 = String::from_utf8_lossy(&key).into_owned();
            if entry.inline.is_none() {
                let path = self.artifact_file(&sha256);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(source) if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(RunsError::Io { path, source }),
                }
            }
            self.inner.artifacts.remove(&key)?;
            for principal in &entry.uploaders {
                self.uncount(principal, entry.size)?;
            }
            gc.removed += 1;
            gc.bytes += entry.size;
        }
        self.inner.artifacts.flush()?;
        self.inner.uploads.flush()?;
        Ok(gc)
    }

    /// Every artifact kept, by hash.
    pub fn kept_artifacts(&self) -> Result<Vec<KeptArtifact>> {
        self.inner
            .artifacts
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let entry: Entry =
                    serde_json::from_slice(&value).map_err(|e| corrupt("artifact", e))?;
                Ok(KeptArtifact {
                    artifact: ArtifactRef {
                        sha256: String::from_utf8_lossy(&key).into_owned(),
                        size: entry.size,
                        media_type: entry.media_type,
                    },
                    kept_ms: entry.kept_ms,
                    uploaders: entry.uploaders,
                })
            })
            .collect()
    }

    /// The bytes of artifact `sha256`.
    pub fn artifact(&self, sha256: &str) -> Result<(ArtifactRef, Vec<u8>)> {
        let entry = self.entry(sha256)?.ok_or_else(|| RunsError::NotFound {
            what: "artifact",
            id: sha256.to_owned(),
        })?;
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
