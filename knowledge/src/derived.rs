//! Values derived from the knowledge library (a pack's compiled rule book, its thresholds),
//! re-derived when the shelf reloads and kept when a new derivation fails.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{LastGood, Library, Shelf};

type Derive<T> = Box<dyn Fn(&Library) -> std::result::Result<T, String> + Send + Sync>;

/// A value computed from a [`Shelf`]'s library by the caller's `derive` (parse a table,
/// compile rules), once per shelf generation, on first use after a reload. A derivation that
/// fails keeps the last good value and says why, exactly as a bad file does for [`Watched`]:
/// a typo in a table never switches a pack off.
///
/// [`Watched`]: crate::Watched
pub struct Derived<T> {
    shelf: Arc<Shelf>,
    derive: Derive<T>,
    seen: AtomicU64,
    deriving: Mutex<()>,
    slot: LastGood<Option<Arc<T>>>,
}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derived")
            .field("seen", &self.seen.load(Ordering::Relaxed))
            .field("error", &self.slot.error())
            .finish_non_exhaustive()
    }
}

impl<T> Derived<T> {
    /// `derive` applied to `shelf`'s library (named `name` in logs); nothing is derived yet.
    pub fn new<E: Display>(
        name: impl Into<String>,
        shelf: Arc<Shelf>,
        derive: impl Fn(&Library) -> std::result::Result<T, E> + Send + Sync + 'static,
    ) -> Derived<T> {
        Derived {
            shelf,
            derive: Box::new(move |library| derive(library).map_err(|e| e.to_string())),
            seen: AtomicU64::new(0),
            deriving: Mutex::new(()),
            slot: LastGood::new(name, None),
        }
    }

    /// The value in force: derived from the newest library, or the last good one when that
    /// fails; `None` while no derivation has succeeded (see [`Derived::error`]).
    pub fn get(&self) -> Option<Arc<T>> {
        self.refresh();
        (*self.slot.current()).clone()
    }

    /// Why the newest library's value is not in force, when it is not.
    pub fn error(&self) -> Option<String> {
        self.refresh();
        self.slot.error()
    }

    /// Re-derive when the shelf has reloaded since the last derivation.
    fn refresh(&self) {
        // Read the generation before the library: a reload in between only means one more
        // derivation next time.
        let generation = self.shelf.generation();
        if self.seen.load(Ordering::Acquire) == generation {
            return;
        }
        let _guard = match self.deriving.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if self.seen.load(Ordering::Acquire) == generation {
            return;
        }
        let derived = (self.derive)(&self.shelf.current()).map(|value| Some(Arc::new(value)));
        self.slot.offer(derived);
        self.seen.store(generation, Ordering::Release);
    }
}
