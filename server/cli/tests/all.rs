//! baton-cli integration tests: one binary; the real `baton` binary, real MCP clients, real
//! HTTP on loopback.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]

mod suite;
