//! Measuring a file as an engineer would: levels, loudness per ITU-R BS.1770-4 / EBU R128
//! (`loudness.rs`), true peak (the `ebur128` crate's 4× oversampling), DC, clipping and where
//! the spectrum's energy sits.

use ebur128::{EbuR128, Mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::loudness;
use crate::spectrum::average_spectrum;
use crate::stft::Window;
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
    /// Highest inter-sample peak (4× oversampled, BS.1770-4 Annex 2), dBTP.
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

/// Analyse decoded audio.
pub fn analyze(audio: &Audio, monitor: &dyn Monitor) -> Result<Analysis> {
    let channels = audio.channels.len();
    let frames = audio.frames();
    let meter_error = |error: ebur128::Error| DspError::parameter("path", error.to_string());
    let mut meter = EbuR128::new(
        u32::try_from(channels).unwrap_or(u32::MAX),
        audio.sample_rate,
        Mode::TRUE_PEAK,
    )
    .map_err(meter_error)?;
    // Fed in one-second slices so a long file reports progress and can be cancelled.
    let slice = audio.sample_rate as usize;
    let mut start = 0;
    while start < frames {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let end = (start + slice).min(frames);
        let planar: Vec<&[f32]> = audio.channels.iter().map(|c| &c[start..end]).collect();
        meter.add_frames_planar_f32(&planar).map_err(meter_error)?;
        monitor.progress(end as f64, frames as f64, "measuring true peak");
        start = end;
    }
    let loudness = loudness::measure(audio, monitor)?;
    let mut true_peak = 0.0f64;
    for channel in 0..channels {
        let peak = meter
            .true_peak(u32::try_from(channel).unwrap_or(u32::MAX))
            .map_err(meter_error)?;
        true_peak = true_peak.max(peak);
    }

    let (mut peak, mut squares, mut clipped) = (0.0f32, 0.0f64, 0u64);
    let mut dc_offset = 0.0f64;
    for channel in &audio.channels {
        let mut sum = 0.0f64;
        for &sample in channel {
            let magnitude = sample.abs();
            peak = peak.max(magnitude);
            squares += f64::from(sample) * f64::from(sample);
            sum += f64::from(sample);
            clipped += u64::from(magnitude >= CLIP_LEVEL);
        }
        let mean = if channel.is_empty() {
            0.0
        } else {
            sum / channel.len() as f64
        };
        if mean.abs() > dc_offset.abs() {
            dc_offset = mean;
        }
    }
    let samples = (channels * frames).max(1) as f64;

    let spectrum = average_spectrum(&audio.mono(), 4096, Window::Hann, monitor)?;
    let bin_hz = f64::from(audio.sample_rate) / 4096.0;
    let total: f64 = spectrum.iter().skip(1).sum();
    let (centroid, dominant) = if total > 0.0 {
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
            strongest.map(|bin| crate::spectrum::interpolate(&spectrum, bin) * bin_hz),
        )
    } else {
        (None, None)
    };

    Ok(Analysis {
        sample_rate: audio.sample_rate,
        channels,
        frames,
        duration_s: audio.duration_s(),
        peak_dbfs: db(f64::from(peak)),
        true_peak_dbtp: db(true_peak),
        rms_dbfs: db((squares / samples).sqrt()),
        integrated_lufs: loudness.integrated,
        loudness_range_lu: loudness.range,
        dc_offset,
        clipped_samples: clipped,
        spectral_centroid_hz: centroid,
        dominant_hz: dominant,
    })
}
