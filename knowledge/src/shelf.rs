use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::library::{NOT_PACKS, is_knowledge_file};
use crate::{KnowledgeError, Library, Result};

/// How long the knowledge root must be left alone before it is reloaded: writers truncate,
/// then write, and a table read in between would be empty.
pub const SETTLE: Duration = Duration::from_millis(25);

struct Shared {
    root: PathBuf,
    current: RwLock<Arc<Library>>,
    generation: AtomicU64,
    error: RwLock<Option<String>>,
}

/// The library in force, reloaded whole when a document under its root changes. A broken
/// reload (unreadable file, oversized document) keeps the last good library and records why.
pub struct Shelf {
    shared: Arc<Shared>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl std::fmt::Debug for Shelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shelf")
            .field("root", &self.shared.root)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Shelf {
    /// A shelf holding `library` for good (command-line runs, tests, embedders).
    pub fn fixed(library: Library) -> Shelf {
        Shelf {
            shared: Arc::new(Shared {
                root: library.root().to_owned(),
                current: RwLock::new(Arc::new(library)),
                generation: AtomicU64::new(1),
                error: RwLock::new(None),
            }),
            _watcher: None,
        }
    }

    /// Load `root` and watch it. A root that cannot be loaded at start gives an empty library
    /// with the error recorded (the server still starts; fixing the files loads them). A root
    /// that does not exist is not watched.
    pub fn watch(root: &Path) -> Result<Shelf> {
        let (library, error) = match Library::load(root) {
            Ok(library) => (library, None),
            Err(error) => {
                tracing::warn!(%error, "knowledge packs not loaded");
                (Library::default(), Some(error.to_string()))
            }
        };
        let shared = Arc::new(Shared {
            root: root.to_owned(),
            current: RwLock::new(Arc::new(library)),
            generation: AtomicU64::new(1),
            error: RwLock::new(error),
        });
        let watcher = if root.is_dir() {
            Some(watch(root, shared.clone())?)
        } else {
            None
        };
        Ok(Shelf {
            shared,
            _watcher: watcher,
        })
    }

    /// The library in force.
    pub fn current(&self) -> Arc<Library> {
        match self.shared.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Bumped by every successful reload: a pack that compiles tables into its own form
    /// recompiles when this changes.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// The root watched.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Why the newest files are not in force, when the last load failed.
    pub fn error(&self) -> Option<String> {
        self.shared
            .error
            .read()
            .ok()
            .and_then(|error| error.clone())
    }

    /// Reload now (the watcher calls this; tests and `SIGHUP`-style callers may too).
    pub fn reload(&self) {
        self.shared.reload();
    }
}

impl Shared {
    fn reload(&self) {
        match Library::load(&self.root) {
            Ok(library) => {
                tracing::info!(
                    documents = library.documents().len(),
                    root = %self.root.display(),
                    "knowledge reloaded"
                );
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(library);
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                if let Ok(mut error) = self.error.write() {
                    *error = None;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "knowledge reload failed; keeping the last good packs");
                if let Ok(mut slot) = self.error.write() {
                    *slot = Some(error.to_string());
                }
            }
        }
    }
}

fn watch(root: &Path, shared: Arc<Shared>) -> Result<notify::RecommendedWatcher> {
    let failed = |message: String| KnowledgeError::Watch {
        path: root.to_owned(),
        message,
    };
    let (changed, changes) = mpsc::channel::<()>();
    // One reload per burst of events: wait for quiet, then read the whole root once. The
    // thread ends when the watcher (holding the sender) is dropped.
    std::thread::Builder::new()
        .name("baton-knowledge".into())
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
        .map_err(|error| failed(error.to_string()))?;
    let base = root.to_owned();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) => {
                let ours = event
                    .paths
                    .iter()
                    .any(|path| is_knowledge_file(path) && in_a_pack(&base, path));
                if ours && !event.kind.is_access() {
                    let _ = changed.send(());
                }
            }
            Err(error) => tracing::warn!(%error, "knowledge watcher error"),
        })
        .map_err(|error| failed(error.to_string()))?;
    watcher
        .watch(root, RecursiveMode::Recursive)
        .map_err(|error| failed(error.to_string()))?;
    Ok(watcher)
}

/// Whether `path` lies in a pack folder (not the crate's own `src/`, `target/`, hidden folders).
fn in_a_pack(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let mut components = relative.components();
    let Some(first) = components.next() else {
        return false;
    };
    let first = first.as_os_str().to_string_lossy();
    components.next().is_some() && !first.starts_with('.') && !NOT_PACKS.contains(&&*first)
}
