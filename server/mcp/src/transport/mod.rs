//! How clients reach Baton: stdio (one client, the default) and Streamable HTTP.

pub mod http;
mod sessions;
pub mod stdio;
