//! The crate's one integration-test binary: every suite links into it once, instead of one
//! binary per file each linking the whole crate.

mod suite;
