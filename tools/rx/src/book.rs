use std::sync::{Arc, Mutex};

use baton_knowledge::Shelf;

use crate::{Result, RuleBook};

/// The rule book in force: compiled from the `rx` tables of a knowledge [`Shelf`] and
/// recompiled when the shelf reloads. A table edit that does not compile keeps the last good
/// book (and says why in [`Rules::error`]), so a typo never switches the rules off.
#[derive(Debug)]
pub struct Rules {
    shelf: Arc<Shelf>,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    generation: u64,
    book: Option<Arc<RuleBook>>,
    error: Option<String>,
}

impl Rules {
    /// The rules of `shelf`.
    pub fn new(shelf: Arc<Shelf>) -> Rules {
        Rules {
            shelf,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The book in force now.
    pub fn book(&self) -> Result<Arc<RuleBook>> {
        let generation = self.shelf.generation();
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.generation != generation {
            cache.generation = generation;
            match RuleBook::from_library(&self.shelf.current()) {
                Ok(book) => {
                    tracing::info!(version = %book.version, rules = book.rules.len(), "rx rules loaded");
                    cache.book = Some(Arc::new(book));
                    cache.error = None;
                }
                Err(error) => {
                    tracing::warn!(%error, "rx rule tables do not compile; keeping the last good rules");
                    cache.error = Some(error.to_string());
                }
            }
        }
        match (&cache.book, &cache.error) {
            (Some(book), _) => Ok(book.clone()),
            (None, Some(error)) => Err(crate::RxError::Book(error.clone())),
            (None, None) => Err(crate::RxError::Book("no rule tables".into())),
        }
    }

    /// Why the newest tables are not in force, if they are not.
    pub fn error(&self) -> Option<String> {
        self.cache.lock().ok().and_then(|cache| cache.error.clone())
    }
}
