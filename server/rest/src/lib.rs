//! Baton's plain-HTTP face, for the people the packs serve outside MCP (a shop's image
//! pipeline, a pharmacy system) and for remote MCP clients that must hand Baton bytes rather
//! than name paths on its disk. Mounted under `/v1` beside `/mcp` by the HTTP transport.
//!
//! This first part moves bytes: `POST /v1/artifacts` keeps an upload in the store's
//! content-addressed artifacts and answers its `baton://artifacts/<sha256>` URI;
//! `GET /v1/artifacts/<sha256>` returns it with its media type, an `ETag` (the digest itself)
//! and byte ranges. Callers authenticate with the same bearer tokens as MCP. Errors are RFC 9457
//! problem details naming what was wrong.
//!
//! The key design choice: the face owns no storage and no second API — bytes live in the
//! store's artifacts, which tools already write their outputs to and MCP clients already read
//! with `resources/read`.

mod artifacts;
mod auth;
mod error;
mod problem;

pub use artifacts::Rest;
pub use error::{RestError, Result};
