//! One integration-test binary for `baton-onnx` (modules in `suite/`). Tests that load ONNX Runtime
//! skip, saying why, unless the test command provides it (`ORT_DYLIB_PATH`).
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
