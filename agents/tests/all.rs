//! baton-agents integration tests: one binary; tools run through the real gate.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]

mod suite;
