//! Workers: processes on any machine that take goals and batch items from the shared store's
//! queue and run them through their own gate, for the requester who queued them.
//!
//! The key design choice: nothing of the work lives only in a worker. A goal's run is
//! journaled in the store (so another worker resumes it, replaying what was done and never
//! repeating a call that may have had its effect) and its files are pushed to the goal's
//! branch after every change (so the next worker's clone starts where the last one stopped).
//! A worker holds an item while it beats; one that stops beating loses it to the next.

mod fanout;
mod git;
mod goal;
mod queue;
mod worker;

pub use fanout::StoreFanout;
pub use goal::{GoalWork, remote_of};
pub use queue::{QueuedGoal, goal_remote, queue_goals, remote_head};
pub use worker::{Worker, WorkerSettings, hostname};
