//! Logs and traces. Logs go to stderr (stdout of `baton serve` is the MCP stream), filtered by
//! `BATON_LOG`. Traces — the spans Baton already makes: a call through the gate with its
//! decision, approval, execution and audit, an agent run with its model turns, tool calls,
//! handoffs and delegations — are exported over OTLP/HTTP when an endpoint is configured.
//!
//! The key design choice: each layer filters for itself. The gate's spans are at `debug`, so
//! with no exporter the log filter (`info`) disables them at their call sites and they cost
//! nothing; the exporter takes only spans (never log events, which may quote a caller) and
//! only Baton's own.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{FilterExt as _, Targets, dynamic_filter_fn, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Flushes and stops the trace exporter when dropped: keep it until the process ends.
#[derive(Debug, Default)]
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "the last traces were not exported");
        }
    }
}

/// Where traces go: `configured` (a base URL, `[telemetry] otlp_endpoint`) plus `/v1/traces`,
/// else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` plus
/// `/v1/traces` (the OpenTelemetry rules); `None`: no export.
pub fn otlp_traces_endpoint(configured: Option<&str>) -> Option<String> {
    let set = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let base = |url: &str| format!("{}/v1/traces", url.trim_end_matches('/'));
    match configured.filter(|url| !url.is_empty()) {
        Some(url) => Some(base(url)),
        None => set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT").map(|url| base(&url))),
    }
}

/// Log to stderr at `default` (or as `BATON_LOG` says; rmcp at warnings only), and export
/// traces to `otlp` (a full `/v1/traces` URL) when given.
pub fn init(default: &str, otlp: Option<String>) -> Telemetry {
    let filter = EnvFilter::try_from_env("BATON_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // rmcp logs whole requests and results (tool arguments, secrets included) at debug and
    // trace, and several lines a request at info: whatever BATON_LOG asks, it logs only
    // warnings and errors.
    let filter = match "rmcp=warn".parse() {
        Ok(cap) => filter.add_directive(cap),
        Err(_) => filter,
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter);
    let var = |name| std::env::var(name).ok();
    let sampling = baton_gate::trace::Sampling::parse(
        var("OTEL_TRACES_SAMPLER").as_deref(),
        var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
    );
    let sampled = sampling.clone().unwrap_or(baton_gate::trace::Sampling::ALL);
    let (provider, failed) = match otlp.as_deref().map(|url| provider(url, sampled)) {
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(error)) => (None, Some(error)),
        None => (None, None),
    };
    let traces = provider.as_ref().map(|provider| {
        let ours = Targets::new().with_targets(
            [
                "baton_gate",
                "baton_agents",
                "baton_mcp",
                "baton_rest",
                "baton_cli",
            ]
            .map(|target| (target, tracing::Level::DEBUG)),
        );
        // No code locations, targets, thread names or busy/idle timings: attributes nobody
        // reads here, paid on every span. Nothing here reads OpenTelemetry's own current
        // context (the parent comes from the tracing span), so entering a span — every poll of
        // an instrumented future — does not activate one.
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("baton"))
            .with_location(false)
            .with_target(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            // A trace not sampled makes no span at all (see baton_gate::trace): asked per
            // span, where the rest is decided once per call site.
            .with_filter(
                ours.and(filter_fn(|meta| meta.is_span()))
                    .and(dynamic_filter_fn(|_, _| baton_gate::trace::recording())),
            )
    });

    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    if let Some(error) = failed {
        tracing::warn!(%error, "traces are not exported");
    } else if let Some(url) = &otlp {
        tracing::debug!(%url, "exporting traces");
    }
    if provider.is_some() {
        baton_gate::trace::set_sampling(sampled);
        if let Err(error) = sampling {
            tracing::warn!(%error, "every trace is sampled");
        }
    }
    Telemetry { provider }
}

fn provider(
    url: &str,
    sampling: baton_gate::trace::Sampling,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("baton")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    // Sampled before any span is made (baton_gate::trace): what is made is exported, with
    // a caller's decision on spans continuing its trace when the sampling follows callers.
    use opentelemetry_sdk::trace::Sampler;
    let sampler = if sampling.follow_parent {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    } else {
        Sampler::AlwaysOn
    };
    // At thousands of calls a second (four spans each) the SDK's defaults, a queue of 2,048
    // and batches of 512, post an export every ~25 ms; batches of 4,096 cut the exports
    // sevenfold (docs/benchmarks.md). Each is the operator's to set
    // (`OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};
    let unset = |name| std::env::var_os(name).is_none();
    let mut batch = BatchConfigBuilder::default();
    if unset("OTEL_BSP_MAX_QUEUE_SIZE") {
        batch = batch.with_max_queue_size(16_384);
    }
    if unset("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
        batch = batch.with_max_export_batch_size(4_096);
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch.build())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}
