//! Where the `telemetry` comparison's server sends its traces: an OTLP/HTTP receiver on the
//! loopback. It shares the machine's cores with the server (a collector would not), so it does
//! as little as it can: it counts exports and bytes, and decodes one export in 100 to tell
//! how many spans an export carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use anyhow::Context as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;

/// The running receiver's address and what it received.
#[derive(Debug, Clone)]
pub(crate) struct Sink {
    /// `http://127.0.0.1:PORT`, an OTLP base URL.
    pub(crate) endpoint: String,
    /// Spans in the exports decoded.
    spans: Arc<AtomicU64>,
    /// Bytes of the exports decoded.
    decoded: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    exports: Arc<AtomicU64>,
}

impl Sink {
    /// Receive on a free loopback port, for as long as this process runs.
    pub(crate) async fn start() -> anyhow::Result<Sink> {
        let spans = Arc::new(AtomicU64::new(0));
        let decoded = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let exports = Arc::new(AtomicU64::new(0));
        let (counted, sized, seen) = (spans.clone(), bytes.clone(), exports.clone());
        let read = decoded.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: bytes::Bytes| {
                let (counted, sized, exports) = (counted.clone(), sized.clone(), seen.clone());
                let read = read.clone();
                async move {
                    sized.fetch_add(body.len() as u64, Relaxed);
                    let export = exports.fetch_add(1, Relaxed);
                    if export % 100 == 0 {
                        let size = body.len() as u64;
                        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
                            return http::StatusCode::BAD_REQUEST;
                        };
                        read.fetch_add(size, Relaxed);
                        let n: usize = request
                            .resource_spans
                            .iter()
                            .flat_map(|r| &r.scope_spans)
                            .map(|s| s.spans.len())
                            .sum();
                        counted.fetch_add(n as u64, Relaxed);
                    }
                    http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the OTLP receiver")?;
        let address = listener.local_addr()?;
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the OTLP receiver stopped");
            }
        });
        Ok(Sink {
            endpoint: format!("http://{address}"),
            spans,
            decoded,
            bytes,
            exports,
        })
    }

    /// A config in `home` for a Baton that counts metrics and sends its traces here.
    pub(crate) fn config(&self, home: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
        let config = home.join("telemetry.toml");
        let text = format!(
            "[telemetry]\nmetrics = true\notlp_endpoint = \"{}\"\n",
            self.endpoint
        );
        std::fs::write(&config, text).context("write the telemetry config")?;
        Ok(config)
    }

    /// What was received, for under the table: exports, bytes, and the spans they carried
    /// (estimated from the exports decoded).
    pub(crate) fn summary(&self) -> String {
        let exports = self.exports.load(Relaxed);
        let bytes = self.bytes.load(Relaxed);
        // Scaled by bytes, not by exports: batches differ in size (the last of each server's
        // run is short), spans of one shape do not.
        let spans = match self.decoded.load(Relaxed) {
            0 => 0,
            decoded => (self.spans.load(Relaxed) as u128 * bytes as u128 / decoded as u128) as u64,
        };
        format!(
            "\nThe receiver (in the load generator's process) took {exports} exports, {:.1} MB of OTLP protobuf, about {spans} spans, over the run.\n",
            bytes as f64 / 1e6
        )
    }
}
