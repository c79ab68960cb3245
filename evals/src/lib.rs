//! `baton-evals`: labelled cases per pack, run against the real pack, scored.
//!
//! The key design choice: cases are plain JSON files committed beside a script that wrote
//! them (`evals/<pack>/make.py`), each stating the verdict expected — so a change to the rules
//! or the engine that moves any verdict shows up as a scored failure, never as a silently
//! updated snapshot.

mod error;
mod rx;

pub use error::{EvalError, Result};
pub use rx::{CaseOutcome, CodeScore, Input, RxCase, RxScores, load_rx_cases, run_rx};

/// Where the committed eval cases live, relative to the source tree.
pub fn default_cases_dir(pack: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(pack)
        .join("cases")
}
