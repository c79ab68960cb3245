//! Measuring a file as an engineer would: levels, loudness per ITU-R BS.1770-4 / EBU R128
//! (`loudness.rs`), true peak (BS.1770-4 Annex 2 as libebur128 computes it), DC, clipping and where
//! the spectrum's energy sits.

use std::path::Path;

use realfft::num_complex::Complex32;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::loudness::{self, LoudnessMeter};
use crate::spectrum::{average_spectrum, magnitude};
use crate::stft::{Stft, Window};
use crate::stream::{AudioStream, CHUNK_FRAMES};
use crate::truepeak::Bs1770Peak;
use crate::{Audio, DspError, Monitor, Result};

/// A sample at or beyond this magnitude counts as clipped: 16-bit full scale, 32767/32768.
pub const CLIP_LEVEL: f32 = 32_767.0 / 32_768.0;

/// What `dsp_analyze` reports. Levels that do not exist (the peak of digital silence, the
/// loudness of a file entirely below the −70 LUFS gate) are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Analysis {
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Samples per channel.
    pub frames: usize,
    /// Length in seconds.
    pub duration_s: f64,
    /// Highest sample magnitude, dB relative to full scale.
    pub peak_dbfs: Option<f64>,
    /// Highest inter-sample peak (4× oversampled below 96 kHz, BS.1770-4 Annex 2), dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// RMS of all samples of all channels, dBFS (a full-scale sine is −3.01).
    pub rms_dbfs: Option<f64>,
    /// Integrated loudness, LUFS (BS.1770-4 gated).
    pub integrated_lufs: Option<f64>,
    /// Loudness range, LU (EBU Tech 3342); 0 when the file is too short to have one.
    pub loudness_range_lu: f64,
    /// Mean sample value of the channel furthest from zero (signed, full scale = 1).
    pub dc_offset: f64,
    /// Samples at or beyond 16-bit full scale (|x| ≥ 32767/32768), all channels.
    pub clipped_samples: u64,
    /// Centre of mass of the long-term magnitude spectrum (mono mix), Hz.
    pub spectral_centroid_hz: Option<f64>,
    /// Frequency of the long-term spectrum's strongest component, Hz.
    pub dominant_hz: Option<f64>,
}

fn db(linear: f64) -> Option<f64> {
    (linear > 0.0).then(|| 20.0 * linear.log10())
}

/// Integrated loudness alone (BS.1770-4), LUFS; `None` when everything is below the gate.
pub fn integrated_loudness(audio: &Audio) -> Result<Option<f64>> {
    Ok(loudness::measure(audio, &crate::Unwatched)?.integrated)
}

/// Analyse decoded audio (pushed through the same [`Analyzer`] a file streams through).
pub fn analyze(audio: &Audio, monitor: &dyn Monitor) -> Result<Analysis> {
    let mut analyzer = Analyzer::new(audio.channels.len(), audio.sample_rate)?;
    let frames = audio.frames();
    let step = audio.sample_rate as usize;
    let mut start = 0;
    while start < frames {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let end = (start + step).min(frames);
        let slices: Vec<&[f32]> = audio.channels.iter().map(|c| &c[start..end]).collect();
        analyzer.push(&slices)?;
        monitor.progress(end as f64, frames as f64, "measuring");
        start = end;
    }
    analyzer.finish(monitor)
}

/// Analyse an audio file a chunk at a time: memory stays at a few megabytes whatever the
/// file's length.
pub fn analyze_file(path: &Path, monitor: &dyn Monitor) -> Result<Analysis> {
    let mut stream = AudioStream::open(path)?;
    let mut analyzer = Analyzer::new(stream.channels(), stream.sample_rate())?;
    let total = stream.declared_frames().map(|f| f as f64);
    let mut chunk = Vec::new();
    loop {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        if stream.read(&mut chunk, CHUNK_FRAMES)? == 0 {
            break;
        }
        let slices: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        analyzer.push(&slices)?;
        let done = stream.position() as f64;
        monitor.progress(done, total.unwrap_or(0.0).max(done), "measuring");
    }
    analyzer.finish(monitor)
}

/// Everything `dsp_analyze` measures, fed a chunk at a time: the true-peak meter, the
/// loudness meter, running sums, and the long-term spectrum of the mono mix from the frames
/// that lie wholly inside the signal (a file shorter than one frame keeps its few samples and
/// is measured as before, padded).
pub struct Analyzer {
    sample_rate: u32,
    channels: usize,
    frames: usize,
    true_peak: Bs1770Peak,
    loudness: LoudnessMeter,
    peak: f32,
    squares: f64,
    clipped: u64,
    sums: Vec<f64>,
    stft: Stft,
    /// Mono samples not yet consumed by a whole frame (from `offset`).
    mono: Vec<f32>,
    offset: usize,
    spectrum: Vec<f64>,
    spectrum_frames: usize,
    buffers: (Vec<f32>, Vec<Complex32>, Vec<Complex32>),
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

/// FFT size of the long-term spectrum.
const SPECTRUM_FFT: usize = 4096;

impl Analyzer {
    /// An analyzer for `channels` channels at `sample_rate` Hz.
    pub fn new(channels: usize, sample_rate: u32) -> Result<Analyzer> {
        let true_peak = Bs1770Peak::new(channels, sample_rate);
        let stft = Stft::new(SPECTRUM_FFT, SPECTRUM_FFT / 2, Window::Hann)?;
        let buffers = stft.frame_buffers();
        Ok(Analyzer {
            sample_rate,
            channels,
            frames: 0,
            true_peak,
            loudness: LoudnessMeter::new(channels, sample_rate),
            peak: 0.0,
            squares: 0.0,
            clipped: 0,
            sums: vec![0.0; channels],
            spectrum: vec![0.0; SPECTRUM_FFT / 2 + 1],
            spectrum_frames: 0,
            mono: Vec::new(),
            offset: 0,
            stft,
            buffers,
        })
    }

    /// Feed the next frames, one slice per channel.
    pub fn push(&mut self, channels: &[&[f32]]) -> Result<()> {
        let len = channels.first().map_or(0, |c| c.len());
        self.true_peak.push(channels);
        self.loudness.push(channels);
        // Locals, not fields, in the loop: the compiler keeps them in registers.
        let (mut peak, mut squares, mut clipped) = (self.peak, self.squares, self.clipped);
        for (channel, total) in channels.iter().zip(&mut self.sums) {
            let mut sum = *total;
            for &sample in *channel {
                let magnitude = sample.abs();
                if magnitude > peak {
                    peak = magnitude;
                }
                squares += f64::from(sample) * f64::from(sample);
                sum += f64::from(sample);
                clipped += u64::from(magnitude >= CLIP_LEVEL);
            }
            *total = sum;
        }
        (self.peak, self.squares, self.clipped) = (peak, squares, clipped);
        // The mono mix as `Audio::mono` makes it, then every whole frame it completes.
        crate::audio::mix_into(&mut self.mono, channels);
        let (input, output, scratch) = &mut self.buffers;
        while self.mono.len() - self.offset >= SPECTRUM_FFT {
            let window = &self.mono[self.offset..self.offset + SPECTRUM_FFT];
            self.stft.frame_into(window, input, output, scratch);
            for (slot, value) in self.spectrum.iter_mut().zip(output.iter()) {
                *slot += magnitude(value);
            }
            self.spectrum_frames += 1;
            self.offset += SPECTRUM_FFT / 2;
        }
        // Keep the first frame's samples until a whole frame exists (a short file is
        // measured from them), then only what the next frame needs.
        if self.spectrum_frames > 0 && self.offset > 0 {
            self.mono.drain(..self.offset);
            self.offset = 0;
        }
        self.frames += len;
        Ok(())
    }

    /// The analysis of everything pushed.
    pub fn finish(self, monitor: &dyn Monitor) -> Result<Analysis> {
        let true_peak = f64::from(self.true_peak.peak().max(self.peak));
        let loudness = self.loudness.finish();
        let mut dc_offset = 0.0f64;
        for &sum in &self.sums {
            let mean = if self.frames == 0 {
                0.0
            } else {
                sum / self.frames as f64
            };
            if mean.abs() > dc_offset.abs() {
                dc_offset = mean;
            }
        }
        let samples = (self.channels * self.frames).max(1) as f64;
        let spectrum = if self.spectrum_frames > 0 {
            let scale = 2.0 / (self.stft.window_gain() * self.spectrum_frames as f64);
            self.spectrum.iter().map(|s| s * scale).collect()
        } else {
            average_spectrum(&self.mono, SPECTRUM_FFT, Window::Hann, monitor)?
        };
        let (centroid, dominant) = centroid_and_dominant(&spectrum, self.sample_rate);
        Ok(Analysis {
            sample_rate: self.sample_rate,
            channels: self.channels,
            frames: self.frames,
            duration_s: self.frames as f64 / f64::from(self.sample_rate),
            peak_dbfs: db(f64::from(self.peak)),
            true_peak_dbtp: db(true_peak),
            rms_dbfs: db((self.squares / samples).sqrt()),
            integrated_lufs: loudness.integrated,
            loudness_range_lu: loudness.range,
            dc_offset,
            clipped_samples: self.clipped,
            spectral_centroid_hz: centroid,
            dominant_hz: dominant,
        })
    }
}

/// The centre of mass of a long-term spectrum and its strongest component, Hz.
fn centroid_and_dominant(spectrum: &[f64], sample_rate: u32) -> (Option<f64>, Option<f64>) {
    let bin_hz = f64::from(sample_rate) / SPECTRUM_FFT as f64;
    let total: f64 = spectrum.iter().skip(1).sum();
    if total <= 0.0 {
        return (None, None);
    }
    let weighted: f64 = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .map(|(bin, m)| bin as f64 * bin_hz * m)
        .sum();
    let strongest = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(bin, _)| bin);
    (
        Some(weighted / total),
        strongest.map(|bin| crate::spectrum::interpolate(spectrum, bin) * bin_hz),
    )
}
