//! A real-time budget check: run a callback over blocks of generated audio, as a host would,
//! timing each block and counting the allocations it makes.

use std::time::Instant;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::counting::allocations;
use crate::{DspError, Monitor, Result};

/// Longest run accepted, seconds of audio.
pub const MAX_SECONDS: f64 = 600.0;
/// Largest block accepted, samples.
pub const MAX_BLOCK: usize = 16_384;

/// What `dsp_latency` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyReport {
    /// Frames per second.
    pub sample_rate: u32,
    /// Samples per channel per block.
    pub block_size: usize,
    /// Channels processed per block.
    pub channels: usize,
    /// Blocks timed.
    pub blocks: usize,
    /// Real time one block lasts, µs (the callback's budget).
    pub budget_us: f64,
    /// Fastest block, µs.
    pub min_us: f64,
    /// Median block, µs.
    pub p50_us: f64,
    /// 99th-percentile block, µs.
    pub p99_us: f64,
    /// Slowest block, µs.
    pub max_us: f64,
    /// Median block as a share of the budget, %.
    pub p50_budget_pct: f64,
    /// 99th-percentile block as a share of the budget, %.
    pub p99_budget_pct: f64,
    /// Allocations made inside the callback over the whole run (must be 0 for real-time
    /// safety); `null` when the process does not count allocations.
    pub allocations: Option<u64>,
}

/// Time `callback` over `seconds` of white noise at `sample_rate` in blocks of `block_size`
/// samples per channel. The callback gets one block of every channel (planar) per call.
pub fn measure(
    sample_rate: u32,
    block_size: usize,
    channels: usize,
    seconds: f64,
    monitor: &dyn Monitor,
    mut callback: impl FnMut(&mut [Vec<f32>]),
) -> Result<LatencyReport> {
    crate::audio::check_rate("sample_rate", sample_rate)?;
    if !(1..=MAX_BLOCK).contains(&block_size) {
        return Err(DspError::parameter(
            "block_size",
            format!("{block_size} must be from 1 to {MAX_BLOCK}"),
        ));
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= MAX_SECONDS) {
        return Err(DspError::parameter(
            "seconds",
            format!("{seconds} must be above 0 and at most {MAX_SECONDS}"),
        ));
    }
    let blocks = ((seconds * f64::from(sample_rate)) / block_size as f64).ceil() as usize;
    let blocks = blocks.max(1);
    // Everything the loop touches is allocated here, before timing starts.
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut buffers: Vec<Vec<f32>> = (0..channels).map(|_| vec![0.0; block_size]).collect();
    let mut times = Vec::with_capacity(blocks);
    let mut allocated = 0u64;
    let counting = allocations().is_some();
    for block in 0..blocks {
        if block % 4096 == 0 {
            if monitor.cancelled() {
                return Err(DspError::Cancelled);
            }
            monitor.progress(block as f64, blocks as f64, "timing blocks");
        }
        for buffer in &mut buffers {
            buffer.iter_mut().for_each(|s| *s = noise.next());
        }
        let before = allocations();
        let start = Instant::now();
        callback(&mut buffers);
        let elapsed = start.elapsed();
        let after = allocations();
        if let (Some(before), Some(after)) = (before, after) {
            allocated += after - before;
        }
        times.push(elapsed.as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let budget_us = block_size as f64 / f64::from(sample_rate) * 1e6;
    Ok(LatencyReport {
        sample_rate,
        block_size,
        channels,
        blocks,
        budget_us,
        min_us: times[0],
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: times[times.len() - 1],
        p50_budget_pct: 100.0 * at(0.5) / budget_us,
        p99_budget_pct: 100.0 * at(0.99) / budget_us,
        allocations: counting.then_some(allocated),
    })
}

/// xorshift64* white noise in −1..1: cheap and the same on every run.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}
