//! Baton's gate: the one path every tool call takes, from any face — MCP over stdio or HTTP,
//! the command line, Baton's own agents: resolve the tool → check its arguments → let the
//! policy decide → wait for a reviewer when the call is elevated → execute, confined by the
//! sandbox and within the call limits → append a hash-chained audit record before answering.
//!
//! The key design choice: the gate knows the kit, the policies and the store, and nothing of
//! MCP, HTTP or a command line, so every face and every test uses the same gate. Time comes
//! from an injected [`Clock`], so approval expiry is tested without waiting for it.

mod approvals;
mod clock;
mod files;
mod gate;
mod limits;
mod media;
mod metrics;
mod oversight;
pub mod trace;

pub use approvals::{
    ApprovalView, ApprovalsDecide, ApprovalsList, DecideArgs, DecideResult, ListArgs, ListResult,
    StateFilter,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use files::{Uploads, media_type_of};
pub use gate::Gate;
pub use limits::{Admitted, CallLimits};
pub use media::{ACCEPTED, check_media, parse_media_type, sniff};
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
pub use oversight::wait_for_decision;
