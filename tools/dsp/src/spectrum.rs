//! Spectra: the long-term average spectrum and its peaks, and spectrogram images.

use std::io::BufWriter;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::stft::{Spectrogram, Stft, Window};
use crate::{Audio, DspError, Monitor, Result};

/// Spectrogram images are at most this many columns wide (frames are pooled to fit).
pub const MAX_WIDTH: usize = 2048;
/// Spectrogram images are at most this many rows high (bins are pooled to fit).
pub const MAX_HEIGHT: usize = 1024;
/// The floor of spectrogram images and peak levels, dB.
pub const FLOOR_DB: f64 = -120.0;

/// The average magnitude spectrum of `signal`, scaled so a full-scale sine's bin reads 1.0.
pub fn average_spectrum(
    signal: &[f32],
    n_fft: usize,
    window: Window,
    monitor: &dyn Monitor,
) -> Result<Vec<f64>> {
    let stft = Stft::new(n_fft, n_fft / 2, window)?;
    average(&stft, &stft.forward(signal), signal.len(), monitor)
}

/// The average of `spectrogram` (of a `len`-sample signal) over its frames.
pub(crate) fn average(
    stft: &Stft,
    spectrogram: &Spectrogram,
    len: usize,
    monitor: &dyn Monitor,
) -> Result<Vec<f64>> {
    let gain = stft.window_gain();
    // Frames that hang over either end (half zero padding) read low: leave them out when any
    // frame lies wholly inside the signal.
    let (half, hop) = (stft.n_fft() / 2, stft.hop());
    let first = half.div_ceil(hop);
    let last = len.saturating_sub(half) / hop;
    let frames = if len >= stft.n_fft() && first <= last {
        first..last + 1
    } else {
        0..spectrogram.frames
    };
    let count = frames.len();
    let mut sum = vec![0.0f64; spectrogram.bins];
    for frame in frames {
        if frame % 256 == 0 && monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        for (slot, value) in sum.iter_mut().zip(spectrogram.frame(frame)) {
            *slot += magnitude(value);
        }
    }
    let scale = 2.0 / (gain * count.max(1) as f64);
    Ok(sum.into_iter().map(|s| s * scale).collect())
}

/// A bin's magnitude for the long-term average: `sqrt(re² + im²)` in f64 (no overflow to
/// guard against at these levels, and a fifth of `hypot`'s time).
pub(crate) fn magnitude(value: &realfft::num_complex::Complex32) -> f64 {
    let (re, im) = (f64::from(value.re), f64::from(value.im));
    (re * re + im * im).sqrt()
}

/// The fractional bin of the peak at `bin`, by a parabola through the dB values around it.
pub fn interpolate(spectrum: &[f64], bin: usize) -> f64 {
    vertex(spectrum, bin).0
}

/// The vertex of the parabola through the dB values around `bin`: (fractional bin, dB).
fn vertex(spectrum: &[f64], bin: usize) -> (f64, f64) {
    let at = |i: usize| 20.0 * spectrum[i].max(1e-12).log10();
    if bin == 0 || bin + 1 >= spectrum.len() {
        return (bin as f64, at(bin));
    }
    let (a, b, c) = (at(bin - 1), at(bin), at(bin + 1));
    let denominator = a - 2.0 * b + c;
    if denominator.abs() < 1e-12 {
        return (bin as f64, b);
    }
    let offset = 0.5 * (a - c) / denominator;
    (bin as f64 + offset, b - 0.25 * (a - c) * offset)
}

/// One spectral peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Peak {
    /// Frequency, Hz (parabolic interpolation between bins).
    pub hz: f64,
    /// Level there, dB, interpolated like the frequency (a full-scale sine reads 0).
    pub db: f64,
}

/// What `dsp_spectrum` computes.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrumResult {
    /// The audio's sample rate, Hz.
    pub sample_rate: u32,
    /// Bin spacing, Hz.
    pub resolution_hz: f64,
    /// STFT frames averaged.
    pub frames: usize,
    /// Strongest peaks, loudest first.
    pub peaks: Vec<Peak>,
    /// The spectrogram image as PNG, when asked for: `(png, width, height)`.
    pub image: Option<(Vec<u8>, usize, usize)>,
}

/// Peaks of the average spectrum of the mono mix, and optionally a spectrogram PNG.
pub fn spectrum(
    audio: &Audio,
    n_fft: usize,
    hop: usize,
    window: Window,
    max_peaks: usize,
    image: bool,
    monitor: &dyn Monitor,
) -> Result<SpectrumResult> {
    let stft = Stft::new(n_fft, hop, window)?;
    let mono = audio.mono();
    // One STFT serves both the average and the picture.
    let spectrogram = stft.forward(&mono);
    let average = average(&stft, &spectrogram, mono.len(), monitor)?;
    let resolution_hz = f64::from(audio.sample_rate) / n_fft as f64;
    let peaks = peaks(&average, resolution_hz, max_peaks);
    let image = if image {
        monitor.progress(0.5, 1.0, "drawing the spectrogram");
        Some(render(&stft, &spectrogram)?)
    } else {
        None
    };
    Ok(SpectrumResult {
        sample_rate: audio.sample_rate,
        resolution_hz,
        frames: spectrogram.frames,
        peaks,
        image,
    })
}

/// The `max_peaks` strongest local maxima of `average` above the floor, loudest first.
pub(crate) fn peaks(average: &[f64], resolution_hz: f64, max_peaks: usize) -> Vec<Peak> {
    let floor = 10f64.powf(FLOOR_DB / 20.0);
    let mut candidates: Vec<usize> = (1..average.len().saturating_sub(1))
        .filter(|&bin| {
            average[bin] > floor
                && average[bin] >= average[bin - 1]
                && average[bin] > average[bin + 1]
        })
        .collect();
    candidates.sort_by(|&a, &b| average[b].total_cmp(&average[a]));
    candidates
        .into_iter()
        .take(max_peaks)
        .map(|bin| {
            let (at, db) = vertex(average, bin);
            Peak {
                hz: at * resolution_hz,
                db,
            }
        })
        .collect()
}

/// Draw a spectrogram: time left to right, frequency bottom to top, −120..0 dB.
fn render(stft: &Stft, spectrogram: &Spectrogram) -> Result<(Vec<u8>, usize, usize)> {
    let mut pool = Pool::new(spectrogram.frames, spectrogram.bins);
    for frame in 0..spectrogram.frames {
        pool.add(frame, spectrogram.frame(frame));
    }
    pool.draw(stft.window_gain())
}

/// A spectrogram picture being pooled: each pixel the strongest bin of the frames and bins
/// it covers (at most [`MAX_WIDTH`] × [`MAX_HEIGHT`], so frames can arrive one at a time and
/// be dropped).
pub(crate) struct Pool {
    frames: usize,
    bins: usize,
    width: usize,
    height: usize,
    strongest: Vec<f64>,
}

impl Pool {
    /// A picture of `frames` frames of `bins` bins.
    pub(crate) fn new(frames: usize, bins: usize) -> Pool {
        let (width, height) = (frames.clamp(1, MAX_WIDTH), bins.clamp(1, MAX_HEIGHT));
        Pool {
            frames,
            bins,
            width,
            height,
            strongest: vec![0.0; width * height],
        }
    }

    /// Pool frame `index` into its column (the width is at most the frame count, so each
    /// column holds at least one frame and each frame lies in exactly one column).
    pub(crate) fn add(&mut self, index: usize, frame: &[realfft::num_complex::Complex32]) {
        let (frames, bins, width) = (self.frames.max(1), self.bins.max(1), self.width);
        // The last column whose first frame, ⌊x · frames / width⌋, is at most `index`.
        let x = (((index + 1) * width).div_ceil(frames))
            .saturating_sub(1)
            .min(width - 1);
        for y in 0..self.height {
            let low = y * bins / self.height;
            let high = ((y + 1) * bins / self.height).max(low + 1);
            let cell = &mut self.strongest[y * width + x];
            for value in &frame[low.min(bins - 1)..high.min(bins)] {
                *cell = cell.max(f64::from(value.norm()));
            }
        }
    }

    /// The picture as PNG: `(png, width, height)`.
    pub(crate) fn draw(&self, gain: f64) -> Result<(Vec<u8>, usize, usize)> {
        let (width, height) = (self.width, self.height);
        let mut pixels = vec![0u8; width * height * 3];
        for x in 0..width {
            for y in 0..height {
                let strongest = self.strongest[y * width + x];
                let level = 20.0 * (2.0 * strongest / gain).max(1e-12).log10();
                let t = ((level - FLOOR_DB) / -FLOOR_DB).clamp(0.0, 1.0);
                let row = height - 1 - y;
                let at = (row * width + x) * 3;
                pixels[at..at + 3].copy_from_slice(&colour(t));
            }
        }
        let mut png = Vec::new();
        {
            let mut encoder = png::Encoder::new(
                BufWriter::new(&mut png),
                u32::try_from(width).unwrap_or(u32::MAX),
                u32::try_from(height).unwrap_or(u32::MAX),
            );
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let encode = |error: png::EncodingError| DspError::Io {
                action: "encode",
                path: "spectrogram.png".into(),
                source: std::io::Error::other(error.to_string()),
            };
            let mut writer = encoder.write_header().map_err(encode)?;
            writer.write_image_data(&pixels).map_err(encode)?;
            writer.finish().map_err(encode)?;
        }
        Ok((png, width, height))
    }
}

/// A black → purple → orange → yellow ramp (perceptually ordered, readable in grey).
fn colour(t: f64) -> [u8; 3] {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [87.0, 16.0, 110.0]),
        (0.5, [188.0, 55.0, 84.0]),
        (0.75, [249.0, 142.0, 9.0]),
        (1.0, [252.0, 255.0, 164.0]),
    ];
    let mut out = STOPS[STOPS.len() - 1].1;
    for pair in STOPS.windows(2) {
        let ((t0, c0), (t1, c1)) = (pair[0], pair[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            out = [0, 1, 2].map(|i| c0[i] + (c1[i] - c0[i]) * f);
            break;
        }
    }
    out.map(|v| v.round().clamp(0.0, 255.0) as u8)
}
