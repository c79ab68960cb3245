//! `GET /metrics`: the gate's counters and the store's figures for Prometheus.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use baton_kit::{Principal, Role};
use baton_runs::StoreApi as _;
use http::{StatusCode, header};

use crate::Rest;
use crate::problem::problem;

/// The scrape, for an admin or a principal `[telemetry] metrics_principals` names (anyone on
/// a loopback server without tokens).
pub(crate) async fn scrape(
    State(rest): State<Rest>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Response {
    let gate = &rest.served.gate;
    let Some(metrics) = gate.metrics() else {
        return problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "metrics are off: set `[telemetry] metrics = true`".to_owned(),
        );
    };
    let telemetry = &rest.served.settings.telemetry;
    let allowed = rest.tokens.is_empty()
        || principal.roles.contains(&Role::Admin)
        || telemetry.metrics_principals.contains(&principal.id);
    if !allowed {
        tracing::warn!(principal = %principal.id, "refused a metrics scrape");
        return problem(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "`{}` may not read metrics: an admin's token or one of `[telemetry] metrics_principals` may",
                principal.id
            ),
        );
    }
    match gate.store().stats().await {
        Ok(stats) => (
            [(header::CONTENT_TYPE, baton_gate::METRICS_CONTENT_TYPE)],
            metrics.render(stats, gate.clock().now_ms()),
        )
            .into_response(),
        Err(error) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            format!("the store did not answer: {error}"),
        ),
    }
}
