//! Access to the store from any Baton process.
//!
//! sled lets one process open the store at a time, but people run `baton` from several shells,
//! hooks and scripts while a server is up. The first long-running process to open the store
//! owns it and serves it on a Unix socket in the data folder (`baton.sock`, mode 0600); every
//! other process hands its store operations to the owner over that socket. If the owner goes
//! away, the next operation takes the store over (or finds the new owner). Nothing fails with a
//! lock error; an operation waits, with back-off, at most [`WAIT`] for the store.
//!
//! The socket speaks exactly [`StoreApi`](crate::StoreApi): one JSON request per line
//! (`{"op": …}`), one answer per line (`{"ok": …}` or `{"error": {"kind", "message"}}`).

mod client;
mod handle;
mod service;

pub(crate) use client::Client;
pub(crate) use handle::Direct;
pub use handle::{Ownership, StoreHandle, WAIT};
pub use service::answer_taken;
pub(crate) use service::stopping;
