//! The gate's figures for Prometheus (`GET /metrics`): every call counted where its audit
//! record is written — so the counters agree with the audit log, from every face — plus the
//! store's figures read at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use baton_kit::Principal;
use baton_runs::{AuditDraft, HistogramSnapshot, StoreStats};

/// What a scrape's `Content-Type` is: the OpenMetrics text format, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    role: String,
    decision: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    tool: String,
}

type Latency = Family<ToolLabels, Histogram, fn() -> Histogram>;

/// Counters and latency histograms of the calls through one gate (and its clones).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: Latency,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn latency_buckets() -> Histogram {
    // 100 µs to about 52 s: a cached read to a long separation.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 20))
}

impl Metrics {
    /// Empty counters, registered under `baton_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "baton_tool_calls",
            "Tool calls through the gate, by tool, the caller's roles, the policy's decision and the outcome (as audited)",
            calls.clone(),
        );
        let latency = Latency::new_with_constructor(latency_buckets);
        registry.register_with_unit(
            "baton_tool_call_duration",
            "Time from a call's decision to its audit record, by tool",
            Unit::Seconds,
            latency.clone(),
        );
        Metrics {
            registry,
            calls,
            latency,
        }
    }

    /// Count the call `audit` records, made by `principal`.
    pub(crate) fn call(&self, principal: &Principal, audit: &AuditDraft) {
        let labels = CallLabels {
            tool: audit.tool.clone(),
            role: roles(principal),
            decision: audit.decision.kind.as_str(),
            outcome: audit.outcome.status.as_str(),
        };
        self.calls.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&ToolLabels {
                tool: audit.tool.clone(),
            })
            .observe(audit.duration_us as f64 / 1e6);
    }

    /// The scrape: these counters, then `store`'s figures as of `now_ms`, in the OpenMetrics
    /// text format.
    pub fn render(&self, store: StoreStats, now_ms: u64) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(StoreFigures { store, now_ms }));
        let mut text = String::new();
        // Writing into a String cannot fail; a collector's own error would leave a partial
        // scrape, which the missing `# EOF` marks as such to Prometheus.
        let written = prometheus_client::encoding::text::encode_registry(&mut text, &self.registry)
            .and_then(|()| prometheus_client::encoding::text::encode(&mut text, &scrape));
        if let Err(error) = written {
            tracing::error!(%error, "metrics scrape incomplete");
        }
        text
    }
}

/// The roles label: the caller's roles joined by `+` (`admin+reviewer`), `none` without.
fn roles(principal: &Principal) -> String {
    if principal.roles.is_empty() {
        return "none".to_owned();
    }
    let names: Vec<&str> = principal.roles.iter().map(|r| r.as_str()).collect();
    names.join("+")
}

/// The store's figures, encoded once per scrape.
#[derive(Debug)]
struct StoreFigures {
    store: StoreStats,
    now_ms: u64,
}

impl Collector for StoreFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let store = &self.store;
        let mut runs = encoder.encode_descriptor(
            "baton_runs",
            "Agent runs in the store, by state.",
            None,
            MetricType::Gauge,
        )?;
        for (state, count) in &store.runs {
            runs.encode_family(&[("state", state.as_str())])?
                .encode_gauge(count)?;
        }
        gauge(
            &mut encoder,
            "baton_approvals_pending",
            "Approvals waiting for a reviewer.",
            None,
            store.approvals_pending as f64,
        )?;
        let oldest = store
            .oldest_pending_ms
            .map_or(0.0, |ms| self.now_ms.saturating_sub(ms) as f64 / 1e3);
        gauge(
            &mut encoder,
            "baton_approvals_oldest_pending_age",
            "How long the oldest waiting approval has waited (0 when none waits).",
            Some(&Unit::Seconds),
            oldest,
        )?;
        gauge(
            &mut encoder,
            "baton_audit_head",
            "The audit chain's last sequence number.",
            None,
            store.audit_head as f64,
        )?;
        gauge(
            &mut encoder,
            "baton_store_size",
            &format!("Bytes the store ({}) takes.", store.backend),
            Some(&Unit::Bytes),
            store.size_bytes as f64,
        )?;
        histogram(
            &mut encoder,
            "baton_audit_batch_records",
            "Records per audit batch (one sync or transaction each), as this process's writer saw.",
            None,
            &store.audit_batch_records,
        )?;
        histogram(
            &mut encoder,
            "baton_audit_sync",
            "Time an audit batch took to be durable.",
            Some(&Unit::Seconds),
            &store.audit_sync_seconds,
        )
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    encoder
        .encode_descriptor(name, help, unit, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    snapshot: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    let buckets: Vec<(f64, u64)> = snapshot.buckets().collect();
    encoder
        .encode_descriptor(name, help, unit, MetricType::Histogram)?
        .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            snapshot.sum,
            snapshot.count,
            &buckets,
            None,
        )
}
