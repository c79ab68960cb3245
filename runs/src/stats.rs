//! What an operator watches about a store (Baton's `/metrics`): counts read when asked, and how
//! the audit writer keeps up. The writer's histograms are kept where it runs — the owning
//! process of a shared sled store, every process of a PostgreSQL one — and read through
//! [`crate::StoreApi::stats`], so a client of a shared store reports the owner's writer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the audit batch-size buckets, in records (the writer takes at most
/// [`crate::audit::MAX_BATCH`] at once).
const BATCH_BOUNDS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];
/// Upper bounds of the audit sync-time buckets, in seconds: a sled batch syncs in tens of
/// microseconds, a PostgreSQL one commits in milliseconds.
const SYNC_BOUNDS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];
/// Sums are kept in these units, as integers (one atomic add per observation).
const BATCH_UNIT: f64 = 1.0;
const SYNC_UNIT: f64 = 1e-9;

/// A store's figures at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// `sled` or `postgres`.
    pub backend: String,
    /// Bytes the store takes: sled's files and its audit segment, or PostgreSQL's `baton_*`
    /// tables with their indexes.
    pub size_bytes: u64,
    /// Runs by state (`running`, `done`, …); states without runs are absent.
    pub runs: BTreeMap<String, u64>,
    /// Approvals waiting for a reviewer (unexpired).
    pub approvals_pending: u64,
    /// When the oldest of them was requested (ms since the epoch).
    pub oldest_pending_ms: Option<u64>,
    /// The audit chain's last sequence number.
    pub audit_head: u64,
    /// Records per audit batch (one sync or transaction each), as this process's writer saw.
    pub audit_batch_records: HistogramSnapshot,
    /// Seconds each audit batch took to be durable (sled: segment write and sync;
    /// PostgreSQL: the transaction).
    pub audit_sync_seconds: HistogramSnapshot,
}

/// A histogram's buckets as read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// The buckets' upper bounds (finite: JSON has no infinity).
    pub bounds: Vec<f64>,
    /// Observations in each bucket alone, then those above every bound.
    pub counts: Vec<u64>,
    /// Sum of the observed values.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl HistogramSnapshot {
    /// `(upper bound, observations in this bucket alone)`, the last bound `+Inf`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
    }
}

/// Fixed-bucket histogram updated with atomics only: the audit writer records a batch without
/// a lock.
#[derive(Debug)]
struct AtomicHistogram {
    bounds: &'static [f64],
    /// One count per bound, then the `+Inf` bucket.
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    unit: f64,
}

impl AtomicHistogram {
    fn new(bounds: &'static [f64], unit: f64) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            unit,
        }
    }

    fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum
            .fetch_add((value / self.unit).round() as u64, Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            count: counts.iter().sum(),
            counts,
            sum: self.sum.load(Relaxed) as f64 * self.unit,
        }
    }
}

/// How an audit writer keeps up: what each batch carried and how long it took to be durable.
#[derive(Debug)]
pub(crate) struct WriterStats {
    batch: AtomicHistogram,
    sync: AtomicHistogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            batch: AtomicHistogram::new(&BATCH_BOUNDS, BATCH_UNIT),
            sync: AtomicHistogram::new(&SYNC_BOUNDS, SYNC_UNIT),
        }
    }
}

impl WriterStats {
    /// A batch of `records` made durable in `took`.
    pub(crate) fn batch(&self, records: usize, took: Duration) {
        self.batch.observe(records as f64);
        self.sync.observe(took.as_secs_f64());
    }

    /// `(records per batch, seconds per batch)`.
    pub(crate) fn snapshot(&self) -> (HistogramSnapshot, HistogramSnapshot) {
        (self.batch.snapshot(), self.sync.snapshot())
    }
}

impl crate::Store {
    /// [`crate::StoreApi::stats`] on sled: runs and approvals counted by reading them.
    pub fn stats(&self) -> crate::Result<StoreStats> {
        let mut runs = BTreeMap::new();
        for run in self.runs()? {
            *runs.entry(run.state.as_str().to_owned()).or_default() += 1;
        }
        let now = crate::now_millis();
        let pending: Vec<u64> = self
            .approvals()?
            .iter()
            .filter(|a| a.state_at(now) == crate::ApprovalState::Pending)
            .map(|a| a.created_ms)
            .collect();
        let inner = &self.inner;
        let wal = std::fs::metadata(inner.root.join("audit.wal")).map_or(0, |m| m.len());
        let (audit_batch_records, audit_sync_seconds) = inner.audit_log.writer_stats();
        Ok(StoreStats {
            backend: "sled".to_owned(),
            size_bytes: inner.db.size_on_disk()? + wal,
            runs,
            approvals_pending: pending.len() as u64,
            oldest_pending_ms: pending.iter().min().copied(),
            audit_head: crate::audit::read_head(&inner.meta)?.seq,
            audit_batch_records,
            audit_sync_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fall_in_their_buckets_and_sum() {
        let stats = WriterStats::default();
        stats.batch(1, Duration::from_micros(40));
        stats.batch(3, Duration::from_millis(3));
        stats.batch(5000, Duration::from_secs(9));
        let (batch, sync) = stats.snapshot();
        assert_eq!(batch.count, 3);
        assert_eq!(batch.sum, 5004.0);
        let counted: Vec<(f64, u64)> = batch.buckets().filter(|b| b.1 > 0).collect();
        assert_eq!(counted, vec![(1.0, 1), (4.0, 1), (f64::INFINITY, 1)]);
        let counted: Vec<(f64, u64)> = sync.buckets().filter(|b| b.1 > 0).collect();
        assert_eq!(counted, vec![(0.000_05, 1), (0.005, 1), (f64::INFINITY, 1)]);
        assert!((sync.sum - 9.003_04).abs() < 1e-9, "{}", sync.sum);
    }
}
