//! The console's routes and the state they share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use baton_mcp::Served;
use baton_mcp::transport::http::{Tokens, allowed_hosts};
use baton_runs::Approval;
use maud::Markup;

use crate::session::Sessions;
use crate::{ConsoleError, Result, approvals, assets, audit, runs, session};

/// The console, checked against its configuration and ready to serve: what every console
/// handler shares.
#[derive(Clone)]
pub struct Console {
    /// The gate, store and settings of this server.
    pub(crate) served: Arc<Served>,
    /// Who is signed in.
    pub(crate) sessions: Arc<Sessions>,
    /// The bearer tokens a reviewer signs in with.
    pub(crate) tokens: Tokens,
    /// Whether cookies are `Secure` (the public URL is https).
    pub(crate) secure: bool,
    /// The `Host` names this server answers to.
    hosts: Arc<Vec<String>>,
    origins: Arc<Vec<String>>,
    /// The audit chain's last verification, kept between page loads.
    pub(crate) verified: Arc<tokio::sync::Mutex<Option<audit::Verified>>>,
    /// Rendered previews of pending approvals, by id, with when they were rendered: every
    /// open console redraws the list on each change, and a preview reads and diffs files.
    previews: Arc<std::sync::Mutex<HashMap<String, (Instant, Markup)>>>,
}

/// How long a rendered preview is reused (the file it diffs against may change meanwhile).
const PREVIEW_FOR: Duration = Duration::from_secs(10);

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("hosts", &self.hosts)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// The console over `served`, or `None` when `[console] enabled` is off. A bad
    /// `[http] public_url` or token entry is an error here, before anything is served.
    pub fn new(served: Arc<Served>) -> Result<Option<Console>> {
        let settings = &served.settings;
        if !settings.console.enabled {
            return Ok(None);
        }
        let mut hosts = Vec::new();
        let mut origins: Vec<String> = settings.http.allowed_origins.clone();
        let mut secure = false;
        if let Some(url) = &settings.http.public_url {
            let (is_https, origin, host) =
                parse_public_url(url).ok_or_else(|| ConsoleError::PublicUrl {
                    url: url.clone(),
                    config: settings.source.clone().unwrap_or_default(),
                    why: "expected http://HOST[:PORT] or https://HOST[:PORT]",
                })?;
            secure = is_https;
            origins.push(origin);
            hosts.push(host);
        }
        Ok(Some(Console {
            sessions: Arc::new(Sessions::new(
                std::time::Duration::from_secs(settings.console.session_hours.saturating_mul(3600)),
                settings.console.max_sessions,
            )),
            tokens: Tokens::from_settings(settings)?,
            secure,
            hosts: Arc::new(hosts),
            origins: Arc::new(origins),
            verified: Arc::new(tokio::sync::Mutex::new(None)),
            previews: Arc::default(),
            served,
        }))
    }

    /// The preview of `approval`: rendered by `render`, or reused if rendered lately.
    pub(crate) fn preview(&self, approval: &Approval, render: impl FnOnce() -> Markup) -> Markup {
        if let Ok(previews) = self.previews.lock()
            && let Some((at, markup)) = previews.get(&approval.id)
            && at.elapsed() < PREVIEW_FOR
        {
            return markup.clone();
        }
        let markup = render();
        if let Ok(mut previews) = self.previews.lock() {
            previews.insert(approval.id.clone(), (Instant::now(), markup.clone()));
        }
        markup
    }

    /// Drop the previews of approvals no longer waiting.
    pub(crate) fn forget_previews(&self, waiting: &[&Approval]) {
        if let Ok(mut previews) = self.previews.lock() {
            previews.retain(|id, _| waiting.iter().any(|a| a.id == *id));
        }
    }

    /// Whether a request's `Host` header names this server.
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        baton_mcp::transport::http::host_allowed(&self.hosts, host)
    }

    /// Whether a form's `Origin` is this server (as reached at `host`, already checked) or
    /// one configured.
    pub(crate) fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        origin == format!("http://{host}")
            || origin == format!("https://{host}")
            || self.origins.iter().any(|allowed| allowed == origin)
    }
}

/// `(origin, host)` of an `http(s)://host[:port][/…]` URL.
pub(crate) fn parse_public_url(url: &str) -> Option<(bool, String, String)> {
    let (secure, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    let scheme = if secure { "https" } else { "http" };
    Some((
        secure,
        format!("{scheme}://{authority}"),
        baton_mcp::transport::http::strip_port(authority).to_owned(),
    ))
}

impl Console {
    /// The console's routes for a server bound at `bound`, merged beside `/mcp` by the HTTP
    /// transport; the console authenticates on its own.
    pub fn router(mut self, bound: SocketAddr) -> Router {
        let mut hosts = allowed_hosts(&self.served.settings, bound);
        hosts.extend(self.hosts.iter().cloned());
        self.hosts = Arc::new(hosts);
        let console = self;
        // The audit page shows the chain's verification: start the first walk now, so the
        // page has it rather than a "verifying" note.
        let first = console.clone();
        tokio::spawn(async move {
            if let Err(error) = audit::verify_now(&first).await {
                tracing::warn!(%error, "verifying the audit chain for the console failed");
            }
        });
        Router::new()
            .route(
                "/console",
                get(|| async { axum::response::Redirect::to("/console/approvals") }),
            )
            .route(
                "/console/",
                get(|| async { axum::response::Redirect::to("/console/approvals") }),
            )
            .route(
                "/console/signin",
                get(crate::session::signin_page).post(crate::session::signin),
            )
            .route("/console/signout", post(crate::session::signout))
            .route("/console/approvals", get(approvals::page))
            .route("/console/approvals/live", get(approvals::live))
            .route("/console/approvals/{id}", post(approvals::decide))
            .route("/console/runs", get(runs::list))
            .route("/console/runs/{id}", get(runs::show))
            .route("/console/workers", get(crate::workers::page))
            .route("/console/audit", get(audit::page))
            .route("/console/audit/export", get(audit::export))
            .route("/console/audit/verify", post(audit::verify))
            .route("/console/assets/{name}", get(assets::serve))
            .layer(axum::middleware::from_fn_with_state(
                console.clone(),
                session::guard,
            ))
            .with_state(console)
    }
}
