//! Goals handed to the agents, from the shell (`baton run`) or over MCP (`agents_run` and the
//! `runs_*` tools, which run them inside the server process).

mod live;
mod run;
mod service;
mod tools;

pub use run::{
    Bindings, Fence, ModelSetup, ProviderKind, Setup, execute, provider, recorded_provider, say,
};
pub use service::Goals;
pub use tools::register;
