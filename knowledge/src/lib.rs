//! Knowledge packs on disk.
//!
//! A knowledge root holds one folder per pack (`docs/`, `rx/`…); every Markdown file and every
//! TOML rule table in a pack is a document, addressed as `knowledge://<pack>/<path>`. Documents are split into
//! sections at their headings and searched with BM25 over those sections, so a hit points a
//! model at the paragraph that answers it rather than at a whole file.
//!
//! The key design choice: the library is an immutable snapshot. Loading builds a new one;
//! whoever serves it swaps the whole snapshot, so a search never sees half a reload. A
//! [`Shelf`] holds the snapshot in force and swaps it when a file under the root changes.
//!
//! This crate also owns Baton's one hot-reload mechanism, used for every watched file (the
//! knowledge root, policy files, rx rule tables, vision thresholds): [`Watched`] watches a file
//! or folder, waits for it to settle, parses it with the caller's parser and keeps the last
//! good value in a [`LastGood`], which says why a bad edit was ignored; [`Derived`] does the
//! same for a value computed from the shelf's library, once per reload.

mod derived;
mod document;
mod error;
mod library;
mod reload;
mod search;
mod shelf;

pub use derived::Derived;
pub use document::{Document, MARKDOWN, Section, TOML};
pub use error::{KnowledgeError, Result};
pub use library::{Library, MAX_DOCUMENT_BYTES};
pub use reload::{LastGood, SETTLE, Watch, Watched};
pub use search::Hit;
pub use shelf::Shelf;
