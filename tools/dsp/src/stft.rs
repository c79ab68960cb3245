//! Short-time Fourier transform, framed as librosa frames it (`center=True`, zero padding of
//! half a window each side, periodic windows), so Baton's spectra and stems line up with the
//! reference implementation sample for sample.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DspError, Result};

/// Smallest FFT size accepted.
pub const MIN_FFT: usize = 64;
/// Largest FFT size accepted.
pub const MAX_FFT: usize = 65_536;

/// Analysis windows (periodic, as `scipy.signal.get_window(…, fftbins=True)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Hann: good general-purpose leakage (−31 dB side lobes).
    #[default]
    Hann,
    /// Hamming: lower first side lobe (−43 dB), slower fall-off.
    Hamming,
    /// Blackman: low leakage (−58 dB), wider main lobe.
    Blackman,
    /// Rectangular: no window; best resolution, worst leakage.
    Rect,
}

impl Window {
    /// The window's `n` coefficients.
    pub fn coefficients(self, n: usize) -> Vec<f32> {
        let step = std::f64::consts::TAU / n as f64;
        (0..n)
            .map(|i| {
                let x = step * i as f64;
                let w = match self {
                    Window::Hann => 0.5 - 0.5 * x.cos(),
                    Window::Hamming => 0.54 - 0.46 * x.cos(),
                    Window::Blackman => 0.42 - 0.5 * x.cos() + 0.08 * (2.0 * x).cos(),
                    Window::Rect => 1.0,
                };
                w as f32
            })
            .collect()
    }
}

/// A complex spectrogram: `frames` rows of `bins` values, frame-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    /// Frequency bins per frame (`n_fft / 2 + 1`).
    pub bins: usize,
    /// Frames.
    pub frames: usize,
    /// `frames × bins` values.
    pub data: Vec<Complex32>,
}

impl Spectrogram {
    /// One frame's bins.
    pub fn frame(&self, index: usize) -> &[Complex32] {
        &self.data[index * self.bins..(index + 1) * self.bins]
    }
}

/// A planned STFT of one size, hop and window; plan once, run on many signals.
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f32>,
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft")
            .field("n_fft", &self.n_fft)
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}

/// The most frames that may overlap one sample (`hop ≥ n_fft / MAX_OVERLAP`).
pub const MAX_OVERLAP: usize = 16;

/// Refuse work estimated at `need` bytes when it is over `budget`, naming the parameter to
/// change — before any of it is allocated.
pub fn within_budget(need: u64, budget: u64, parameter: &'static str, what: &str) -> Result<()> {
    if need <= budget {
        return Ok(());
    }
    Err(DspError::parameter(
        parameter,
        format!(
            "{what} needs about {}; a call may use {} ([limits] call_memory_mb)",
            baton_kit::shown_bytes(need),
            baton_kit::shown_bytes(budget)
        ),
    ))
}

impl Stft {
    /// Plan an STFT. `n_fft` must be a power of two in 64..=65536; `hop` from `n_fft / 16`
    /// (frames overlapping more than 16-fold only multiply the work) to `n_fft`.
    pub fn new(n_fft: usize, hop: usize, window: Window) -> Result<Stft> {
        if !n_fft.is_power_of_two() || !(MIN_FFT..=MAX_FFT).contains(&n_fft) {
            return Err(DspError::parameter(
                "fft_size",
                format!("{n_fft} is not a power of two from {MIN_FFT} to {MAX_FFT}"),
            ));
        }
        let min_hop = (n_fft / MAX_OVERLAP).max(1);
        if hop < min_hop || hop > n_fft {
            return Err(DspError::parameter(
                "hop",
                format!(
                    "{hop} must be from fft_size/{MAX_OVERLAP} ({min_hop}) to the FFT size ({n_fft})"
                ),
            ));
        }
        let mut planner = RealFftPlanner::<f32>::new();
        Ok(Stft {
            n_fft,
            hop,
            window: window.coefficients(n_fft),
            forward: planner.plan_fft_forward(n_fft),
            inverse: planner.plan_fft_inverse(n_fft),
        })
    }

    /// FFT size.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// Hop between frames.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Sum of the window's coefficients: a sine of amplitude A peaks at A × this / 2.
    pub fn window_gain(&self) -> f64 {
        self.window.iter().map(|&w| f64::from(w)).sum()
    }

    /// Frames a signal of `len` samples gives (`1 + len / hop`, centred).
    pub fn frames_for(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// Cells (frames × bins) of the spectrogram of `len` samples: what an estimate of a
    /// call's memory multiplies.
    pub fn cells_for(&self, len: usize) -> u64 {
        self.frames_for(len) as u64 * (self.n_fft / 2 + 1) as u64
    }

    /// The spectrum of one frame: `samples` (`n_fft` of them) windowed into `input`, then
    /// transformed into `out` (`n_fft / 2 + 1` bins). The frames of [`Stft::forward`] are
    /// made the same way, so a streamed spectrum equals the in-memory one.
    pub(crate) fn frame_into(
        &self,
        samples: &[f32],
        input: &mut [f32],
        out: &mut [Complex32],
        scratch: &mut [Complex32],
    ) {
        for ((slot, &sample), &w) in input.iter_mut().zip(samples).zip(&self.window) {
            *slot = sample * w;
        }
        // Sizes come from the same plan, so processing cannot fail.
        let _ = self.forward.process_with_scratch(input, out, scratch);
    }

    /// Buffers for [`Stft::frame_into`]: input, output, scratch.
    pub(crate) fn frame_buffers(&self) -> (Vec<f32>, Vec<Complex32>, Vec<Complex32>) {
        (
            self.forward.make_input_vec(),
            self.forward.make_output_vec(),
            self.forward.make_scratch_vec(),
        )
    }

    /// The centred STFT of `signal`.
    pub fn forward(&self, signal: &[f32]) -> Spectrogram {
        let bins = self.n_fft / 2 + 1;
        let frames = self.frames_for(signal.len());
        let half = self.n_fft / 2;
        let mut data = vec![Complex32::new(0.0, 0.0); frames * bins];
        let mut frame = self.forward.make_input_vec();
        let mut scratch = self.forward.make_scratch_vec();
        for (index, out) in data.chunks_exact_mut(bins).enumerate() {
            // Frame `index` covers padded samples index·hop .. +n_fft, i.e. signal samples
            // starting half a window earlier; outside the signal is zero padding.
            let start = (index * self.hop) as isize - half as isize;
            for (k, slot) in frame.iter_mut().enumerate() {
                let at = start + k as isize;
                *slot = if at >= 0 && (at as usize) < signal.len() {
                    signal[at as usize] * self.window[k]
                } else {
                    0.0
                };
            }
            // Sizes come from the same plan, so processing cannot fail.
            let _ = self
                .forward
                .process_with_scratch(&mut frame, out, &mut scratch);
        }
        Spectrogram { bins, frames, data }
    }

    /// The signal of `length` samples whose centred STFT is `spectrogram` (windowed
    /// overlap-add, divided by the summed squared window where it is not tiny).
    pub fn inverse(&self, spectrogram: &Spectrogram, length: usize) -> Vec<f32> {
        let half = self.n_fft / 2;
        let padded = length + 2 * half;
        let mut out = vec![0.0f32; padded];
        let mut norm = vec![0.0f32; padded];
        let mut buffer = self.inverse.make_input_vec();
        let mut frame = self.inverse.make_output_vec();
        let mut scratch = self.inverse.make_scratch_vec();
        let scale = 1.0 / self.n_fft as f32;
        for index in 0..spectrogram.frames {
            let start = index * self.hop;
            if start >= padded {
                break;
            }
            buffer.copy_from_slice(spectrogram.frame(index));
            // A real signal's spectrum has real DC and Nyquist bins; the inverse FFT refuses
            // anything else, so drop what masking may have left there.
            buffer[0].im = 0.0;
            if let Some(last) = buffer.last_mut() {
                last.im = 0.0;
            }
            let _ = self
                .inverse
                .process_with_scratch(&mut buffer, &mut frame, &mut scratch);
            for (k, (&value, &w)) in frame.iter().zip(&self.window).enumerate() {
                let Some(slot) = out.get_mut(start + k) else {
                    break;
                };
                *slot += value * scale * w;
                norm[start + k] += w * w;
            }
        }
        let tiny = f32::MIN_POSITIVE;
        for (value, &weight) in out.iter_mut().zip(&norm) {
            if weight > tiny {
                *value /= weight;
            }
        }
        out.drain(..half);
        out.truncate(length);
        out
    }
}
