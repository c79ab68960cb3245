//! The integration tests, one module per area; `tests/all.rs` links them into one binary.

mod common;
mod dose;
mod engine;
mod tables;
mod tools;
