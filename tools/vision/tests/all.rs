//! One integration-test binary for `baton-vision` (modules in `suite/`). Tests that need ONNX
//! Runtime or a fetched model skip, saying why, unless the test command provides them.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
