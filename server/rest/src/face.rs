//! The face itself: its settings, its routes, who is calling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use baton_kit::Principal;
use baton_mcp::Served;
use baton_mcp::tasks::Tasks;
use baton_mcp::transport::http::Tokens;

use crate::Result;

/// The HTTP face, checked against its configuration and ready to serve.
#[derive(Clone)]
pub struct Rest {
    pub(crate) served: Arc<Served>,
    pub(crate) tokens: Tokens,
    pub(crate) anonymous: Arc<Principal>,
    /// Jobs: the long tools' calls, kept in the store as MCP tasks are.
    pub(crate) jobs: Tasks,
    pub(crate) upload_limit: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("upload_limit", &self.upload_limit)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// The face over `served`; a bad token entry is an error here, before anything is served.
    pub fn new(served: Arc<Served>) -> Result<Rest> {
        let settings = &served.settings;
        Ok(Rest {
            tokens: Tokens::from_settings(settings)?,
            anonymous: Arc::new(Principal::new(
                format!("{}@http", settings.stdio.principal),
                settings.stdio.roles.iter().copied(),
            )),
            jobs: Tasks::new(served.gate.store().clone()),
            upload_limit: settings.http.upload_max_bytes,
            body_timeout: Duration::from_secs(settings.http.body_timeout_s),
            request_timeout: Duration::from_secs(settings.http.request_timeout_s),
            served,
        })
    }

    /// The routes under `/v1`, and `/metrics`, for a server bound at `bound`: they answer only
    /// requests whose `Host` is one of the server's names.
    pub fn router(self, bound: SocketAddr) -> Router {
        let hosts = Arc::new(baton_mcp::transport::http::allowed_hosts(
            &self.served.settings,
            bound,
        ));
        Router::new()
            .route("/v1/openapi.json", get(crate::openapi::document))
            .route("/v1/artifacts", post(crate::artifacts::upload))
            .route("/v1/artifacts/{sha256}", get(crate::artifacts::download))
            .route("/v1/tools/{name}", post(crate::call::call))
            .route(
                "/v1/jobs/{id}",
                get(crate::jobs::status).delete(crate::jobs::cancel),
            )
            .route("/v1/{*rest}", axum::routing::any(unknown))
            .route("/metrics", get(crate::metrics::scrape))
            .method_not_allowed_fallback(not_allowed)
            // Multipart forms are read within the upload limit (axum's default is 2 MB).
            .layer(axum::extract::DefaultBodyLimit::max(self.upload_limit))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::auth::authenticate,
            ))
            .layer(axum::middleware::from_fn_with_state(
                hosts,
                crate::auth::check_host,
            ))
            .with_state(self)
    }
}

async fn unknown(uri: http::Uri) -> axum::response::Response {
    crate::problem::problem(
        http::StatusCode::NOT_FOUND,
        "Not found",
        format!(
            "nothing at `{}`; GET /v1/openapi.json lists the routes",
            uri.path()
        ),
    )
}

async fn not_allowed(method: http::Method, uri: http::Uri) -> axum::response::Response {
    crate::problem::problem(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        format!("`{method}` is not served at `{}`", uri.path()),
    )
}
