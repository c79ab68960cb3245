//! Reading and writing audio. WAV (PCM 8/16/24/32-bit integer and 32-bit float, plain or
//! `WAVE_FORMAT_EXTENSIBLE`) is checked before anything is allocated: a header may claim any
//! length, so the claim is held against the file's real size and a hard sample limit. FLAC,
//! Ogg Vorbis and MP3, told by their first bytes, are decoded in `decode.rs`.

use std::path::Path;

use crate::stream::{AudioStream, CHUNK_FRAMES};
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

/// The most 32-bit samples a WAV can hold: its sizes are 32-bit (less room for the header).
/// A tool writing float WAV refuses to pass it rather than wrap the header's size.
pub const MAX_WAV_SAMPLES: u64 = (u32::MAX as u64 - 1024) / 4;

/// The error for output that would pass [`MAX_WAV_SAMPLES`].
pub(crate) fn too_long(samples: u64) -> DspError {
    DspError::parameter(
        "path",
        format!(
            "the output would hold {samples} or more 32-bit samples, more than a WAV can hold \
             ({MAX_WAV_SAMPLES}, 4 GiB); split the file"
        ),
    )
}

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
        let mut mix = Vec::new();
        mix_into(&mut mix, &self.channels);
        mix
    }
}

/// Append the mono mix of `channels` (equal lengths) to `mix`: each channel divided by their
/// count, summed in channel order — the one way every tool mixes, so streamed and in-memory
/// results agree to the bit.
pub(crate) fn mix_into(mix: &mut Vec<f32>, channels: &[impl AsRef<[f32]>]) {
    let count = channels.len().max(1) as f32;
    let len = channels.first().map_or(0, |c| c.as_ref().len());
    let start = mix.len();
    mix.resize(start + len, 0.0);
    for channel in channels {
        for (out, sample) in mix[start..].iter_mut().zip(channel.as_ref()) {
            *out += sample / count;
        }
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

/// [`read_audio`] into memory, refusing a file of more than [`MAX_SAMPLES`] samples (a WAV
/// before anything is allocated) and a compressed file whose decoded samples pass `budget`
/// bytes (it stops decoding there). Work that needs only a pass over the samples streams them
/// instead ([`AudioStream`]).
pub fn read_audio_within(path: &Path, budget: u64) -> Result<Audio> {
    let mut stream = AudioStream::open(path)?;
    let count = stream.channels();
    let invalid = |message: String| DspError::InvalidInput {
        path: path.display().to_string(),
        message,
    };
    let compressed = match stream.declared_frames() {
        Some(frames) if stream.is_wav() => {
            let samples = frames * count as u64;
            if samples > MAX_SAMPLES {
                return Err(invalid(format!(
                    "{samples} samples is more than Baton reads at once ({MAX_SAMPLES})"
                )));
            }
            false
        }
        _ => true,
    };
    // A WAV's length is checked against its file size; a compressed file's claim is not
    // reserved for (a FLAC header may claim any length).
    let capacity = match (compressed, stream.declared_frames()) {
        (false, Some(frames)) => usize::try_from(frames).unwrap_or(0),
        _ => 0,
    };
    let mut channels = vec![Vec::with_capacity(capacity); count];
    let mut chunk = Vec::new();
    // A compressed file is collected in packet-sized steps, so the budget stops it close to
    // where it is passed.
    let step = if compressed { 4096 } else { CHUNK_FRAMES };
    while stream.read(&mut chunk, step)? > 0 {
        for (all, part) in channels.iter_mut().zip(&chunk) {
            all.extend_from_slice(part);
        }
        let samples = stream.position() * count as u64;
        if compressed && samples > MAX_SAMPLES {
            return Err(invalid(format!(
                "more than {MAX_SAMPLES} samples, more than Baton reads at once"
            )));
        }
        // A few kilobytes of FLAC can hold gigabytes of silence: stop before the decoded
        // samples pass the call's memory, not after.
        if compressed && samples * 4 > budget {
            return Err(invalid(format!(
                "the decoded audio passes {} after {:.2} s; a call may use {} \
                 ([limits] call_memory_mb)",
                baton_kit::shown_bytes(samples * 4),
                stream.seconds(),
                baton_kit::shown_bytes(budget)
            )));
        }
    }
    Ok(Audio {
        sample_rate: stream.sample_rate(),
        channels,
    })
}

/// Read a WAV (or any audio file Baton reads) into memory.
pub fn read_wav(path: &Path) -> Result<Audio> {
    read_audio(path)
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
