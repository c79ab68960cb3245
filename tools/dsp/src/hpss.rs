//! Harmonic–percussive source separation by median filtering (Fitzgerald 2010), with the
//! soft masks librosa uses: on the magnitude STFT, a median along time keeps what is steady
//! (harmonic), a median along frequency keeps what is broadband and short (percussive); each
//! bin is shared between the two stems by a Wiener-like mask, so with a margin of 1 the stems
//! add back up to the input. No maintained Rust crate does this.

use realfft::num_complex::Complex32;

use crate::stft::{Spectrogram, Stft, Window};
use crate::{DspError, Monitor, Result};

/// Largest median kernel accepted (bins or frames).
pub const MAX_KERNEL: usize = 255;

/// How to separate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HpssParams {
    /// Median length along time, frames (odd).
    pub kernel_harmonic: usize,
    /// Median length along frequency, bins (odd).
    pub kernel_percussive: usize,
    /// Mask margin ≥ 1; above 1 the stems get stricter and a residual is left out of both.
    pub margin: f64,
    /// STFT size.
    pub n_fft: usize,
    /// STFT hop.
    pub hop: usize,
}

impl Default for HpssParams {
    fn default() -> Self {
        HpssParams {
            kernel_harmonic: 31,
            kernel_percussive: 31,
            margin: 1.0,
            n_fft: 2048,
            hop: 512,
        }
    }
}

impl HpssParams {
    /// Check the parameters, naming the bad one.
    pub fn check(&self) -> Result<()> {
        for (name, kernel) in [
            ("kernel_harmonic", self.kernel_harmonic),
            ("kernel_percussive", self.kernel_percussive),
        ] {
            if kernel.is_multiple_of(2) || kernel > MAX_KERNEL {
                return Err(DspError::parameter(
                    name,
                    format!("{kernel} must be odd, from 1 to {MAX_KERNEL}"),
                ));
            }
        }
        if !(self.margin.is_finite() && (1.0..=100.0).contains(&self.margin)) {
            return Err(DspError::parameter(
                "margin",
                format!("{} must be from 1 to 100", self.margin),
            ));
        }
        Ok(())
    }
}

/// Separate `signal` into harmonic and percussive signals of the same length.
pub fn hpss(
    signal: &[f32],
    params: &HpssParams,
    monitor: &dyn Monitor,
) -> Result<(Vec<f32>, Vec<f32>)> {
    params.check()?;
    let stft = Stft::new(params.n_fft, params.hop, Window::Hann)?;
    let spectrum = stft.forward(signal);
    let (bins, frames) = (spectrum.bins, spectrum.frames);
    let magnitude: Vec<f32> = spectrum.data.iter().map(|c| c.norm()).collect();

    // Percussive: median across frequency, within each frame (rows of the frame-major data).
    let mut percussive = vec![0.0f32; magnitude.len()];
    let mut window = Median::new(params.kernel_percussive);
    for (row, out) in magnitude
        .chunks_exact(bins)
        .zip(percussive.chunks_exact_mut(bins))
    {
        window.filter(row, out);
    }
    if monitor.cancelled() {
        return Err(DspError::Cancelled);
    }
    monitor.progress(1.0, 3.0, "percussive median done");

    // Harmonic: median across time, within each bin. Columns are copied out 16 bins at a
    // time, so each frame's row is read one cache line at a time rather than one value.
    const TILE: usize = 16;
    let mut harmonic = vec![0.0f32; magnitude.len()];
    let mut window = Median::new(params.kernel_harmonic);
    let (mut columns, mut filtered) = (vec![0.0f32; TILE * frames], vec![0.0f32; TILE * frames]);
    for first in (0..bins).step_by(TILE) {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let width = TILE.min(bins - first);
        for frame in 0..frames {
            let row = &magnitude[frame * bins + first..frame * bins + first + width];
            for (k, &value) in row.iter().enumerate() {
                columns[k * frames + frame] = value;
            }
        }
        for k in 0..width {
            let span = k * frames..(k + 1) * frames;
            window.filter(&columns[span.clone()], &mut filtered[span]);
        }
        for frame in 0..frames {
            let row = &mut harmonic[frame * bins + first..frame * bins + first + width];
            for (k, slot) in row.iter_mut().enumerate() {
                *slot = filtered[k * frames + frame];
            }
        }
    }
    monitor.progress(2.0, 3.0, "harmonic median done");

    let margin = params.margin as f32;
    let split_zeros = params.margin == 1.0;
    let mut harmonic_part = Spectrogram {
        bins,
        frames,
        data: vec![Complex32::new(0.0, 0.0); spectrum.data.len()],
    };
    let mut percussive_part = harmonic_part.clone();
    for (index, &value) in spectrum.data.iter().enumerate() {
        let (h, p) = (harmonic[index], percussive[index]);
        harmonic_part.data[index] = value * softmask(h, p * margin, split_zeros);
        percussive_part.data[index] = value * softmask(p, h * margin, split_zeros);
    }
    let harmonic = stft.inverse(&harmonic_part, signal.len());
    let percussive = stft.inverse(&percussive_part, signal.len());
    monitor.progress(3.0, 3.0, "stems resynthesised");
    Ok((harmonic, percussive))
}

/// librosa's `util.softmask` with power 2: x² / (x² + reference²), scaled by the larger of
/// the two to keep the squares in range; where both are (nearly) zero, half or nothing.
fn softmask(x: f32, reference: f32, split_zeros: bool) -> f32 {
    let z = x.max(reference);
    if z < f32::MIN_POSITIVE {
        return if split_zeros { 0.5 } else { 0.0 };
    }
    let (a, b) = ((x / z).powi(2), (reference / z).powi(2));
    a / (a + b)
}

/// A running median over an odd window, edges extended by reflection as
/// `scipy.ndimage.median_filter(mode="reflect")` does (`d c b a | a b c d | d c b a`).
/// Magnitudes are finite and non-negative, so their IEEE bit patterns sort as integers do;
/// the window is kept sorted as integers and each step moves one value in one shift.
struct Median {
    size: usize,
    sorted: Vec<u32>,
    padded: Vec<u32>,
}

impl Median {
    fn new(size: usize) -> Median {
        Median {
            size,
            sorted: Vec::with_capacity(size),
            padded: Vec::new(),
        }
    }

    fn filter(&mut self, input: &[f32], output: &mut [f32]) {
        let n = input.len();
        let half = self.size / 2;
        if n == 0 {
            return;
        }
        self.padded.clear();
        let edge = |i: usize| input[reflect(i as isize - half as isize, n)].to_bits();
        self.padded.extend((0..half).map(edge));
        self.padded.extend(input.iter().map(|v| v.to_bits()));
        self.padded.extend((n + half..n + 2 * half).map(edge));
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.padded[..self.size]);
        self.sorted.sort_unstable();
        let sorted = &mut self.sorted;
        for (i, out) in output.iter_mut().enumerate() {
            *out = f32::from_bits(sorted[half]);
            let Some(&entering) = self.padded.get(i + self.size) else {
                break;
            };
            let leaving = self.padded[i];
            let from = sorted.partition_point(|&v| v < leaving);
            let to = sorted.partition_point(|&v| v < entering);
            // Shifts are a few places long: a plain loop beats a call to memmove.
            if to > from {
                for k in from..to - 1 {
                    sorted[k] = sorted[k + 1];
                }
                sorted[to - 1] = entering;
            } else {
                for k in (to + 1..=from).rev() {
                    sorted[k] = sorted[k - 1];
                }
                sorted[to] = entering;
            }
        }
    }
}

/// Index `i` of a sequence of `n` extended by half-sample reflection.
fn reflect(mut i: isize, n: usize) -> usize {
    let n = n as isize;
    loop {
        if i < 0 {
            i = -i - 1;
        } else if i >= n {
            i = 2 * n - i - 1;
        } else {
            return i as usize;
        }
    }
}
