//! baton-runs integration tests: one binary, one module per concern.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]

mod suite;
