//! One integration-test binary for `baton-knowledge` (modules in `suite/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
