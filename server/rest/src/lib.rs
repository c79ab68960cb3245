//! Baton's plain-HTTP face, for the people the packs serve outside MCP (a shop's image
//! pipeline, a pharmacy system) and for remote MCP clients that must hand Baton bytes rather
//! than name paths on its disk. Mounted under `/v1` beside `/mcp` by the HTTP transport.
//!
//! - `POST /v1/tools/<name>`: any tool, its JSON arguments in, its structured result out —
//!   or a multipart form whose file parts are uploaded and bound to the tool's file
//!   arguments. `202` with the approval when a reviewer must decide first; long tools answer
//!   `202` with a job, followed at `GET /v1/jobs/<id>` and stopped with `DELETE`.
//! - `POST /v1/artifacts` / `GET /v1/artifacts/<sha256>`: bytes in and out, by URI.
//! - `GET /v1/openapi.json`: OpenAPI 3.1, built from the registry's schemas.
//!
//! Callers authenticate with the same bearer tokens as MCP; errors are RFC 9457 problem
//! details naming the argument, part or rule at fault.
//!
//! The key design choice: the face is generated, not written — every route adapts the
//! registry and calls the one gate (policy, approval, audit, limits), bytes live in the
//! store's artifacts, and jobs are the MCP face's tasks in the same store. Adding a tool
//! never touches this crate.

mod artifacts;
mod auth;
mod body;
mod call;
mod error;
mod face;
mod jobs;
mod media;
mod metrics;
mod openapi;
mod problem;

pub use error::{RestError, Result};
pub use face::Rest;
