//! A `tools/call`'s span, continuing the client's trace: the W3C `traceparent` and
//! `tracestate` a client puts in the request's `_meta` (SEP-414) make its span the parent of
//! everything the call does here — the gate's decision, approval, execution and audit, and an
//! agent run the call starts.

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rmcp::model::RequestMetaObject;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The trace context fields of a request's `_meta`.
struct Carrier<'a>(&'a RequestMetaObject);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.0.get_traceparent(),
            "tracestate" => self.0.get_tracestate(),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The span of a call of `tool` (OpenTelemetry's RPC conventions, `rpc.system = mcp`), a child
/// of the client's span when `meta` names one. A malformed `traceparent` starts a new trace.
pub(crate) fn call_span(tool: &str, meta: &RequestMetaObject) -> tracing::Span {
    let span = tracing::debug_span!(
        "tools/call",
        otel.name = %format_args!("tools/call {tool}"),
        otel.kind = "server",
        rpc.system = "mcp",
        rpc.method = "tools/call",
        gen_ai.tool.name = tool,
    );
    if meta.get_traceparent().is_some() && !span.is_disabled() {
        let parent = TraceContextPropagator::new().extract(&Carrier(meta));
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(%error, "the client's trace context was not applied");
        }
    }
    span
}
