use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use baton_knowledge::{LastGood, Watched};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Policy, PolicyError, Result};

/// The policy in force and where it came from, for `baton_info` and logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyStatus {
    /// The policy file watched (it may not exist).
    pub file: Option<String>,
    /// `file` when the policy came from it, `built-in defaults` otherwise.
    pub source: String,
    /// Sandbox mode in force.
    pub sandbox: String,
    /// Approval policy in force.
    pub approval: String,
    /// Writable roots in force.
    pub writable_roots: Vec<String>,
    /// Per-tool rules in force.
    pub rules: usize,
    /// How long approvals wait and stay usable.
    pub approval_ttl: String,
    /// Why full access was granted, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_access_reason: Option<String>,
    /// When the policy in force was loaded (RFC 3339).
    pub loaded_at: String,
    /// First 12 hex digits of the SHA-256 of the file in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Why the newest version of the file is not in force, when it is broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How long a policy file must be left alone before it is read (the one hot-reload
/// mechanism's settle time). Writers truncate, then write: read in between, an empty file is a
/// valid policy (the defaults, with no rules), and a rule would vanish for a moment.
pub use baton_knowledge::SETTLE;

/// A policy and its status, as loaded together.
#[derive(Debug)]
struct InForce {
    policy: Arc<Policy>,
    status: PolicyStatus,
}

/// The policy in force, reloaded when its file changes (through `baton-knowledge`'s
/// [`Watched`], the one hot-reload mechanism): a broken edit keeps the last good policy and
/// the status says why.
pub struct PolicyStore {
    path: Option<PathBuf>,
    watched: Watched<InForce>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

enum Loaded {
    File(Policy, String),
    Missing,
}

fn load(path: &Path, allow_full_access: bool) -> Result<Loaded> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes.clone()).map_err(|_| PolicyError::Parse {
                path: path.to_owned(),
                message: "the file is not UTF-8 text".into(),
            })?;
            let digest: String = Sha256::digest(&bytes)
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok(Loaded::File(
                Policy::parse(path, &text, allow_full_access)?,
                digest,
            ))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(error) => Err(PolicyError::Read {
            path: path.to_owned(),
            message: error.to_string(),
        }),
    }
}

fn status_of(policy: &Policy, path: Option<&Path>, digest: Option<String>) -> PolicyStatus {
    PolicyStatus {
        file: path.map(|p| p.display().to_string()),
        source: if digest.is_some() {
            "file".into()
        } else {
            "built-in defaults".into()
        },
        sandbox: policy.sandbox.as_str().into(),
        approval: policy.approval.as_str().into(),
        writable_roots: policy
            .writable_roots
            .iter()
            .map(|r| r.display().to_string())
            .collect(),
        rules: policy.rules.len(),
        approval_ttl: humantime::format_duration(policy.approval_ttl).to_string(),
        full_access_reason: policy.full_access_reason.clone(),
        loaded_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        digest,
        error: None,
    }
}

/// Read `path` as the policy in force: its file, or the built-in defaults while it does not
/// exist.
fn in_force(path: &Path, allow_full_access: bool) -> Result<InForce> {
    let (policy, digest) = match load(path, allow_full_access)? {
        Loaded::File(policy, digest) => (policy, Some(digest)),
        Loaded::Missing => (Policy::default(), None),
    };
    if let Some(reason) = &policy.full_access_reason {
        tracing::warn!(reason, "policy grants danger-full-access");
    }
    let status = status_of(&policy, Some(path), digest);
    tracing::info!(
        sandbox = %policy.sandbox,
        approval = %policy.approval,
        rules = policy.rules.len(),
        source = %status.source,
        "policy loaded"
    );
    Ok(InForce {
        policy: Arc::new(policy),
        status,
    })
}

impl PolicyStore {
    /// The policy in `path` (built-in defaults while it does not exist), watched for changes.
    /// A broken file at start-up is an error: there is no earlier good policy to keep.
    pub fn open(path: Option<PathBuf>, allow_full_access: bool) -> Result<PolicyStore> {
        let Some(file) = &path else {
            return Ok(PolicyStore::fixed(Policy::default()));
        };
        let first = LastGood::new("policy", in_force(file, allow_full_access)?);
        let watched = Watched::file(file, first, move |path| in_force(path, allow_full_access))
            .map_err(|error| PolicyError::Watch {
                path: file.clone(),
                message: error.to_string(),
            })?;
        Ok(PolicyStore { path, watched })
    }

    /// A store that never changes (tests, embedders).
    pub fn fixed(policy: Policy) -> PolicyStore {
        let status = status_of(&policy, None, None);
        let in_force = InForce {
            policy: Arc::new(policy),
            status,
        };
        PolicyStore {
            path: None,
            watched: Watched::fixed("policy", in_force),
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        self.watched.current().policy.clone()
    }

    /// Where the policy in force came from, and any error of a newer file.
    pub fn status(&self) -> PolicyStatus {
        let mut status = self.watched.current().status.clone();
        status.error = self.watched.error();
        status
    }
}
