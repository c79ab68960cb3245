//! The reviewers' console: the place people who approve elevated calls live in, served under
//! `/console` beside MCP by `baton serve --http`, and the reviewers' watch that runs beside
//! every server (approvals expired on time, webhooks told of approvals).
//!
//! Pages are rendered on the server ([`maud`]); the only script keeps the approvals list live
//! over server-sent events, and everything works without it. Assets are compiled in: nothing
//! is fetched at run time. Sign-in takes a bearer token of the same `[[http.tokens]]` MCP
//! uses, only for `reviewer` and `admin` principals, and turns it into a session cookie; every
//! form carries the session's CSRF token and is refused from a foreign `Origin` or `Host`.
//!
//! The key design choice: the console has no way of its own to decide anything. A decision is
//! the `approvals_decide` tool called through the gate as the signed-in reviewer — the same
//! policy, separation of duties and audit record as every other face — and everything shown is
//! read through the store's API, so it works the same whichever process owns the store.

mod approvals;
mod assets;
mod audit;
mod error;
mod layout;
mod preview;
mod routes;
mod runs;
mod session;
mod watch;
mod workers;

pub use error::{ConsoleError, Result};
pub use routes::Console;
pub use watch::watch;
