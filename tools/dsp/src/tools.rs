//! The `dsp` pack's MCP-neutral tools. Each reads its file off the async runtime
//! (`spawn_blocking`), reports progress and stops when the caller cancels.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use baton_kit::{Attachment, Effect, Registry, RegistryError, Tool, ToolContext, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::{Analysis, analyze_file};
use crate::audio::{MAX_WAV_SAMPLES, too_long};
use crate::biquad::{Chain, Coefficients, FilterSpec};
use crate::hpss::{HpssParams, hpss};
use crate::latency::{LatencyReport, measure};
use crate::normalize::{Normalized, Target, prepare, write_normalized};
use crate::spectrum::Peak;
use crate::spectrum_file::spectrum_file;
use crate::stft::Window;
use crate::stream::{AudioStream, CHUNK_FRAMES};
use crate::{Audio, DspError, Monitor, Separator, encode_wav, read_audio_within, within_budget};

/// What the call may write: the gate's sandbox (unconfined for a tool run directly).
fn sandbox_of(ctx: &ToolContext) -> baton_kit::Sandbox {
    ctx.sandbox()
        .cloned()
        .unwrap_or_else(baton_kit::Sandbox::unconfined)
}

/// Register every tool of the pack under `pack` (normally `dsp`).
pub fn register(
    registry: &mut Registry,
    pack: &str,
    separator: Arc<Separator>,
) -> Result<(), RegistryError> {
    registry.register(pack, DspAnalyze)?;
    registry.register(pack, DspSpectrum)?;
    registry.register(pack, DspFilter)?;
    registry.register(pack, DspNormalize)?;
    registry.register(pack, DspResponse)?;
    registry.register(pack, DspSeparate(separator))?;
    registry.register(pack, DspLatency)?;
    Ok(())
}

/// A call's context seen as a [`Monitor`]; progress is passed on in steps of 5 % at most.
struct Watched {
    ctx: ToolContext,
    last: AtomicU64,
}

impl Watched {
    fn new(ctx: ToolContext) -> Watched {
        Watched {
            ctx,
            last: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
        }
    }
}

impl Monitor for Watched {
    fn progress(&self, done: f64, total: f64, message: &str) {
        let fraction = if total > 0.0 { done / total } else { 1.0 };
        let last = f64::from_bits(self.last.load(Ordering::Relaxed));
        if fraction >= 1.0 || fraction - last >= 0.05 {
            self.last.store(fraction.to_bits(), Ordering::Relaxed);
            self.ctx.progress(done, Some(total), message);
        }
    }

    fn cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }
}

/// Run blocking work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> baton_kit::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ToolError::failed(format!("audio worker stopped: {error}")))?
        .map_err(ToolError::from)
}

/// A file read as audio, within the call's memory.
fn load(path: &str, budget: u64) -> crate::Result<Audio> {
    read_audio_within(Path::new(path), budget)
}

/// `dsp_analyze` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeArgs {
    /// The audio file: WAV (PCM or float), FLAC, Ogg Vorbis or MP3, 8–384 kHz.
    pub path: String,
}

/// `dsp_analyze`.
#[derive(Debug)]
pub struct DspAnalyze;

impl Tool for DspAnalyze {
    type Args = AnalyzeArgs;
    type Output = Analysis;

    const NAME: &'static str = "dsp_analyze";
    const TITLE: Option<&'static str> = Some("Measure an audio file");
    const DESCRIPTION: &'static str = "Measure an audio file as a mastering engineer would: \
        sample and true peak, RMS, integrated loudness and loudness range (ITU-R BS.1770-4 / \
        EBU R128), DC offset, clipped samples, spectral centroid and dominant frequency.";
    const EFFECT: Effect = Effect::Read;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const HEAVY: bool = true;

    async fn call(&self, args: AnalyzeArgs, ctx: ToolContext) -> baton_kit::Result<Analysis> {
        let monitor = Watched::new(ctx);
        blocking(move || analyze_file(Path::new(&args.path), &monitor)).await
    }
}

/// `dsp_spectrum` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpectrumArgs {
    /// The audio file (channels are averaged).
    pub path: String,
    /// FFT size, a power of two from 64 to 65536 (default 4096).
    #[serde(default = "default_fft")]
    pub fft_size: usize,
    /// Samples between frames (default a quarter of `fft_size`).
    #[serde(default)]
    pub hop: Option<usize>,
    /// Analysis window (default hann).
    #[serde(default)]
    pub window: Window,
    /// How many peaks to list, loudest first (default 10, at most 100).
    #[serde(default = "default_peaks")]
    pub max_peaks: usize,
    /// Where to write a spectrogram PNG; the image is also returned. Leave out for none.
    #[serde(default)]
    pub spectrogram: Option<String>,
}

fn default_fft() -> usize {
    4096
}

fn default_peaks() -> usize {
    10
}

/// `dsp_spectrum` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SpectrumOutput {
    /// Frames per second.
    pub sample_rate: u32,
    /// FFT size used.
    pub fft_size: usize,
    /// Hop used.
    pub hop: usize,
    /// Window used.
    pub window: Window,
    /// Bin spacing, Hz.
    pub resolution_hz: f64,
    /// Frames averaged.
    pub frames: usize,
    /// Peaks of the average spectrum, loudest first (a full-scale sine reads 0 dB).
    pub peaks: Vec<Peak>,
    /// The spectrogram written, when one was asked for.
    pub spectrogram: Option<SpectrogramFile>,
    #[serde(skip)]
    #[schemars(skip)]
    png: Option<Vec<u8>>,
}

/// A spectrogram image written to disk.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SpectrogramFile {
    /// Where it was written.
    pub path: String,
    /// Width in pixels (time).
    pub width: usize,
    /// Height in pixels (frequency, 0 Hz at the bottom).
    pub height: usize,
}

/// `dsp_spectrum`.
#[derive(Debug)]
pub struct DspSpectrum;

impl Tool for DspSpectrum {
    type Args = SpectrumArgs;
    type Output = SpectrumOutput;

    const NAME: &'static str = "dsp_spectrum";
    const TITLE: Option<&'static str> = Some("Spectrum and spectrogram");
    const DESCRIPTION: &'static str = "List the strongest spectral peaks (Hz, dB) of an audio \
        file's average spectrum, and optionally draw a spectrogram PNG (written to \
        `spectrogram` and returned as an image).";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] =
        &[("/spectrogram", "spectrogram.png")];
    const HEAVY: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/spectrogram"];

    async fn call(
        &self,
        args: SpectrumArgs,
        ctx: ToolContext,
    ) -> baton_kit::Result<SpectrumOutput> {
        if args.max_peaks > 100 {
            return Err(ToolError::invalid_args(
                "max_peaks",
                format!("{} peaks; at most 100", args.max_peaks),
            ));
        }
        let sandbox = sandbox_of(&ctx);
        let monitor = Watched::new(ctx);
        blocking(move || {
            // Streamed: memory stays bounded whatever the file's length (the picture is at
            // most 2048 × 1024 pooled cells).
            let hop = args.hop.unwrap_or(args.fft_size / 4).max(1);
            let result = spectrum_file(
                Path::new(&args.path),
                args.fft_size,
                hop,
                args.window,
                args.max_peaks,
                args.spectrogram.is_some(),
                &monitor,
            )?;
            let (spectrogram, png) = match (args.spectrogram, result.image) {
                (Some(path), Some((png, width, height))) => {
                    sandbox.write_file(Path::new(&path), |file| file.write_all(&png))?;
                    (
                        Some(SpectrogramFile {
                            path,
                            width,
                            height,
                        }),
                        Some(png),
                    )
                }
                _ => (None, None),
            };
            Ok(SpectrumOutput {
                sample_rate: result.sample_rate,
                fft_size: args.fft_size,
                hop,
                window: args.window,
                resolution_hz: result.resolution_hz,
                frames: result.frames,
                peaks: result.peaks,
                spectrogram,
                png,
            })
        })
        .await
    }

    fn attachments(&self, output: &SpectrumOutput) -> Vec<Attachment> {
        output
            .png
            .iter()
            .map(|png| Attachment::Image {
                mime_type: "image/png".into(),
                data: png.clone(),
            })
            .collect()
    }
}

/// `dsp_filter` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterArgs {
    /// The audio file to filter.
    pub path: String,
    /// Where to write the result (32-bit float WAV, same rate and channels).
    pub out: String,
    /// Biquads applied in order (RBJ cookbook), at most 64.
    pub chain: Vec<FilterSpec>,
    /// Samples per block, as the host's callback would get them (default 128).
    #[serde(default = "default_block")]
    pub block_size: usize,
}

fn default_block() -> usize {
    128
}

/// `dsp_filter` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FilterOutput {
    /// The file written.
    pub out: String,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Samples per channel.
    pub frames: usize,
    /// Blocks processed per channel.
    pub blocks: usize,
    /// Each stage's normalised coefficients, for checking against a design tool.
    pub coefficients: Vec<Coefficients>,
    /// Sample peak before, dBFS.
    pub peak_in_dbfs: Option<f64>,
    /// Sample peak after, dBFS (above 0 means the output would clip as fixed point).
    pub peak_out_dbfs: Option<f64>,
}

/// `dsp_filter`.
#[derive(Debug)]
pub struct DspFilter;

impl Tool for DspFilter {
    type Args = FilterArgs;
    type Output = FilterOutput;

    const NAME: &'static str = "dsp_filter";
    const TITLE: Option<&'static str> = Some("Filter audio");
    const DESCRIPTION: &'static str = "Run an audio file through a chain of RBJ-cookbook \
        biquads (lowpass, highpass, bandpass, notch, peaking, lowshelf, highshelf), block by \
        block exactly as a real-time callback would, and write the result.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out", "filtered.wav")];
    const HEAVY: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out"];

    async fn call(&self, args: FilterArgs, ctx: ToolContext) -> baton_kit::Result<FilterOutput> {
        if !(1..=crate::latency::MAX_BLOCK).contains(&args.block_size) {
            return Err(ToolError::invalid_args(
                "block_size",
                format!(
                    "{} must be from 1 to {}",
                    args.block_size,
                    crate::latency::MAX_BLOCK
                ),
            ));
        }
        let sandbox = sandbox_of(&ctx);
        let monitor = Watched::new(ctx);
        blocking(move || {
            // Streamed: a chunk is a whole number of blocks, so the blocks are the ones a
            // whole-file run would make.
            let mut stream = AudioStream::open(Path::new(&args.path))?;
            let channels = stream.channels();
            let sample_rate = stream.sample_rate();
            let mut chain = Chain::new(&args.chain, f64::from(sample_rate), channels)?;
            if let Some(frames) = stream.declared_frames()
                && frames * channels as u64 > MAX_WAV_SAMPLES
            {
                return Err(too_long(frames * channels as u64));
            }
            let mut peaks = (0.0f32, 0.0f32);
            let mut failure = None;
            let written = sandbox.write_file(Path::new(&args.out), |file| {
                filter_into(&mut stream, &mut chain, &args, file, &monitor)
                    .map(|found| peaks = found)
                    .map_err(|error| {
                        let message = error.to_string();
                        failure = Some(error);
                        std::io::Error::other(message)
                    })
            });
            if let Some(error) = failure {
                return Err(error);
            }
            written?;
            let frames = usize::try_from(stream.position()).unwrap_or(usize::MAX);
            let db = |peak: f32| (peak > 0.0).then(|| 20.0 * f64::from(peak).log10());
            Ok(FilterOutput {
                out: args.out,
                sample_rate,
                channels,
                frames,
                blocks: frames.div_ceil(args.block_size),
                coefficients: chain.stages().to_vec(),
                peak_in_dbfs: db(peaks.0),
                peak_out_dbfs: db(peaks.1),
            })
        })
        .await
    }
}

/// Run `stream` through `chain` into a float WAV on `file`, a chunk (a whole number of
/// blocks, so the blocks are those of a whole-file run) at a time: the peaks in and out.
fn filter_into(
    stream: &mut AudioStream,
    chain: &mut Chain,
    args: &FilterArgs,
    file: &mut std::fs::File,
    monitor: &dyn Monitor,
) -> crate::Result<(f32, f32)> {
    let io = |error: hound::Error| DspError::Io {
        action: "write",
        path: args.out.clone(),
        source: match error {
            hound::Error::IoError(error) => error,
            other => std::io::Error::other(other.to_string()),
        },
    };
    let spec = hound::WavSpec {
        channels: u16::try_from(stream.channels()).unwrap_or(u16::MAX),
        sample_rate: stream.sample_rate(),
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wav = hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(io)?;
    let step = (CHUNK_FRAMES / args.block_size).max(1) * args.block_size;
    let total = stream.declared_frames().map_or(0.0, |f| f as f64);
    let (mut peak_in, mut peak_out) = (0.0f32, 0.0f32);
    let mut chunk = Vec::new();
    while stream.read(&mut chunk, step)? > 0 {
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        for (index, channel) in chunk.iter_mut().enumerate() {
            peak_in = channel.iter().fold(peak_in, |m, s| m.max(s.abs()));
            for samples in channel.chunks_mut(args.block_size) {
                chain.process(index, samples);
            }
            peak_out = channel.iter().fold(peak_out, |m, s| m.max(s.abs()));
        }
        let samples = stream.position() * chunk.len() as u64;
        if samples > MAX_WAV_SAMPLES {
            return Err(too_long(samples));
        }
        for frame in 0..chunk.first().map_or(0, Vec::len) {
            for channel in &chunk {
                wav.write_sample(channel[frame]).map_err(io)?;
            }
        }
        let done = stream.position() as f64;
        monitor.progress(done, total.max(done), "filtering");
    }
    wav.finalize().map_err(io)?;
    Ok((peak_in, peak_out))
}

/// `dsp_normalize` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NormalizeArgs {
    /// The audio file: WAV (PCM or float), FLAC, Ogg Vorbis or MP3, any length.
    pub path: String,
    /// Integrated loudness to reach, LUFS (−70 to 0; −14 for streaming, −23 for EBU R128
    /// broadcast).
    pub target_lufs: f64,
    /// True-peak ceiling, dBTP (−20 to 0, default −1): where gain alone would pass it, a
    /// look-ahead limiter holds the peaks under it.
    #[serde(default = "default_ceiling")]
    pub true_peak_dbtp: f64,
    /// Where to write the result (32-bit float WAV, same rate and channels).
    pub out: String,
}

fn default_ceiling() -> f64 {
    -1.0
}

/// `dsp_normalize`.
#[derive(Debug)]
pub struct DspNormalize;

impl Tool for DspNormalize {
    type Args = NormalizeArgs;
    type Output = Normalized;

    const NAME: &'static str = "dsp_normalize";
    const TITLE: Option<&'static str> = Some("Normalise loudness");
    const DESCRIPTION: &'static str = "Bring an audio file to a target integrated loudness \
        (ITU-R BS.1770-4) under a true-peak ceiling: gain alone where it fits, a linked \
        look-ahead limiter where the gain would push peaks over; the output is measured as it \
        is written and the report gives input and output loudness and true peak.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out", "normalized.wav")];
    const HEAVY: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out"];

    async fn call(&self, args: NormalizeArgs, ctx: ToolContext) -> baton_kit::Result<Normalized> {
        if !(-70.0..=0.0).contains(&args.target_lufs) {
            return Err(ToolError::invalid_args(
                "target_lufs",
                format!("{} LUFS is outside −70 to 0", args.target_lufs),
            ));
        }
        if !(-20.0..=0.0).contains(&args.true_peak_dbtp) {
            return Err(ToolError::invalid_args(
                "true_peak_dbtp",
                format!("{} dBTP is outside −20 to 0", args.true_peak_dbtp),
            ));
        }
        let sandbox = sandbox_of(&ctx);
        let monitor = Watched::new(ctx);
        blocking(move || {
            let path = Path::new(&args.path);
            let target = Target {
                lufs: args.target_lufs,
                ceiling_dbtp: args.true_peak_dbtp,
            };
            let prepared = prepare(path, target, &monitor)?;
            // The sandbox opens the output; an error of the audio inside is carried out.
            let mut failure = None;
            let mut report = None;
            let written = sandbox.write_file(Path::new(&args.out), |file| {
                let writer = std::io::BufWriter::new(file);
                match write_normalized(path, &prepared, &args.out, &monitor, writer) {
                    Ok(done) => {
                        report = Some(done);
                        Ok(())
                    }
                    Err(error) => {
                        let message = error.to_string();
                        failure = Some(error);
                        Err(std::io::Error::other(message))
                    }
                }
            });
            if let Some(error) = failure {
                return Err(error);
            }
            written?;
            report.ok_or_else(|| DspError::parameter("out", "nothing was written"))
        })
        .await
    }
}

/// `dsp_response` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseArgs {
    /// Sample rate the chain runs at, Hz (8000–384000).
    pub sample_rate: u32,
    /// Biquads in order (RBJ cookbook), at most 64.
    pub chain: Vec<FilterSpec>,
    /// Log-spaced frequencies from `min_hz` to Nyquist (default 256, 2–8192).
    #[serde(default = "default_points")]
    pub points: usize,
    /// Lowest frequency, Hz (default 10).
    #[serde(default = "default_min_hz")]
    pub min_hz: f64,
    /// Samples of impulse response to return (default 256, at most 65536).
    #[serde(default = "default_impulse")]
    pub impulse_length: usize,
}

fn default_points() -> usize {
    256
}

fn default_min_hz() -> f64 {
    10.0
}

fn default_impulse() -> usize {
    256
}

/// `dsp_response` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ResponseOutput {
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// The frequencies evaluated, Hz.
    pub frequencies_hz: Vec<f64>,
    /// Magnitude at each frequency, dB (a true zero reads −400).
    pub magnitude_db: Vec<f64>,
    /// Phase at each frequency, radians in −π..π.
    pub phase_rad: Vec<f64>,
    /// The chain's response to a unit impulse.
    pub impulse: Vec<f64>,
    /// Each stage's normalised coefficients.
    pub coefficients: Vec<Coefficients>,
}

/// The chain's response: magnitude and phase at `frequencies`, and `impulse_length` samples
/// of impulse response.
pub fn response(
    sample_rate: u32,
    specs: &[FilterSpec],
    frequencies: &[f64],
    impulse_length: usize,
) -> crate::Result<ResponseOutput> {
    crate::audio::check_rate("sample_rate", sample_rate)?;
    let rate = f64::from(sample_rate);
    let mut chain = Chain::new(specs, rate, 1)?;
    let (magnitude_db, phase_rad) = frequencies
        .iter()
        .map(|&f| {
            let (db, phase) = chain.response_at(f, rate);
            (
                if db.is_finite() {
                    db.max(-400.0)
                } else {
                    -400.0
                },
                phase,
            )
        })
        .unzip();
    let mut impulse = vec![0.0f32; impulse_length];
    if let Some(first) = impulse.first_mut() {
        *first = 1.0;
    }
    chain.process(0, &mut impulse);
    Ok(ResponseOutput {
        sample_rate,
        frequencies_hz: frequencies.to_vec(),
        magnitude_db,
        phase_rad,
        impulse: impulse.into_iter().map(f64::from).collect(),
        coefficients: chain.stages().to_vec(),
    })
}

/// `dsp_response`.
#[derive(Debug)]
pub struct DspResponse;

impl Tool for DspResponse {
    type Args = ResponseArgs;
    type Output = ResponseOutput;

    const NAME: &'static str = "dsp_response";
    const TITLE: Option<&'static str> = Some("Filter response");
    const DESCRIPTION: &'static str = "Compute a biquad chain's magnitude (dB) and phase at \
        log-spaced frequencies and its impulse response, without audio — for designing filters \
        and regression-testing them.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: ResponseArgs, _: ToolContext) -> baton_kit::Result<ResponseOutput> {
        if !(2..=8192).contains(&args.points) {
            return Err(ToolError::invalid_args(
                "points",
                format!("{} must be from 2 to 8192", args.points),
            ));
        }
        if args.impulse_length > 65_536 {
            return Err(ToolError::invalid_args(
                "impulse_length",
                format!("{} samples; at most 65536", args.impulse_length),
            ));
        }
        let nyquist = f64::from(args.sample_rate) / 2.0;
        if !(args.min_hz.is_finite() && args.min_hz > 0.0 && args.min_hz < nyquist) {
            return Err(ToolError::invalid_args(
                "min_hz",
                format!(
                    "{} must be above 0 and below Nyquist ({nyquist} Hz)",
                    args.min_hz
                ),
            ));
        }
        let ratio = nyquist / args.min_hz;
        let last = (args.points - 1) as f64;
        let frequencies: Vec<f64> = (0..args.points)
            .map(|i| args.min_hz * ratio.powf(i as f64 / last))
            .collect();
        Ok(response(
            args.sample_rate,
            &args.chain,
            &frequencies,
            args.impulse_length,
        )?)
    }
}

/// Separation methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeparationMethod {
    /// Median-filter harmonic–percussive separation on the STFT, with soft masks.
    #[default]
    Hpss,
    /// The configured ONNX mask model (`[dsp] separation_model`): its stems, by its masks.
    Onnx,
}

/// `dsp_separate` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeparateArgs {
    /// The audio file to separate.
    pub path: String,
    /// Folder for the stems (`<name>.<stem>.wav`: `harmonic` and `percussive` for hpss, the
    /// model's stem names for onnx); created if missing.
    pub out_dir: String,
    /// Method (default hpss).
    #[serde(default)]
    pub method: SeparationMethod,
    /// Median length along time, frames, odd (default 31).
    #[serde(default = "default_kernel")]
    pub kernel_harmonic: usize,
    /// Median length along frequency, bins, odd (default 31).
    #[serde(default = "default_kernel")]
    pub kernel_percussive: usize,
    /// Mask margin, ≥ 1 (default 1: the stems add up to the input; larger is stricter).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// STFT size (default 2048).
    #[serde(default = "default_separate_fft")]
    pub fft_size: usize,
    /// STFT hop (default 512).
    #[serde(default = "default_separate_hop")]
    pub hop: usize,
}

fn default_kernel() -> usize {
    31
}

fn default_margin() -> f64 {
    1.0
}

fn default_separate_fft() -> usize {
    2048
}

fn default_separate_hop() -> usize {
    512
}

/// One stem written by `dsp_separate`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Stem {
    /// `harmonic`, `percussive`, or the model's stem name.
    pub name: String,
    /// The 32-bit float WAV written.
    pub path: String,
    /// Share of the input's energy in this stem, 0–1.
    pub share: f64,
}

/// `dsp_separate` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SeparateOutput {
    /// The method used.
    pub method: SeparationMethod,
    /// The stems, in the method's order.
    pub stems: Vec<Stem>,
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Samples per channel.
    pub frames: usize,
    /// Level of (sum of stems − input) relative to the input, dB; below −60 means the stems
    /// add back up to the input (hpss with margin 1, a model whose masks sum to 1). `null`
    /// for a silent input.
    pub reconstruction_error_db: Option<f64>,
}

/// `dsp_separate`, with the separation model it may use.
#[derive(Debug)]
pub struct DspSeparate(pub Arc<Separator>);

impl Tool for DspSeparate {
    type Args = SeparateArgs;
    type Output = SeparateOutput;

    const NAME: &'static str = "dsp_separate";
    const TITLE: Option<&'static str> = Some("Separate an audio file into stems");
    const DESCRIPTION: &'static str = "Split an audio file into stems and write each as 32-bit \
        float WAV: `hpss` (default) gives harmonic (sustained: voice, pads, bass) and \
        percussive (drums, transients) stems by median-filter soft masks; `onnx` runs the \
        configured mask model (`[dsp] separation_model`) and writes its stems.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out_dir", "stems/")];
    const HEAVY: bool = true;
    const LONG: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out_dir"];

    async fn call(
        &self,
        args: SeparateArgs,
        ctx: ToolContext,
    ) -> baton_kit::Result<SeparateOutput> {
        let params = HpssParams {
            kernel_harmonic: args.kernel_harmonic,
            kernel_percussive: args.kernel_percussive,
            margin: args.margin,
            n_fft: args.fft_size,
            hop: args.hop,
        };
        params.check()?;
        let separator = self.0.clone();
        let sandbox = sandbox_of(&ctx);
        let budget = ctx.memory_budget();
        let monitor = Watched::new(ctx);
        blocking(move || {
            let audio = load(&args.path, budget)?;
            let stft = crate::Stft::new(args.fft_size, args.hop, crate::Window::Hann)?;
            // Per channel: the complex spectrogram (8 bytes a cell), two median-filtered
            // magnitudes and the masks (16); then every stem of every channel, beside the audio.
            let samples = audio.frames() as u64 * audio.channels.len() as u64;
            let need = stft.cells_for(audio.frames()) * 24 + samples * 4 * 3;
            within_budget(
                need,
                budget,
                "hop",
                &format!(
                    "separating {samples} samples with fft_size {} and hop {}",
                    args.fft_size, args.hop
                ),
            )?;
            let dir = sandbox.create_dir(Path::new(&args.out_dir))?;
            // stems[s][c]: stem s of channel c.
            let mut stems: Vec<Vec<Vec<f32>>> = Vec::new();
            for channel in &audio.channels {
                let parts = match args.method {
                    SeparationMethod::Hpss => {
                        let (h, p) = hpss(channel, &params, &monitor)?;
                        vec![h, p]
                    }
                    SeparationMethod::Onnx => {
                        separator.separate(channel, args.fft_size, args.hop, &monitor)?
                    }
                };
                stems.resize_with(parts.len(), Vec::new);
                for (stem, part) in stems.iter_mut().zip(parts) {
                    stem.push(part);
                }
            }
            let names: Vec<String> = match args.method {
                SeparationMethod::Hpss => vec!["harmonic".into(), "percussive".into()],
                SeparationMethod::Onnx => {
                    (0..stems.len()).map(|i| separator.stem_name(i)).collect()
                }
            };
            let energy = |signal: &[f32]| signal.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
            let total: f64 = audio.channels.iter().map(|c| energy(c)).sum();
            let mut error = 0.0f64;
            for (index, channel) in audio.channels.iter().enumerate() {
                for (frame, &x) in channel.iter().enumerate() {
                    let sum: f64 = stems.iter().map(|s| f64::from(s[index][frame])).sum();
                    error += (sum - f64::from(x)).powi(2);
                }
            }
            let base = Path::new(&args.path)
                .file_stem()
                .map_or_else(|| "audio".into(), |s| s.to_string_lossy().into_owned());
            let mut written = Vec::with_capacity(stems.len());
            for (name, channels) in names.into_iter().zip(stems) {
                let file = format!("{base}.{name}.wav");
                let path = Path::new(&args.out_dir).join(&file);
                let share = channels.iter().map(|c| energy(c)).sum::<f64>();
                let stem = Audio {
                    sample_rate: audio.sample_rate,
                    channels,
                };
                dir.write_with(Path::new(&file), |out| {
                    encode_wav(std::io::BufWriter::new(out), &stem)
                })?;
                written.push(Stem {
                    name,
                    path: path.display().to_string(),
                    share: if total > 0.0 { share / total } else { 0.0 },
                });
            }
            Ok(SeparateOutput {
                method: args.method,
                stems: written,
                sample_rate: audio.sample_rate,
                channels: audio.channels.len(),
                frames: audio.frames(),
                reconstruction_error_db: (total > 0.0)
                    .then(|| 10.0 * (error / total).max(1e-30).log10()),
            })
        })
        .await
    }
}

/// `dsp_latency` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyArgs {
    /// Sample rate, Hz (44100, 48000, 88200, 96000, 192000…; 8000–384000).
    pub sample_rate: u32,
    /// Samples per channel per callback (default 128).
    #[serde(default = "default_block")]
    pub block_size: usize,
    /// Biquads to run in the callback, in order.
    pub chain: Vec<FilterSpec>,
    /// Seconds of audio to process (default 10, at most 600).
    #[serde(default = "default_seconds")]
    pub seconds: f64,
    /// Channels per callback (default 2).
    #[serde(default = "default_channels")]
    pub channels: usize,
}

fn default_seconds() -> f64 {
    10.0
}

fn default_channels() -> usize {
    2
}

/// `dsp_latency`.
#[derive(Debug)]
pub struct DspLatency;

impl Tool for DspLatency {
    type Args = LatencyArgs;
    type Output = LatencyReport;

    const NAME: &'static str = "dsp_latency";
    const TITLE: Option<&'static str> = Some("Real-time budget check");
    const DESCRIPTION: &'static str = "Run a biquad chain as a real-time audio callback over \
        generated audio and report per-block processing time (min/p50/p99/max µs), its share \
        of the block's real-time budget, and allocations made inside the callback (must be 0).";
    const EFFECT: Effect = Effect::Read;
    const HEAVY: bool = true;

    async fn call(&self, args: LatencyArgs, ctx: ToolContext) -> baton_kit::Result<LatencyReport> {
        if !(1..=crate::audio::MAX_CHANNELS as usize).contains(&args.channels) {
            return Err(ToolError::invalid_args(
                "channels",
                format!(
                    "{} must be from 1 to {}",
                    args.channels,
                    crate::audio::MAX_CHANNELS
                ),
            ));
        }
        crate::audio::check_rate("sample_rate", args.sample_rate)?;
        let mut chain = Chain::new(&args.chain, f64::from(args.sample_rate), args.channels)?;
        let monitor = Watched::new(ctx);
        blocking(move || {
            measure(
                args.sample_rate,
                args.block_size,
                args.channels,
                args.seconds,
                &monitor,
                |buffers| {
                    for (index, buffer) in buffers.iter_mut().enumerate() {
                        chain.process(index, buffer);
                    }
                },
            )
        })
        .await
    }
}
