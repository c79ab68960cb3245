use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::library::{NOT_PACKS, is_knowledge_file};
use crate::{LastGood, Library, Result, Watched};

/// The library in force, reloaded whole when a document under its root changes. A broken
/// reload (unreadable file, oversized document) keeps the last good library and records why.
/// It is a [`Watched`] library: the same mechanism as every other watched file.
pub struct Shelf {
    root: PathBuf,
    library: Watched<Library>,
}

impl std::fmt::Debug for Shelf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shelf")
            .field("root", &self.root)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Shelf {
    /// A shelf holding `library` for good (command-line runs, tests, embedders).
    pub fn fixed(library: Library) -> Shelf {
        Shelf {
            root: library.root().to_owned(),
            library: Watched::fixed("knowledge", library),
        }
    }

    /// Load `root` and watch it. A root that cannot be loaded at start gives an empty library
    /// with the error recorded (the server still starts; fixing the files loads them). A root
    /// that does not exist is not watched.
    pub fn watch(root: &Path) -> Result<Shelf> {
        let first = match Library::load(root) {
            Ok(library) => LastGood::new("knowledge", library),
            Err(error) => LastGood::fallback("knowledge", Library::default(), error),
        };
        let base = root.to_owned();
        let relevant = move |path: &Path| is_knowledge_file(path) && in_a_pack(&base, path);
        Ok(Shelf {
            root: root.to_owned(),
            library: Watched::tree(root, relevant, first, Library::load)?,
        })
    }

    /// The library in force.
    pub fn current(&self) -> Arc<Library> {
        self.library.current()
    }

    /// Bumped by every successful reload: a pack that compiles tables into its own form
    /// recompiles when this changes (see [`crate::Derived`]).
    pub fn generation(&self) -> u64 {
        self.library.generation()
    }

    /// The root watched.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Why the newest files are not in force, when the last load failed.
    pub fn error(&self) -> Option<String> {
        self.library.error()
    }

    /// Reload now (the watcher calls this; tests and `SIGHUP`-style callers may too).
    pub fn reload(&self) {
        self.library.reload();
    }
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
