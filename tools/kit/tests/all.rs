//! The crate's one integration-test binary: every suite links into it once, instead of one
//! binary per file each linking the whole crate.
#![allow(
    clippy::too_many_lines,
    reason = "a test tells one story top to bottom; the line limit is for library code"
)]

mod suite;
