//! Test-only fixtures for the MCP conformance suites, and the server that serves them beside
//! Baton's own tools (`baton-conformance --http ADDR`; never part of the `baton` binary).
//!
//! The suites expect tools, prompts and resources with fixed names and contents, and protocol
//! features Baton itself does not offer (logging, resource subscriptions, sampling). They are
//! protocol test data, not a tool pack, so they live here: [`ConformanceMcp`] wraps Baton's
//! handler and answers the fixtures' requests itself, handing every other request to the
//! handler unchanged. Fixture calls still pass the gate.

// Sampling and logging are deprecated by SEP-2577 but still in the 2025-11-25 suite.
#![allow(deprecated)]
#![allow(
    clippy::too_many_lines,
    reason = "test data, not library code: one match arm per fixture the suites name"
)]

mod fixtures;
mod handler;
mod resources;
mod tools;

pub use fixtures::{Conformance, ConformanceError};
pub use handler::ConformanceMcp;
