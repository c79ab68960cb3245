//! `dsp_latency` in a process that counts allocations, as the `baton` binary does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use baton_dsp::{CountingAllocator, DspLatency, LatencyArgs, Unwatched, measure};
use baton_kit::{Tool, ToolContext};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: CountingAllocator<System> = CountingAllocator::new(System);

#[tokio::test]
async fn a_biquad_chain_allocates_nothing_in_the_callback() {
    let args: LatencyArgs = serde_json::from_value(json!({
        "sample_rate": 48000,
        "block_size": 128,
        "seconds": 2,
        "chain": (0..10).map(|i| json!({"type": "peaking", "freq_hz": 100 * (i + 1), "q": 1.0, "gain_db": 1.5})).collect::<Vec<_>>()
    }))
    .unwrap();
    let report = DspLatency
        .call(args, ToolContext::new(CancellationToken::new()))
        .await
        .unwrap();
    assert_eq!(report.allocations, Some(0));
    assert_eq!(report.blocks, 750);
    assert!((report.budget_us - 2666.666).abs() < 0.01);
    assert!(report.min_us <= report.p50_us && report.p50_us <= report.p99_us);
    assert!(report.p99_us <= report.max_us);
}

#[test]
fn a_callback_that_allocates_is_caught() {
    // The copies are kept (in room reserved up front), so no optimiser can elide them.
    let mut kept: Vec<Vec<f32>> = Vec::with_capacity(100);
    let report = measure(44_100, 64, 1, 0.1, &Unwatched, |buffers| {
        kept.push(buffers[0].clone());
    })
    .unwrap();
    assert_eq!(kept.len(), report.blocks);
    assert_eq!(report.allocations, Some(report.blocks as u64));
}
