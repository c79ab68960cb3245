//! Loudness per ITU-R BS.1770-4 and EBU Tech 3342: K-weighting (the standard's shelf and RLB
//! high-pass, re-derived for the file's rate as libebur128 does), mean square per 100 ms
//! segment, 400 ms gating blocks every 100 ms with the −70 LUFS absolute and −10 LU relative
//! gates, and the loudness range from 3 s short-term blocks every second (−20 LU gate, 10th
//! to 95th percentile). The `ebur128` crate does the same at about a fifth of the speed; the
//! filters here run two channels side by side so their recursions overlap.

use std::f64::consts::PI;

use crate::{Audio, DspError, Monitor, Result};

/// Integrated loudness and loudness range of a file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// Integrated loudness, LUFS; `None` when every block is below the absolute gate.
    pub integrated: Option<f64>,
    /// Loudness range, LU (0 when there are too few short-term blocks).
    pub range: f64,
}

/// One biquad in transposed direct form II.
#[derive(Clone, Copy)]
struct Stage {
    b: [f64; 3],
    a: [f64; 2],
}

/// The K-weighting stages for `rate` (libebur128's analogue-matched derivation; at 48 kHz
/// they are BS.1770-4's table).
fn k_weighting(rate: f64) -> [Stage; 2] {
    let f0 = 1681.974450955533;
    let gain = 3.999843853973347;
    let q = 0.7071752369554196;
    let k = (PI * f0 / rate).tan();
    let vh = 10f64.powf(gain / 20.0);
    let vb = vh.powf(0.4996667741545416);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Stage {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    let f0 = 38.13547087602444;
    let q = 0.5003270373238773;
    let k = (PI * f0 / rate).tan();
    let a0 = 1.0 + k / q + k * k;
    let high_pass = Stage {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    [shelf, high_pass]
}

/// BS.1770 channel weights for the usual layouts (L R C LFE Ls Rs; 4 channels are L R Ls Rs,
/// 5 are L R C Ls Rs, as libebur128 and pyloudnorm read them).
fn weights(channels: usize) -> Vec<f64> {
    (0..channels)
        .map(|index| match (channels, index) {
            (4, 2 | 3) | (5, 3 | 4) => 1.41,
            (4 | 5, _) => 1.0,
            (_, 0..=2) => 1.0,
            (_, 4 | 5) => 1.41,
            _ => 0.0,
        })
        .collect()
}

/// Run `N` channels' K-weighting side by side over one chunk, so their recursions overlap:
/// the energy of each segment that ends in the chunk (at the local indices `ends`) is added,
/// weighted, into `sums` from `first`; what follows the last end stays in `energy`.
// Indexing every channel at sample `i` in lockstep is the point: iterators would walk the
// channels one after another and serialise the recursions.
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
fn run<const N: usize>(
    channels: [&[f32]; N],
    stages: &[Stage; 2],
    state: &mut [[f64; 4]; N],
    energy: &mut [f64; N],
    ends: &[usize],
    weights: [f64; N],
    sums: &mut [f64],
) {
    let [s0, s1] = stages;
    // Per channel: the two stages' [z1, z2], held in locals (registers), not indexed memory.
    let mut local = *state;
    let mut acc = *energy;
    let len = channels.first().map_or(0, |c| c.len());
    let mut start = 0;
    for segment in 0..=ends.len() {
        let end = ends.get(segment).copied().unwrap_or(len);
        for i in start..end {
            for c in 0..N {
                let x = f64::from(channels[c][i]);
                let [z1, z2, w1, w2] = local[c];
                let y = s0.b[0] * x + z1;
                let z1 = s0.b[1] * x - s0.a[0] * y + z2;
                let z2 = s0.b[2] * x - s0.a[1] * y;
                let out = s1.b[0] * y + w1;
                let w1 = s1.b[1] * y - s1.a[0] * out + w2;
                let w2 = s1.b[2] * y - s1.a[1] * out;
                local[c] = [z1, z2, w1, w2];
                acc[c] += out * out;
            }
        }
        if segment < ends.len() {
            sums[segment] += (0..N).map(|c| acc[c] * weights[c]).sum::<f64>();
            acc = [0.0; N];
        }
        start = end;
    }
    *state = local;
    *energy = acc;
}

fn lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

/// A loudness meter fed a chunk at a time: it keeps the filters' state, the energy of the
/// 100 ms segment in progress and one sum per finished segment (8 bytes per 100 ms, 288 KB
/// for an hour), so any length is measured in bounded memory. The additions happen in the
/// same order whatever the chunking: the result is the same to the bit.
#[derive(Debug, Clone)]
pub struct LoudnessMeter {
    rate: f64,
    stages: [Stage; 2],
    weights: Vec<f64>,
    /// Per channel, the two stages' state.
    state: Vec<[f64; 4]>,
    /// Per channel, the energy of the segment in progress.
    energy: Vec<f64>,
    /// Frames pushed so far.
    frames: usize,
    /// Weighted energy of each finished segment.
    sums: Vec<f64>,
    /// Reused: the local indices where segments end in a chunk.
    ends: Vec<usize>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage").finish_non_exhaustive()
    }
}

impl LoudnessMeter {
    /// A meter for `channels` channels at `rate` Hz.
    pub fn new(channels: usize, rate: u32) -> LoudnessMeter {
        let rate = f64::from(rate);
        LoudnessMeter {
            rate,
            stages: k_weighting(rate),
            weights: weights(channels),
            state: vec![[0.0; 4]; channels],
            energy: vec![0.0; channels],
            frames: 0,
            sums: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// The first frame of 100 ms segment `k` (edges rounded so none drifts at rates like
    /// 11025 Hz).
    fn edge(&self, k: usize) -> usize {
        ((k as f64) * self.rate / 10.0).round() as usize
    }

    /// Feed the next frames, one slice per channel, all the same length.
    pub fn push(&mut self, channels: &[&[f32]]) {
        let len = channels.first().map_or(0, |c| c.len());
        let first = self.sums.len();
        self.ends.clear();
        let mut k = first;
        loop {
            let end = self.edge(k + 1);
            if end > self.frames + len {
                break;
            }
            self.ends.push(end - self.frames);
            k += 1;
        }
        self.sums.resize(k, 0.0);
        let sums = &mut self.sums[first..];
        for (pair, chunk) in channels.chunks(2).enumerate() {
            let at = pair * 2;
            match *chunk {
                [left, right] => {
                    let mut state = [self.state[at], self.state[at + 1]];
                    let mut energy = [self.energy[at], self.energy[at + 1]];
                    run(
                        [left, right],
                        &self.stages,
                        &mut state,
                        &mut energy,
                        &self.ends,
                        [self.weights[at], self.weights[at + 1]],
                        sums,
                    );
                    [self.state[at], self.state[at + 1]] = state;
                    [self.energy[at], self.energy[at + 1]] = energy;
                }
                [one] => {
                    let mut state = [self.state[at]];
                    let mut energy = [self.energy[at]];
                    run(
                        [one],
                        &self.stages,
                        &mut state,
                        &mut energy,
                        &self.ends,
                        [self.weights[at]],
                        sums,
                    );
                    self.state[at] = state[0];
                    self.energy[at] = energy[0];
                }
                _ => {}
            }
        }
        self.frames += len;
    }

    /// Integrated loudness and loudness range of everything pushed.
    pub fn finish(&self) -> Loudness {
        // Whole 100 ms segments only: a last partial one is not a segment.
        let count = ((self.frames as f64) / (self.rate / 10.0)).floor() as usize;
        let sums = &self.sums[..count.min(self.sums.len())];
        let count = sums.len();
        let lengths: Vec<f64> = (0..count)
            .map(|k| (self.edge(k + 1) - self.edge(k)) as f64)
            .collect();
        // Mean square over `n` segments from `start`.
        let block = |start: usize, n: usize| {
            let energy: f64 = sums[start..start + n].iter().sum();
            let samples: f64 = lengths[start..start + n].iter().sum();
            energy / samples
        };
        let gated: Vec<f64> = if count >= 4 {
            (0..=count - 4).map(|start| block(start, 4)).collect()
        } else {
            Vec::new()
        };
        let integrated = gate(&gated, -10.0).map(|(_, energy)| lufs(energy));
        let short: Vec<f64> = if count >= 30 {
            (0..=count - 30)
                .step_by(10)
                .map(|start| block(start, 30))
                .collect()
        } else {
            Vec::new()
        };
        let range = match gate(&short, -20.0) {
            Some((mut kept, _)) if kept.len() > 1 => {
                kept.sort_by(f64::total_cmp);
                let at = |q: f64| kept[((kept.len() - 1) as f64 * q + 0.5) as usize];
                lufs(at(0.95)) - lufs(at(0.10))
            }
            _ => 0.0,
        };
        Loudness { integrated, range }
    }
}

/// Measure integrated loudness and loudness range of audio in memory, a second at a time.
pub fn measure(audio: &Audio, monitor: &dyn Monitor) -> Result<Loudness> {
    let mut meter = LoudnessMeter::new(audio.channels.len(), audio.sample_rate);
    let frames = audio.frames();
    let step = audio.sample_rate as usize;
    let mut start = 0;
    while start < frames {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let end = (start + step).min(frames);
        let slices: Vec<&[f32]> = audio.channels.iter().map(|c| &c[start..end]).collect();
        meter.push(&slices);
        monitor.progress(end as f64, frames as f64, "measuring loudness");
        start = end;
    }
    Ok(meter.finish())
}

/// Blocks above −70 LUFS and `relative` LU below their mean: the kept energies and their mean.
fn gate(blocks: &[f64], relative: f64) -> Option<(Vec<f64>, f64)> {
    let absolute: Vec<f64> = blocks
        .iter()
        .copied()
        .filter(|&e| lufs(e) >= -70.0)
        .collect();
    if absolute.is_empty() {
        return None;
    }
    let threshold = lufs(absolute.iter().sum::<f64>() / absolute.len() as f64) + relative;
    let kept: Vec<f64> = absolute
        .into_iter()
        .filter(|&e| lufs(e) >= threshold)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mean = kept.iter().sum::<f64>() / kept.len() as f64;
    Some((kept, mean))
}
