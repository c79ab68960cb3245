//! The dsp pack's heavy work, timed on one thread; `scripts/bench_dsp.py` runs this and the
//! same work in librosa / pyloudnorm / scipy, and writes the ratios to docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration;

use baton_dsp::{
    Audio, Chain, FilterSpec, FilterType, HpssParams, Stft, Unwatched, Window, hpss,
    integrated_loudness,
};
use criterion::{Criterion, criterion_group, criterion_main};

// The allocator the `baton` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Noise plus two tones, the same every run.
fn signal(rate: u32, seconds: f64, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..(f64::from(rate) * seconds) as usize)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let t = i as f32 / rate as f32;
            0.3 * (std::f32::consts::TAU * 220.0 * t).sin()
                + 0.1 * (std::f32::consts::TAU * 3100.0 * t).sin()
                + 0.2 * noise
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("dsp");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let stereo_60 = [signal(48_000, 60.0, 1), signal(48_000, 60.0, 2)];
    let stft = Stft::new(2048, 512, Window::Hann).unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("stft_60s_stereo_48k", |b| {
        b.iter(|| {
            for channel in &stereo_60 {
                black_box(stft.forward(black_box(channel)));
            }
        })
    });

    let long = Audio {
        sample_rate: 48_000,
        channels: vec![signal(48_000, 600.0, 3), signal(48_000, 600.0, 4)],
    };
    group.bench_function("loudness_10min_stereo_48k", |b| {
        b.iter(|| integrated_loudness(black_box(&long)))
    });

    let mono_30 = signal(48_000, 30.0, 5);
    group.bench_function("hpss_30s_mono_48k", |b| {
        b.iter(|| hpss(black_box(&mono_30), &HpssParams::default(), &Unwatched))
    });

    let specs: Vec<FilterSpec> = (0..10)
        .map(|i| FilterSpec {
            kind: FilterType::Peaking,
            freq_hz: 60.0 * 1.8f64.powi(i),
            q: 1.0,
            gain_db: if i % 2 == 0 { 2.0 } else { -2.0 },
        })
        .collect();
    let mut chain = Chain::new(&specs, 48_000.0, 2).unwrap_or_else(|e| panic!("{e}"));
    let mut block = [
        signal(48_000, 128.0 / 48_000.0, 6),
        signal(48_000, 128.0 / 48_000.0, 7),
    ];
    group.bench_function("biquad10_block128_stereo_48k", |b| {
        b.iter(|| {
            for (channel, samples) in block.iter_mut().enumerate() {
                chain.process(channel, black_box(samples));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
