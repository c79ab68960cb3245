//! How clients reach Baton: stdio (one client, the default) and Streamable HTTP.

pub mod http;
pub mod stdio;
