use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use notify::{RecursiveMode, Watcher};
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

/// How long a policy file must be left alone before it is read. Writers truncate, then
/// write: read in between, an empty file is a valid policy (the defaults, with no rules), and
/// a rule would vanish for a moment. Editors finish well within this.
pub const SETTLE: Duration = Duration::from_millis(25);

struct Shared {
    path: Option<PathBuf>,
    allow_full_access: bool,
    current: RwLock<Arc<Policy>>,
    status: RwLock<PolicyStatus>,
    reloading: Mutex<()>,
}

/// The policy in force, reloaded when its file changes.
pub struct PolicyStore {
    shared: Arc<Shared>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore")
            .field("path", &self.shared.path)
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

impl PolicyStore {
    /// The policy in `path` (built-in defaults while it does not exist), watched for changes.
    /// A broken file at start-up is an error: there is no earlier good policy to keep.
    pub fn open(path: Option<PathBuf>, allow_full_access: bool) -> Result<PolicyStore> {
        let (policy, digest) = match &path {
            Some(path) => match load(path, allow_full_access)? {
                Loaded::File(policy, digest) => (policy, Some(digest)),
                Loaded::Missing => (Policy::default(), None),
            },
            None => (Policy::default(), None),
        };
        if let Some(reason) = &policy.full_access_reason {
            tracing::warn!(reason, "policy grants danger-full-access");
        }
        let status = status_of(&policy, path.as_deref(), digest);
        let shared = Arc::new(Shared {
            path: path.clone(),
            allow_full_access,
            current: RwLock::new(Arc::new(policy)),
            status: RwLock::new(status),
            reloading: Mutex::new(()),
        });
        let watcher = match &path {
            Some(path) => Some(watch(path, shared.clone())?),
            None => None,
        };
        Ok(PolicyStore {
            shared,
            _watcher: watcher,
        })
    }

    /// A store that never changes (tests, embedders).
    pub fn fixed(policy: Policy) -> PolicyStore {
        let status = status_of(&policy, None, None);
        PolicyStore {
            shared: Arc::new(Shared {
                path: None,
                allow_full_access: false,
                current: RwLock::new(Arc::new(policy)),
                status: RwLock::new(status),
                reloading: Mutex::new(()),
            }),
            _watcher: None,
        }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<Policy> {
        match self.shared.current.read() {
            Ok(policy) => policy.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Where the policy in force came from, and any error of a newer file.
    pub fn status(&self) -> PolicyStatus {
        match self.shared.status.read() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Shared {
    fn reload(&self) {
        let Some(path) = &self.path else { return };
        let Ok(_guard) = self.reloading.lock() else {
            return;
        };
        let (policy, digest) = match load(path, self.allow_full_access) {
            Ok(Loaded::File(policy, digest)) => (policy, Some(digest)),
            Ok(Loaded::Missing) => (Policy::default(), None),
            Err(error) => {
                tracing::warn!(%error, "policy change ignored; the last good policy stays in force");
                if let Ok(mut status) = self.status.write() {
                    status.error = Some(error.to_string());
                }
                return;
            }
        };
        let status = status_of(&policy, Some(path), digest);
        if let Some(reason) = &policy.full_access_reason {
            tracing::warn!(reason, "policy grants danger-full-access");
        }
        tracing::info!(
            sandbox = %policy.sandbox,
            approval = %policy.approval,
            rules = policy.rules.len(),
            source = %status.source,
            "policy reloaded"
        );
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(policy);
        }
        if let Ok(mut slot) = self.status.write() {
            *slot = status;
        }
    }
}

fn watch(path: &Path, shared: Arc<Shared>) -> Result<notify::RecommendedWatcher> {
    let failed = |error: notify::Error| PolicyError::Watch {
        path: path.to_owned(),
        message: error.to_string(),
    };
    let (changed, changes) = mpsc::channel::<()>();
    // The reloader waits for the file to settle, then reads it once. It ends when the watcher
    // (holding the sender) is dropped.
    std::thread::Builder::new()
        .name("baton-policy".into())
        .spawn(move || {
            while changes.recv().is_ok() {
                loop {
                    match changes.recv_timeout(SETTLE) {
                        Ok(()) => continue,
                        Err(mpsc::RecvTimeoutError::Timeout) => break,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                shared.reload();
            }
        })
        .map_err(|error| PolicyError::Watch {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                let ours = event
                    .paths
                    .iter()
                    .any(|changed| changed.file_name() == name.as_deref());
                if ours && !event.kind.is_access() {
                    let _ = changed.send(());
                }
            }
            Err(error) => tracing::warn!(%error, "policy watcher error"),
        })
        .map_err(failed)?;
    // Watch the folder, not the file: editors replace files by renaming over them, which a
    // watch on the old file would never report.
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    watcher
        .watch(folder, RecursiveMode::NonRecursive)
        .map_err(failed)?;
    Ok(watcher)
}
