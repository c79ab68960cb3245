/// How long work reports progress and learns it should stop; the pack's tools adapt the MCP
/// call's context to it, tests and benches pass [`Unwatched`].
pub trait Monitor: Sync {
    /// `done` of `total` units finished.
    fn progress(&self, done: f64, total: f64, message: &str);
    /// Whether the caller has given up; long work checks between units.
    fn cancelled(&self) -> bool;
}

/// Nobody watching: no progress, never cancelled.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwatched;

impl Monitor for Unwatched {
    fn progress(&self, _: f64, _: f64, _: &str) {}

    fn cancelled(&self) -> bool {
        false
    }
}
