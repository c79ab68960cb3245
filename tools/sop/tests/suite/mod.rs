//! The integration tests, one module per area; `tests/all.rs` links them into one binary.

mod catalog;
mod common;
mod confine;
mod coordination;
mod e2e;
mod safety;
