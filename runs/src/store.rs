use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::{AuditLog, Parts, StoreOptions};
use crate::{Result, RunsError};

/// The store: one sled database under `<data dir>/store`, large artifacts beside it.
///
/// Cheap to clone. sled lets one process open a database at a time; a second `open` fails
/// with [`RunsError::Locked`], which callers turn into "hand the work to the owner".
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: sled::Db,
    pub(crate) root: PathBuf,
    pub(crate) runs: sled::Tree,
    pub(crate) journal: sled::Tree,
    pub(crate) approvals: sled::Tree,
    pub(crate) artifacts: sled::Tree,
    pub(crate) tasks: sled::Tree,
    /// Principal → bytes of uploads it keeps (for `limits.upload_quota_mb`).
    pub(crate) uploads: sled::Tree,
    /// Notices claimed (sent to webhooks), by key → when.
    pub(crate) notices: sled::Tree,
    /// Work items for workers, by id.
    pub(crate) work: sled::Tree,
    /// Workers as they last reported, by name.
    pub(crate) workers: sled::Tree,
    /// When a worker last claimed an item of each requester (fairness), by requester.
    pub(crate) served: sled::Tree,
    /// Makes each queue change (claim, heartbeat, finish, cancel) one step.
    pub(crate) queue_lock: std::sync::Mutex<()>,
    pub(crate) audit: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) audit_log: AuditLog,
    /// Bumped on every change to approvals and runs: what [`Store::changes_after`] waits on.
    pub(crate) changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl Store {
    /// Open (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_with(data_dir, StoreOptions::default())
    }

    /// [`Store::open`] with options (checkpoint signing). A damaged audit log does not fail
    /// the open — `verify_audit` must still be able to name the damage — but refuses records:
    /// see [`Store::audit_refusal`].
    pub fn open_with(data_dir: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(data_dir).map_err(|source| RunsError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join("store");
        let db = sled::Config::new()
            .path(&path)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|error| match error {
                sled::Error::Io(io) if is_lock_error(&io) => RunsError::Locked(path.clone()),
                sled::Error::Corruption { .. } => RunsError::Damaged {
                    path: path.clone(),
                    detail: "sled reports corruption".into(),
                },
                other => RunsError::Sled(other),
            })?;
        let tree = |name: &str| db.open_tree(name);
        let audit = tree("audit")?;
        let meta = tree("meta")?;
        let audit_log = AuditLog::start(Parts {
            db: db.clone(),
            audit: audit.clone(),
            meta: meta.clone(),
            wal_path: data_dir.join("audit.wal"),
            checkpoints: options.checkpoints,
        })?;
        Ok(Store {
            inner: Arc::new(Inner {
                runs: tree("runs")?,
                journal: tree("journal")?,
                approvals: tree("approvals")?,
                artifacts: tree("artifacts")?,
                tasks: tree("tasks")?,
                uploads: tree("uploads")?,
                notices: tree("notices")?,
                work: tree("work")?,
                workers: tree("workers")?,
                served: tree("work_served")?,
                queue_lock: std::sync::Mutex::new(()),
                audit,
                meta,
                audit_log,
                root: data_dir.to_owned(),
                db,
                // Starts at the clock, so a waiter that saw another process's counter never
                // takes a restarted store's for the same.
                changes: tokio::sync::watch::Sender::new(crate::now_millis()),
            }),
        })
    }

    /// The data folder.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The audit log (appends are group-committed).
    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit_log
    }

    /// Tell waiters that approvals or runs changed.
    pub(crate) fn changed(&self) {
        self.inner
            .changes
            .send_modify(|generation| *generation += 1);
    }

    /// The change counter once it differs from `seen`, or after `timeout` — whichever is
    /// first. Waiters compare counters, never order them.
    pub async fn changes_after(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        changes_after(&self.inner.changes, seen, timeout).await
    }

    /// Flush everything to disk.
    pub fn flush(&self) -> Result<()> {
        self.inner.db.flush()?;
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer thread holds database handles: stop it so the database (and its lock)
        // is released when the store is, not some time later.
        self.audit_log.close();
        if let Err(error) = self.db.flush() {
            tracing::error!(%error, "flushing the store on close failed");
        }
    }
}

/// Longest a `changes` wait may last: a waiter asks again rather than hold a connection.
pub(crate) const LONGEST_WAIT_MS: u64 = 60_000;

/// `counter` once it differs from `seen`, or after `timeout` (at most [`LONGEST_WAIT_MS`]), or
/// as this process begins to exit — whichever is first: how every backend's `changes` waits.
pub(crate) async fn changes_after(
    counter: &tokio::sync::watch::Sender<u64>,
    seen: u64,
    timeout: std::time::Duration,
) -> u64 {
    let timeout = timeout.min(std::time::Duration::from_millis(LONGEST_WAIT_MS));
    let mut receiver = counter.subscribe();
    let current = *receiver.borrow_and_update();
    if current != seen {
        return current;
    }
    tokio::select! {
        _ = tokio::time::timeout(timeout, receiver.changed()) => {}
        () = crate::shared::stopping().cancelled() => {}
    }
    *receiver.borrow()
}

fn is_lock_error(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::WouldBlock
        || error.raw_os_error() == Some(11)
        || error.to_string().contains("lock")
}

/// A key's records by id or unique id prefix.
/// Fewest characters an id prefix must have.
pub(crate) const MIN_PREFIX: usize = 4;

pub(crate) fn by_prefix(
    tree: &sled::Tree,
    what: &'static str,
    prefix: &str,
) -> Result<(sled::IVec, sled::IVec)> {
    if let Some(value) = tree.get(prefix.as_bytes())? {
        return Ok((sled::IVec::from(prefix.as_bytes()), value));
    }
    // An empty or tiny prefix names nothing: it would pick whatever record happens to be
    // alone in the store.
    if prefix.len() < MIN_PREFIX {
        return Err(RunsError::NotFound {
            what,
            id: prefix.to_owned(),
        });
    }
    let upper = prefix.to_ascii_uppercase();
    let mut matches = tree.scan_prefix(upper.as_bytes());
    let first = matches.next().transpose()?;
    let count = 1 + matches.count();
    match first {
        None => Err(RunsError::NotFound {
            what,
            id: prefix.to_owned(),
        }),
        Some(found) if count == 1 => Ok(found),
        Some(_) => Err(RunsError::Ambiguous {
            what,
            prefix: prefix.to_owned(),
            count,
        }),
    }
}
