//! Loudness normalisation with a true-peak ceiling, streamed: one pass measures, the next
//! ones apply a gain (and where the gain alone would pass the ceiling, the look-ahead
//! [`Limiter`]) while measuring what comes out; a gain is written only once it has been seen
//! to meet the target and hold the ceiling.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::audio::{MAX_WAV_SAMPLES, too_long};
use crate::limiter::Limiter;
use crate::loudness::LoudnessMeter;
use crate::stream::{AudioStream, CHUNK_FRAMES};
use crate::truepeak::TruePeak;
use crate::{DspError, Monitor, Result};

/// How close to the target the output must come before it is written, LU.
const TOLERANCE_LU: f64 = 0.03;
/// The limiter aims this far under the ceiling, dB, so rounding never crosses it.
const MARGIN_DB: f64 = 0.05;
/// Look-ahead and release of the limiter, ms.
const LOOK_MS: f64 = 3.0;
const RELEASE_MS: f64 = 80.0;
/// Gains tried on the whole file before the target is declared out of reach.
const MAX_PASSES: u32 = 8;
/// The most gain a normalisation applies, dB: beyond it the "signal" is the noise floor.
const MAX_GAIN_DB: f64 = 60.0;

/// What `dsp_normalize` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Normalized {
    /// The file written (32-bit float WAV).
    pub out: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Samples per channel.
    pub frames: u64,
    /// Integrated loudness of the input, LUFS.
    pub input_lufs: f64,
    /// True peak of the input, dBTP (`null` for digital silence).
    pub input_true_peak_dbtp: Option<f64>,
    /// Gain applied before any limiting, dB.
    pub gain_db: f64,
    /// Whether the limiter had to hold peaks under the ceiling.
    pub limited: bool,
    /// The most the limiter took off, dB (0 when it did nothing).
    pub max_gain_reduction_db: f64,
    /// Integrated loudness of the output, LUFS, as measured while writing it.
    pub output_lufs: f64,
    /// True peak of the output, dBTP, as measured while writing it (8× oversampled below
    /// 48 kHz).
    pub output_true_peak_dbtp: Option<f64>,
    /// Passes over the file: one to measure, one per gain tried, one to write.
    pub passes: u32,
}

/// A gain plan for one rendering pass.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Gain before the limiter, linear.
    gain: f64,
    /// Limiter ceiling, linear; `None` for gain alone.
    limit: Option<f32>,
}

/// What one rendering pass measured on its output.
#[derive(Debug, Clone, Copy)]
struct Rendered {
    lufs: Option<f64>,
    true_peak: f32,
    least_gain: f64,
    frames: u64,
}

fn db(linear: f64) -> Option<f64> {
    (linear > 0.0).then(|| 20.0 * linear.log10())
}

/// Measure a file's integrated loudness and true peak, streamed.
fn measure(path: &Path, monitor: &dyn Monitor) -> Result<(Option<f64>, f32, u32, usize)> {
    let mut stream = AudioStream::open(path)?;
    let (rate, count) = (stream.sample_rate(), stream.channels());
    let mut loudness = LoudnessMeter::new(count, rate);
    let mut peak = TruePeak::new(count);
    let mut peaks = Vec::new();
    let mut chunk = Vec::new();
    while stream.read(&mut chunk, CHUNK_FRAMES)? > 0 {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let slices: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        loudness.push(&slices);
        peaks.clear();
        peak.push(&slices, &mut peaks);
    }
    peaks.clear();
    peak.finish(count, &mut peaks);
    Ok((loudness.finish().integrated, peak.peak(), rate, count))
}

/// Apply `plan` to the file, handing each processed chunk to `sink`, and measure the output.
fn render(
    path: &Path,
    plan: Plan,
    monitor: &dyn Monitor,
    sink: &mut dyn FnMut(&[Vec<f32>]) -> Result<()>,
) -> Result<Rendered> {
    let mut stream = AudioStream::open(path)?;
    let (rate, count) = (stream.sample_rate(), stream.channels());
    let mut limiter = plan
        .limit
        .map(|ceiling| Limiter::new(count, rate, ceiling, LOOK_MS, RELEASE_MS));
    let mut loudness = LoudnessMeter::new(count, rate);
    let mut peak = TruePeak::new(count);
    let mut peaks = Vec::new();
    let mut chunk = Vec::new();
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); count];
    let mut frames = 0u64;
    let mut deliver = |out: &mut Vec<Vec<f32>>, frames: &mut u64| -> Result<()> {
        let slices: Vec<&[f32]> = out.iter().map(Vec::as_slice).collect();
        loudness.push(&slices);
        peaks.clear();
        peak.push(&slices, &mut peaks);
        *frames += out.first().map_or(0, Vec::len) as u64;
        sink(out)?;
        out.iter_mut().for_each(Vec::clear);
        Ok(())
    };
    while stream.read(&mut chunk, CHUNK_FRAMES)? > 0 {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        for channel in &mut chunk {
            for sample in channel.iter_mut() {
                *sample = (f64::from(*sample) * plan.gain) as f32;
            }
        }
        match &mut limiter {
            Some(limiter) => {
                let slices: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
                limiter.push(&slices, &mut out);
            }
            None => out.clone_from(&chunk),
        }
        deliver(&mut out, &mut frames)?;
    }
    if let Some(limiter) = &mut limiter {
        limiter.finish(&mut out);
        deliver(&mut out, &mut frames)?;
    }
    let least_gain = limiter.as_ref().map_or(1.0, Limiter::least_gain);
    peaks.clear();
    peak.finish(count, &mut peaks);
    Ok(Rendered {
        lufs: loudness.finish().integrated,
        true_peak: peak.peak(),
        least_gain,
        frames,
    })
}

/// The settings of a normalisation: what to reach and where the peaks must stay.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Integrated loudness to reach, LUFS.
    pub lufs: f64,
    /// True-peak ceiling, dBTP.
    pub ceiling_dbtp: f64,
}

impl Target {
    /// The ceiling, linear.
    fn ceiling(&self) -> f64 {
        10f64.powf(self.ceiling_dbtp / 20.0)
    }

    /// Where the limiter aims: [`MARGIN_DB`] under the ceiling, linear.
    fn aim(&self) -> f64 {
        self.ceiling() * 10f64.powf(-MARGIN_DB / 20.0)
    }
}

/// A normalisation worked out and tried, ready to be written.
#[derive(Debug, Clone)]
pub struct Prepared {
    plan: Plan,
    input_lufs: f64,
    input_true_peak: f32,
    sample_rate: u32,
    channels: usize,
    passes: u32,
}

/// Measure the file and settle the gain (and the limiter's ceiling) that reach `target`
/// without passing its ceiling, trying them on the file without writing.
pub fn prepare(path: &Path, target: Target, monitor: &dyn Monitor) -> Result<Prepared> {
    if let Ok(stream) = AudioStream::open(path)
        && let Some(frames) = stream.declared_frames()
        && frames * stream.channels() as u64 > MAX_WAV_SAMPLES
    {
        return Err(too_long(frames * stream.channels() as u64));
    }
    let (lufs, input_true_peak, sample_rate, channels) = measure(path, monitor)?;
    let Some(input_lufs) = lufs else {
        return Err(DspError::InvalidInput {
            path: path.display().to_string(),
            message: "its loudness is below the −70 LUFS gate (silence or near it): there is \
                      no loudness to normalise"
                .into(),
        });
    };
    let aim = target.aim();
    let mut plan = Plan {
        gain: 10f64.powf((target.lufs - input_lufs) / 20.0),
        limit: None,
    };
    let mut passes = 1;
    // Gain alone when it fits: the output is the input scaled, its loudness the target.
    if target.lufs - input_lufs > MAX_GAIN_DB {
        return Err(DspError::parameter(
            "target_lufs",
            format!(
                "the file measures {input_lufs:.2} LUFS: reaching {} LUFS needs more than \
                 {MAX_GAIN_DB} dB of gain, which would only raise its noise floor",
                target.lufs
            ),
        ));
    }
    if f64::from(input_true_peak) * plan.gain > aim {
        let tries;
        (plan, tries) = settle(path, plan, target, monitor)?;
        passes += tries;
    }
    Ok(Prepared {
        plan,
        input_lufs,
        input_true_peak,
        sample_rate,
        channels,
        passes,
    })
}

/// Try gains (and limiter ceilings) on the whole file until the output meets the target
/// under the ceiling: the plan found and the passes it took.
fn settle(
    path: &Path,
    mut plan: Plan,
    target: Target,
    monitor: &dyn Monitor,
) -> Result<(Plan, u32)> {
    let (ceiling, aim) = (target.ceiling(), target.aim());
    let mut passes = 0;
    let mut limit = aim;
    // (gain dB, loudness) of the previous pass: under heavy limiting loudness grows slower
    // than gain, so the next gain follows the measured slope (a secant step).
    let mut previous: Option<(f64, f64)> = None;
    let mut closest = f64::NEG_INFINITY;
    for _ in 0..MAX_PASSES {
        plan.limit = Some(limit as f32);
        let tried = render(path, plan, monitor, &mut |_| Ok(()))?;
        passes += 1;
        let peak = f64::from(tried.true_peak);
        let lufs = tried.lufs.unwrap_or(f64::NEG_INFINITY);
        if peak > ceiling {
            // Rounding or a peak the limiter's view missed: aim lower.
            limit *= aim / peak;
            continue;
        }
        if (lufs - target.lufs).abs() <= TOLERANCE_LU {
            // The plan written is the one tried.
            return Ok((plan, passes));
        }
        if (lufs - target.lufs).abs() < (closest - target.lufs).abs() {
            closest = lufs;
        }
        let gain_db = 20.0 * plan.gain.log10();
        let slope = match previous {
            Some((g, l)) if (gain_db - g).abs() > 1e-6 => {
                ((lufs - l) / (gain_db - g)).clamp(0.05, 1.0)
            }
            _ => 1.0,
        };
        previous = Some((gain_db, lufs));
        let next = gain_db + ((target.lufs - lufs) / slope).clamp(-24.0, 24.0);
        if next > MAX_GAIN_DB {
            break;
        }
        plan.gain = 10f64.powf(next / 20.0);
    }
    // Nothing written is better than a file that misses what was asked and says it did not.
    Err(DspError::parameter(
        "target_lufs",
        format!(
            "{} LUFS cannot be reached under a {} dBTP ceiling: the limiter got to {closest:.2} \
             LUFS in {passes} tries (the peaks are too dense, or the gain would pass \
             {MAX_GAIN_DB} dB); lower the target or raise the ceiling",
            target.lufs, target.ceiling_dbtp
        ),
    ))
}

/// Write the prepared normalisation of the file at `path` as a 32-bit float WAV into
/// `writer`, measuring the output as it goes. `out` is the name the report gives.
pub fn write_normalized(
    path: &Path,
    prepared: &Prepared,
    out: &str,
    monitor: &dyn Monitor,
    writer: impl std::io::Write + std::io::Seek,
) -> Result<Normalized> {
    let io = |source: std::io::Error| DspError::Io {
        action: "write",
        path: out.to_owned(),
        source,
    };
    let hound_io = |error: hound::Error| match error {
        hound::Error::IoError(error) => io(error),
        other => io(std::io::Error::other(other.to_string())),
    };
    let spec = hound::WavSpec {
        channels: u16::try_from(prepared.channels).unwrap_or(u16::MAX),
        sample_rate: prepared.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wav = hound::WavWriter::new(writer, spec).map_err(hound_io)?;
    let mut written = 0u64;
    let rendered = render(path, prepared.plan, monitor, &mut |chunk| {
        let frames = chunk.first().map_or(0, Vec::len);
        written += (frames * chunk.len()) as u64;
        if written > MAX_WAV_SAMPLES {
            return Err(too_long(written));
        }
        for frame in 0..frames {
            for channel in chunk {
                wav.write_sample(channel[frame]).map_err(hound_io)?;
            }
        }
        Ok(())
    })?;
    wav.finalize().map_err(hound_io)?;
    let plan = prepared.plan;
    Ok(Normalized {
        out: out.to_owned(),
        sample_rate: prepared.sample_rate,
        channels: prepared.channels,
        frames: rendered.frames,
        input_lufs: prepared.input_lufs,
        input_true_peak_dbtp: db(f64::from(prepared.input_true_peak)),
        gain_db: 20.0 * plan.gain.log10(),
        limited: plan.limit.is_some() && rendered.least_gain < 1.0,
        max_gain_reduction_db: -20.0 * rendered.least_gain.log10(),
        output_lufs: rendered.lufs.unwrap_or(f64::NEG_INFINITY),
        output_true_peak_dbtp: db(f64::from(rendered.true_peak)),
        passes: prepared.passes + 1,
    })
}
