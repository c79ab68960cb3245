//! Reading and writing audio. WAV (PCM 8/16/24/32-bit integer and 32-bit float, plain or
//! `WAVE_FORMAT_EXTENSIBLE`) is checked before anything is allocated: a header may claim any
//! length, so the claim is held against the file's real size and a hard sample limit. FLAC,
//! Ogg Vorbis and MP3, told by their first bytes, are decoded in `decode.rs`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::decode::{Compressed, read_compressed};
use crate::{DspError, Result};

/// Lowest sample rate accepted.
pub const MIN_RATE: u32 = 8_000;
/// Highest sample rate accepted (384 kHz, twice the highest studio rate).
pub const MAX_RATE: u32 = 384_000;
/// Most channels accepted.
pub const MAX_CHANNELS: u16 = 32;
/// Most samples (all channels) one file may hold: 2²⁸, 1 GiB as 32-bit floats — 46 minutes of
/// stereo at 48 kHz. Bigger files are refused before any memory is taken.
pub const MAX_SAMPLES: u64 = 1 << 28;

/// Decoded audio: one `Vec` of samples in −1.0..1.0 per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Frames per second.
    pub sample_rate: u32,
    /// Samples per channel, planar.
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    /// The channels averaged into one.
    pub fn mono(&self) -> Vec<f32> {
        let count = self.channels.len().max(1) as f32;
        let mut mix = vec![0.0f32; self.frames()];
        for channel in &self.channels {
            for (out, sample) in mix.iter_mut().zip(channel) {
                *out += sample / count;
            }
        }
        mix
    }
}

/// Check a sample rate is one Baton processes.
pub fn check_rate(name: &str, rate: u32) -> Result<()> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(DspError::parameter(
            name,
            format!("{rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz"),
        ))
    }
}

/// Read an audio file: WAV, FLAC, Ogg Vorbis or MP3, whatever its name says.
pub fn read_audio(path: &Path) -> Result<Audio> {
    read_audio_within(path, baton_kit::DEFAULT_MEMORY_BUDGET)
}

/// [`read_audio`], refusing a compressed file whose decoded samples pass `budget` bytes (it
/// stops decoding there).
pub fn read_audio_within(path: &Path, budget: u64) -> Result<Audio> {
    let shown = path.display().to_string();
    let io = |source| DspError::Io {
        action: "read",
        path: shown.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = [0u8; 12];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]).map_err(io)? {
            0 => break,
            read => filled += read,
        }
    }
    let head = &head[..filled];
    // RIFF, and RF64 so hound names it as the WAV flavour Baton does not read.
    if head.is_empty() || head.starts_with(b"RIFF") || head.starts_with(b"RF64") {
        return read_wav(path).and_then(|audio| finite(&shown, audio));
    }
    match Compressed::sniff(head) {
        Some(kind) => {
            read_compressed(&shown, file, kind, budget).and_then(|audio| finite(&shown, audio))
        }
        None => Err(DspError::InvalidInput {
            path: shown.clone(),
            message: format!(
                "not an audio file Baton reads (WAV, FLAC, Ogg Vorbis or MP3): it starts with \
                 {}",
                head.iter()
                    .take(8)
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }),
    }
}

/// Read a WAV file.
pub fn read_wav(path: &Path) -> Result<Audio> {
    let shown = path.display().to_string();
    let invalid = |message: String| DspError::InvalidInput {
        path: shown.clone(),
        message,
    };
    let file = File::open(path).map_err(|source| DspError::Io {
        action: "read",
        path: shown.clone(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| DspError::Io {
            action: "read",
            path: shown.clone(),
            source,
        })?
        .len();
    if size == 0 {
        return Err(invalid("the file is empty (0 bytes)".into()));
    }
    let reader = hound::WavReader::new(BufReader::new(file)).map_err(|error| {
        invalid(match error {
            hound::Error::FormatError(what) => format!("not a WAV file Baton can read: {what}"),
            hound::Error::Unsupported => "a WAV encoding Baton does not read (it reads PCM \
                 8/16/24/32-bit and 32-bit float)"
                .into(),
            hound::Error::IoError(error) => format!("the header is cut short: {error}"),
            other => other.to_string(),
        })
    })?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(invalid(format!(
            "{} channels; Baton reads 1 to {MAX_CHANNELS}",
            spec.channels
        )));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(invalid(format!(
            "sample rate {} Hz is outside {MIN_RATE}–{MAX_RATE} Hz",
            spec.sample_rate
        )));
    }
    let samples = u64::from(reader.len());
    let bytes_per_sample = u64::from(spec.bits_per_sample.div_ceil(8));
    let declared = samples * bytes_per_sample;
    if declared > size {
        return Err(invalid(format!(
            "the header declares {declared} bytes of audio but the file is {size} bytes: \
             truncated or corrupt"
        )));
    }
    if samples > MAX_SAMPLES {
        return Err(invalid(format!(
            "{samples} samples is more than Baton reads at once ({MAX_SAMPLES})"
        )));
    }
    let count = usize::from(spec.channels);
    let frames = usize::try_from(samples).unwrap_or(usize::MAX) / count;
    let mut channels = vec![Vec::with_capacity(frames); count];
    let truncated = |error: hound::Error| invalid(format!("the audio data is cut short: {error}"));
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for (index, sample) in reader.into_samples::<f32>().enumerate() {
                channels[index % count].push(sample.map_err(truncated)?);
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for (index, sample) in reader.into_samples::<i32>().enumerate() {
                channels[index % count].push(sample.map_err(truncated)? as f32 * scale);
            }
        }
    }
    // A last frame with fewer samples than channels is not a frame.
    let whole = channels.iter().map(Vec::len).min().unwrap_or(0);
    for channel in &mut channels {
        channel.truncate(whole);
    }
    Ok(Audio {
        sample_rate: spec.sample_rate,
        channels,
    })
}

/// `audio` if every sample is a finite number. A NaN or an infinity would pass through every
/// measurement as a plausible figure (a loudness, no peaks): refuse the file instead, naming
/// the first bad sample.
fn finite(shown: &str, audio: Audio) -> Result<Audio> {
    let first_bad = audio
        .channels
        .iter()
        .enumerate()
        .filter_map(|(channel, samples)| {
            samples
                .iter()
                .position(|s| !s.is_finite())
                .map(|frame| (frame, channel, samples[frame]))
        })
        .min_by_key(|&(frame, channel, _)| (frame, channel));
    let Some((frame, channel, value)) = first_bad else {
        return Ok(audio);
    };
    let count: usize = audio
        .channels
        .iter()
        .map(|c| c.iter().filter(|s| !s.is_finite()).count())
        .sum();
    Err(DspError::InvalidInput {
        path: shown.to_owned(),
        message: format!(
            "sample {frame} of channel {channel} (at {:.6} s) is {value}, not a number a signal \
             can hold; {count} sample(s) in all are NaN or infinite",
            frame as f64 / f64::from(audio.sample_rate)
        ),
    })
}

/// Write audio as a 32-bit float WAV (no clipping, whatever the processing did to the level).
pub fn write_wav(path: &Path, audio: &Audio) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|source| DspError::Io {
        action: "create",
        path: path.display().to_string(),
        source,
    })?;
    encode_wav(std::io::BufWriter::new(file), audio).map_err(|source| DspError::Io {
        action: "write",
        path: path.display().to_string(),
        source,
    })
}

/// Encode audio as a 32-bit float WAV into `writer` (a file a sandbox opened, say).
pub fn encode_wav(
    writer: impl std::io::Write + std::io::Seek,
    audio: &Audio,
) -> std::io::Result<()> {
    let io = |error: hound::Error| match error {
        hound::Error::IoError(error) => error,
        other => std::io::Error::other(other.to_string()),
    };
    let spec = hound::WavSpec {
        channels: u16::try_from(audio.channels.len()).unwrap_or(u16::MAX),
        sample_rate: audio.sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::new(writer, spec).map_err(io)?;
    for frame in 0..audio.frames() {
        for channel in &audio.channels {
            writer.write_sample(channel[frame]).map_err(io)?;
        }
    }
    writer.finalize().map_err(io)
}
