//! The one hot-reload mechanism: watch a file or a folder, wait for it to settle, parse it
//! with the caller's parser, and keep the last good value (saying why a bad edit was ignored).

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::{KnowledgeError, Result};

/// How long a watched file must be left alone before it is read: writers truncate, then
/// write, and a file read in between would be empty. Editors finish well within this.
pub const SETTLE: Duration = Duration::from_millis(25);

/// The value in force, replaced only by a good new one. A bad one is refused: the last good
/// value stays, the reason is kept (see [`LastGood::error`]) and logged.
#[derive(Debug)]
pub struct LastGood<T> {
    name: String,
    value: RwLock<Arc<T>>,
    generation: AtomicU64,
    error: RwLock<Option<String>>,
}

impl<T> LastGood<T> {
    /// `value` in force, named `name` in logs (generation 1, no error).
    pub fn new(name: impl Into<String>, value: T) -> LastGood<T> {
        LastGood {
            name: name.into(),
            value: RwLock::new(Arc::new(value)),
            generation: AtomicU64::new(1),
            error: RwLock::new(None),
        }
    }

    /// `fallback` in force because the real value could not be read, and why.
    pub fn fallback(name: impl Into<String>, fallback: T, error: impl Display) -> LastGood<T> {
        let slot = LastGood::new(name, fallback);
        slot.refuse(error);
        slot
    }

    /// The value in force.
    pub fn current(&self) -> Arc<T> {
        match self.value.read() {
            Ok(value) => value.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Bumped by every value taken: whoever derives something from the value re-derives it
    /// when this changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Why the newest version is not in force, when it is not.
    pub fn error(&self) -> Option<String> {
        match self.error.read() {
            Ok(error) => error.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Take `parsed` when it is good (clearing the error); keep the value in force and record
    /// why when it is not. Whether it was taken.
    pub fn offer<E: Display>(&self, parsed: std::result::Result<T, E>) -> bool {
        match parsed {
            Ok(value) => {
                match self.value.write() {
                    Ok(mut slot) => *slot = Arc::new(value),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(value),
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.set_error(None);
                tracing::info!("{} reloaded", self.name);
                true
            }
            Err(error) => {
                self.refuse(error);
                false
            }
        }
    }

    /// Record why a newer version was ignored; the value in force stays.
    pub fn refuse(&self, error: impl Display) {
        let error = error.to_string();
        tracing::warn!(%error, "{} change ignored; the last good version stays in force", self.name);
        self.set_error(Some(error));
    }

    fn set_error(&self, error: Option<String>) {
        match self.error.write() {
            Ok(mut slot) => *slot = error,
            Err(poisoned) => *poisoned.into_inner() = error,
        }
    }
}

/// A running file watch: one call of its handler per settled burst of changes. Dropping it
/// stops the watch and its thread.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// Watch the folder `target` (`recursive` or not); when paths that `relevant` accepts have
    /// changed and then been left alone for [`SETTLE`], call `settled` once.
    pub fn start(
        target: &Path,
        recursive: bool,
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        settled: impl Fn() + Send + 'static,
    ) -> Result<Watch> {
        let failed = |message: String| KnowledgeError::Watch {
            path: target.to_owned(),
            message,
        };
        let (changed, changes) = mpsc::channel::<()>();
        // One call per burst: wait for quiet, then read once. The thread ends when the
        // watcher (holding the sender) is dropped.
        std::thread::Builder::new()
            .name("baton-reload".into())
            .spawn(move || {
                while changes.recv().is_ok() {
                    loop {
                        match changes.recv_timeout(SETTLE) {
                            Ok(()) => continue,
                            Err(mpsc::RecvTimeoutError::Timeout) => break,
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    settled();
                }
            })
            .map_err(|error| failed(error.to_string()))?;
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) => {
                    let ours = event.paths.iter().any(|path| relevant(path));
                    if ours && !event.kind.is_access() {
                        let _ = changed.send(());
                    }
                }
                Err(error) => tracing::warn!(%error, "file watcher error"),
            })
            .map_err(|error| failed(error.to_string()))?;
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher
            .watch(target, mode)
            .map_err(|error| failed(error.to_string()))?;
        Ok(Watch { _watcher: watcher })
    }
}

type Parser<T> = Box<dyn Fn(&Path) -> std::result::Result<T, String> + Send + Sync>;

struct Reloader<T> {
    path: PathBuf,
    slot: LastGood<T>,
    parse: Option<Parser<T>>,
    reloading: Mutex<()>,
}

impl<T> Reloader<T> {
    fn reload(&self) {
        let Some(parse) = &self.parse else { return };
        let _guard = match self.reloading.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.slot.offer(parse(&self.path));
    }
}

/// A value parsed from a file or folder on disk and re-parsed when it changes, the last good
/// value kept: the one hot-reload mechanism every watched file in Baton goes through.
pub struct Watched<T> {
    reloader: Arc<Reloader<T>>,
    _watch: Option<Watch>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("path", &self.reloader.path)
            .field("generation", &self.generation())
            .field("error", &self.error())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// `first` in force now; `path` (a file, which need not exist yet) parsed with `parse`
    /// each time it settles after a change. The folder is watched, not the file: editors
    /// replace files by renaming over them, which a watch on the old file would never report.
    pub fn file<E: Display>(
        path: &Path,
        first: LastGood<T>,
        parse: impl Fn(&Path) -> std::result::Result<T, E> + Send + Sync + 'static,
    ) -> Result<Watched<T>> {
        let file_name = path.file_name().map(ToOwned::to_owned);
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let relevant = move |changed: &Path| changed.file_name() == file_name.as_deref();
        Watched::start(path, folder, false, relevant, first, parse)
    }

    /// `first` in force now; the folder `root` (when it exists) watched recursively, and parsed
    /// whole with `parse` each time files that `relevant` accepts settle after a change.
    pub fn tree<E: Display>(
        root: &Path,
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        first: LastGood<T>,
        parse: impl Fn(&Path) -> std::result::Result<T, E> + Send + Sync + 'static,
    ) -> Result<Watched<T>> {
        if root.is_dir() {
            Watched::start(root, root, true, relevant, first, parse)
        } else {
            Ok(Watched::start_unwatched(root, first, parse))
        }
    }

    /// A value that never changes (tests, embedders, command-line runs).
    pub fn fixed(name: impl Into<String>, value: T) -> Watched<T> {
        Watched {
            reloader: Arc::new(Reloader {
                path: PathBuf::new(),
                slot: LastGood::new(name, value),
                parse: None,
                reloading: Mutex::new(()),
            }),
            _watch: None,
        }
    }

    fn start_unwatched<E: Display>(
        path: &Path,
        first: LastGood<T>,
        parse: impl Fn(&Path) -> std::result::Result<T, E> + Send + Sync + 'static,
    ) -> Watched<T> {
        let parse: Parser<T> = Box::new(move |path| parse(path).map_err(|e| e.to_string()));
        Watched {
            reloader: Arc::new(Reloader {
                path: path.to_owned(),
                slot: first,
                parse: Some(parse),
                reloading: Mutex::new(()),
            }),
            _watch: None,
        }
    }

    fn start<E: Display>(
        path: &Path,
        target: &Path,
        recursive: bool,
        relevant: impl Fn(&Path) -> bool + Send + 'static,
        first: LastGood<T>,
        parse: impl Fn(&Path) -> std::result::Result<T, E> + Send + Sync + 'static,
    ) -> Result<Watched<T>> {
        let mut watched = Watched::start_unwatched(path, first, parse);
        let reloader = watched.reloader.clone();
        watched._watch = Some(Watch::start(target, recursive, relevant, move || {
            reloader.reload();
        })?);
        Ok(watched)
    }
}

impl<T> Watched<T> {
    /// The value in force.
    pub fn current(&self) -> Arc<T> {
        self.reloader.slot.current()
    }

    /// Bumped by every value taken.
    pub fn generation(&self) -> u64 {
        self.reloader.slot.generation()
    }

    /// Why the newest version on disk is not in force, when it is not.
    pub fn error(&self) -> Option<String> {
        self.reloader.slot.error()
    }

    /// The file or folder watched (empty for a fixed value).
    pub fn path(&self) -> &Path {
        &self.reloader.path
    }

    /// Parse now (the watcher does this; tests and `SIGHUP`-style callers may too).
    pub fn reload(&self) {
        self.reloader.reload();
    }
}
