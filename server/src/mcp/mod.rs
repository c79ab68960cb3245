//! The MCP face of Baton: one generic `ServerHandler` over the kit registry, behind the gate.
//! Adding a tool to a pack never means editing this module.

mod approval;
mod artifacts;
mod convert;
mod handler;
mod knowledge;
mod page;
mod progress;

pub use approval::{APPROVAL_ARG, APPROVAL_META, ClientApproves};
pub use convert::{descriptor_to_tool, error_to_mcp, output_to_result};
pub use handler::BatonMcp;
pub use progress::ProgressRelay;
