//! One integration-test binary for `baton-knowledge` (modules in `suite/`).
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
