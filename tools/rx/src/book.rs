use std::sync::Arc;

use baton_knowledge::{Derived, Shelf};

use crate::{Result, RuleBook};

/// The rule book in force: compiled from the `rx` tables of a knowledge [`Shelf`] and
/// recompiled when the shelf reloads, through the knowledge crate's one hot-reload mechanism
/// ([`Derived`]). A table edit that does not compile keeps the last good book (and says why in
/// [`Rules::error`]), so a typo never switches the rules off.
#[derive(Debug)]
pub struct Rules {
    book: Derived<RuleBook>,
}

impl Rules {
    /// The rules of `shelf`.
    pub fn new(shelf: Arc<Shelf>) -> Rules {
        Rules {
            book: Derived::new("rx rules", shelf, |library| {
                let book = RuleBook::from_library(library)?;
                tracing::info!(version = %book.version, rules = book.rules.len(), "rx rules loaded");
                Ok::<_, crate::RxError>(book)
            }),
        }
    }

    /// The book in force now.
    pub fn book(&self) -> Result<Arc<RuleBook>> {
        match self.book.get() {
            Some(book) => Ok(book),
            None => Err(crate::RxError::Book(
                self.book.error().unwrap_or_else(|| "no rule tables".into()),
            )),
        }
    }

    /// Why the newest tables are not in force, if they are not.
    pub fn error(&self) -> Option<String> {
        self.book.error()
    }
}
