//! Knowledge packs on disk.
//!
//! A knowledge root holds one folder per pack (`docs/`, later `rx/`…); every Markdown file in
//! a pack is a document, addressed as `knowledge://<pack>/<path>`. Documents are split into
//! sections at their headings and searched with BM25 over those sections, so a hit points a
//! model at the paragraph that answers it rather than at a whole file.
//!
//! The key design choice: the library is an immutable snapshot. Loading builds a new one;
//! whoever serves it swaps the whole snapshot, so a search never sees half a reload.

mod document;
mod error;
mod library;
mod search;

pub use document::{Document, Section};
pub use error::{KnowledgeError, Result};
pub use library::{Library, MAX_DOCUMENT_BYTES};
pub use search::Hit;
