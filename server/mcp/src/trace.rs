//! A call's span, continuing the client's trace: the W3C `traceparent` and `tracestate` a
//! client sends — in an MCP request's `_meta` (SEP-414), or as HTTP headers to the plain-HTTP
//! face — make its span the parent of everything the call does here: the gate's decision,
//! approval, execution and audit, and an agent run the call starts.

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rmcp::model::RequestMetaObject;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A W3C trace context as a request carried it.
struct Carrier<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Make `span` a child of the client's span that `traceparent` (and `tracestate`) name, W3C
/// Trace Context as a request carries it (`_meta` for MCP, headers for HTTP). Absent or
/// malformed, the span starts a trace of its own.
pub fn child_of(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if traceparent.is_none() || span.is_disabled() {
        return;
    }
    let carrier = Carrier {
        traceparent,
        tracestate,
    };
    let parent = TraceContextPropagator::new().extract(&carrier);
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "the client's trace context was not applied");
    }
}

/// The span of a call of `tool` (OpenTelemetry's RPC conventions, `rpc.system = mcp`; its
/// MCP conventions name a `tools/call` an `execute_tool` operation), a child of the client's
/// span when `meta` names one (SEP-414). It is also the gate's span for the call: it declares
/// the fields the gate records (see `baton_gate::trace::gate_on`).
pub(crate) fn call_span(tool: &str, meta: &RequestMetaObject) -> tracing::Span {
    let span = tracing::debug_span!(
        "tools/call",
        otel.name = %format_args!("tools/call {tool}"),
        otel.kind = "server",
        rpc.system = "mcp",
        rpc.method = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        baton.principal = tracing::field::Empty,
        baton.args_digest = tracing::field::Empty,
        baton.decision = tracing::field::Empty,
        baton.outcome = tracing::field::Empty,
        baton.audit.seq = tracing::field::Empty,
    );
    child_of(&span, meta.get_traceparent(), meta.get_tracestate());
    span
}
