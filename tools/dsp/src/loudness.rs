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

/// BS.1770 channel weights for the usual layouts (L R C LFE Ls Rs; 4 channels are L R Ls Rs).
fn weights(channels: usize) -> Vec<f64> {
    (0..channels)
        .map(|index| match (channels, index) {
            (4, 2 | 3) => 1.41,
            (4, _) => 1.0,
            (_, 0..=2) => 1.0,
            (_, 4 | 5) => 1.41,
            _ => 0.0,
        })
        .collect()
}

/// Sum of squared K-weighted samples of `N` channels, filtered together so their
/// recursions overlap, over each segment whose bounds `edges` gives; added into `sums`, each
/// channel scaled by its weight.
// Indexing every channel at sample `i` in lockstep is the point: iterators would walk the
// channels one after another and serialise the recursions.
#[allow(clippy::needless_range_loop)]
fn segment_energy<const N: usize>(
    channels: [&[f32]; N],
    stages: &[Stage; 2],
    edges: &[usize],
    weights: [f64; N],
    sums: &mut [f64],
) {
    let [s0, s1] = stages;
    // Per channel: the two stages' [z1, z2], held in locals (registers), not indexed memory.
    let mut state = [[0.0f64; 4]; N];
    for (segment, bounds) in edges.windows(2).enumerate() {
        let mut energy = [0.0f64; N];
        for i in bounds[0]..bounds[1] {
            for c in 0..N {
                let x = f64::from(channels[c][i]);
                let [z1, z2, w1, w2] = state[c];
                let y = s0.b[0] * x + z1;
                let z1 = s0.b[1] * x - s0.a[0] * y + z2;
                let z2 = s0.b[2] * x - s0.a[1] * y;
                let out = s1.b[0] * y + w1;
                let w1 = s1.b[1] * y - s1.a[0] * out + w2;
                let w2 = s1.b[2] * y - s1.a[1] * out;
                state[c] = [z1, z2, w1, w2];
                energy[c] += out * out;
            }
        }
        sums[segment] += (0..N).map(|c| energy[c] * weights[c]).sum::<f64>();
    }
}

fn lufs(energy: f64) -> f64 {
    -0.691 + 10.0 * energy.log10()
}

/// Measure integrated loudness and loudness range.
pub fn measure(audio: &Audio, monitor: &dyn Monitor) -> Result<Loudness> {
    let rate = f64::from(audio.sample_rate);
    let frames = audio.frames();
    let stages = k_weighting(rate);
    let weights = weights(audio.channels.len());
    // 100 ms segments; their edges rounded so none drifts at rates like 11025 Hz.
    let count = ((frames as f64) / (rate / 10.0)).floor() as usize;
    let edges: Vec<usize> = (0..=count)
        .map(|k| ((k as f64) * rate / 10.0).round() as usize)
        .collect();
    let mut sums = vec![0.0f64; count];
    let channels: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
    for (pair, chunk) in channels.chunks(2).enumerate() {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        match *chunk {
            [left, right] => segment_energy(
                [left, right],
                &stages,
                &edges,
                [weights[pair * 2], weights[pair * 2 + 1]],
                &mut sums,
            ),
            [one] => segment_energy([one], &stages, &edges, [weights[pair * 2]], &mut sums),
            _ => {}
        }
        monitor.progress(
            (pair + 1) as f64,
            channels.len().div_ceil(2) as f64,
            "measuring loudness",
        );
    }
    let lengths: Vec<f64> = edges.windows(2).map(|e| (e[1] - e[0]) as f64).collect();
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
    Ok(Loudness { integrated, range })
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
