//! One integration-test binary for `baton-dsp` (modules in `suite/`). The whole binary counts
//! allocations (`suite/latency.rs` installs the counting allocator, as the `baton` binary does); the
//! separation-model tests skip, saying why, unless the test command provides ONNX Runtime.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
