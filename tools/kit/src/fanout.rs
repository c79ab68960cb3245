//! Fan-out: the items of a batch run elsewhere — on workers, on other machines — instead of
//! in the process that took the call.
//!
//! A batch tool asks its context for a [`Fanout`]; when the server has one (workers take
//! batch items from its store), the tool hands it one call of a single-item tool per item and
//! assembles the answers; when not, it runs every item itself as before. The tool knows
//! nothing of queues: what runs where is the server's business.

use futures::future::BoxFuture;
use serde_json::Value;

use crate::{Result, ToolContext};

/// One item's answer: the single-item tool's structured result, or why it failed.
pub type ItemResult = std::result::Result<Value, String>;

/// What a fan-out came to.
#[derive(Debug, Clone, PartialEq)]
pub struct FannedOut {
    /// Each item's answer, in the order given.
    pub items: Vec<ItemResult>,
    /// How many workers ran them.
    pub workers: usize,
}

/// Runs the items of a batch on workers.
pub trait Fanout: Send + Sync + std::fmt::Debug {
    /// Call `tool` once per element of `items` (its arguments) for the caller of `ctx`, on
    /// workers; each item's answer, in order. Reports progress and honours cancellation
    /// through `ctx`; an error here means the batch could not be run at all.
    fn fan_out<'a>(
        &'a self,
        tool: &'a str,
        items: Vec<Value>,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<FannedOut>>;
}
