//! Audio read a chunk at a time, so a measurement of an hour-long file holds a few hundred
//! kilobytes of samples rather than the whole file. Every reader of audio goes through here:
//! [`read_audio_within`](crate::read_audio_within) is this stream collected.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::audio::{MAX_CHANNELS, MAX_RATE, MIN_RATE};
use crate::decode::{Compressed, CompressedSource};
use crate::{DspError, Result};

/// Frames per chunk a streaming reader asks for: 1.4 s at 48 kHz, 512 KiB of stereo floats.
pub const CHUNK_FRAMES: usize = 65_536;

/// An audio file open for reading in chunks: WAV (PCM 8/16/24/32-bit integer, 32-bit float),
/// FLAC, Ogg Vorbis or MP3, told by its first bytes.
pub struct AudioStream {
    shown: String,
    sample_rate: u32,
    channels: usize,
    /// Frames delivered so far.
    position: u64,
    source: Source,
}

enum Source {
    Wav(WavSource),
    Compressed(Box<CompressedSource>),
}

struct WavSource {
    /// Positioned at the next sample of the data chunk.
    reader: BufReader<File>,
    /// How each sample is stored.
    encoding: Encoding,
    /// Samples (all channels) the header declares and not yet read.
    remaining: u64,
    /// Whole frames the header declares.
    frames: u64,
    sample_rate: u32,
    channels: usize,
    /// Reused: one chunk's bytes.
    bytes: Vec<u8>,
}

/// A WAV sample's storage: (bytes, valid bits) as hound reads them, decoded in bulk here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Unsigned 8-bit.
    U8,
    I16,
    I24,
    /// 24 valid bits in a 4-byte container.
    I24In32,
    I32,
    F32,
}

impl Encoding {
    fn bytes(self) -> usize {
        match self {
            Encoding::U8 => 1,
            Encoding::I16 => 2,
            Encoding::I24 => 3,
            Encoding::I24In32 | Encoding::I32 | Encoding::F32 => 4,
        }
    }
}

impl std::fmt::Debug for AudioStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioStream")
            .field("path", &self.shown)
            .field("sample_rate", &self.sample_rate)
            .field("channels", &self.channels)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl AudioStream {
    /// Open an audio file and read its header (a compressed file's first packet).
    pub fn open(path: &Path) -> Result<AudioStream> {
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
        let source = if head.is_empty() || head.starts_with(b"RIFF") || head.starts_with(b"RF64") {
            Source::Wav(open_wav(&shown, file)?)
        } else {
            let Some(kind) = Compressed::sniff(head) else {
                return Err(DspError::InvalidInput {
                    path: shown,
                    message: format!(
                        "not an audio file Baton reads (WAV, FLAC, Ogg Vorbis or MP3): it starts \
                         with {}",
                        head.iter()
                            .take(8)
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                });
            };
            Source::Compressed(Box::new(CompressedSource::open(&shown, file, kind)?))
        };
        let (sample_rate, channels) = match &source {
            Source::Wav(wav) => (wav.sample_rate, wav.channels),
            Source::Compressed(compressed) => (compressed.rate(), compressed.channels()),
        };
        Ok(AudioStream {
            shown,
            sample_rate,
            channels,
            position: 0,
            source,
        })
    }

    /// Frames per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The path as shown in messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Frames the file declares (a WAV header, FLAC's STREAMINFO, a tagged MP3), when the
    /// declaration can be trusted; Ogg and untagged MP3 declare none.
    pub fn declared_frames(&self) -> Option<u64> {
        match &self.source {
            Source::Wav(wav) => Some(wav.frames),
            Source::Compressed(compressed) => compressed.declared(),
        }
    }

    /// Whether the file is a WAV (whose declared length is read before any sample).
    pub fn is_wav(&self) -> bool {
        matches!(self.source, Source::Wav(_))
    }

    /// Frames read so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Seconds read so far.
    pub fn seconds(&self) -> f64 {
        self.position as f64 / f64::from(self.sample_rate)
    }

    /// Replace `chunk`'s contents with the next frames (at most `max`, one `Vec` per
    /// channel); 0 at the end. A NaN or infinite sample is an error naming the first, with
    /// the count in the whole file.
    pub fn read(&mut self, chunk: &mut Vec<Vec<f32>>, max: usize) -> Result<usize> {
        chunk.resize_with(self.channels, Vec::new);
        for channel in chunk.iter_mut() {
            channel.clear();
        }
        let frames = match &mut self.source {
            Source::Wav(wav) => wav.fill(&self.shown, chunk, max)?,
            Source::Compressed(compressed) => compressed.fill(chunk, max)?,
        };
        if let Some((frame, channel, value)) = first_non_finite(chunk) {
            return Err(self.non_finite(chunk, frame, channel, value));
        }
        self.position += frames as u64;
        Ok(frames)
    }

    /// The error for a non-finite sample at `frame` of the current chunk: the rest of the
    /// file is read to count them all.
    fn non_finite(
        &mut self,
        chunk: &mut [Vec<f32>],
        frame: usize,
        channel: usize,
        value: f32,
    ) -> DspError {
        let at = self.position + frame as u64;
        let mut count = count_non_finite(chunk);
        loop {
            for channel in chunk.iter_mut() {
                channel.clear();
            }
            let read = match &mut self.source {
                Source::Wav(wav) => wav.fill(&self.shown, chunk, CHUNK_FRAMES),
                Source::Compressed(compressed) => compressed.fill(chunk, CHUNK_FRAMES),
            };
            match read {
                Ok(frames) if frames > 0 => count += count_non_finite(chunk),
                Ok(_) | Err(_) => break,
            }
        }
        DspError::InvalidInput {
            path: self.shown.clone(),
            message: format!(
                "sample {at} of channel {channel} (at {:.6} s) is {value}, not a number a \
                 signal can hold; {count} sample(s) in all are NaN or infinite",
                at as f64 / f64::from(self.sample_rate)
            ),
        }
    }
}

fn first_non_finite(chunk: &[Vec<f32>]) -> Option<(usize, usize, f32)> {
    chunk
        .iter()
        .enumerate()
        .filter_map(|(channel, samples)| {
            samples
                .iter()
                .position(|s| !s.is_finite())
                .map(|frame| (frame, channel, samples[frame]))
        })
        .min_by_key(|&(frame, channel, _)| (frame, channel))
}

fn count_non_finite(chunk: &[Vec<f32>]) -> usize {
    chunk
        .iter()
        .map(|c| c.iter().filter(|s| !s.is_finite()).count())
        .sum()
}

/// Read a WAV header, checking it before anything is allocated: a header may claim any
/// length, so the claim is held against the file's real size.
fn open_wav(shown: &str, file: File) -> Result<WavSource> {
    let invalid = |message: String| DspError::InvalidInput {
        path: shown.to_owned(),
        message,
    };
    let size = file
        .metadata()
        .map_err(|source| DspError::Io {
            action: "read",
            path: shown.to_owned(),
            source,
        })?
        .len();
    if size == 0 {
        return Err(invalid("the file is empty (0 bytes)".into()));
    }
    let io = |source| DspError::Io {
        action: "read",
        path: shown.to_owned(),
        source,
    };
    let mut file = file;
    file.rewind().map_err(io)?;
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
    // hound has checked the header and left the reader at the first sample; the container
    // size of a sample (24 bits in 3 bytes or 4) is the format chunk's block alignment.
    let mut reader = reader.into_inner();
    let data = reader.stream_position().map_err(io)?;
    let align = block_align(reader.get_mut())
        .map_err(io)?
        .map_err(|why| invalid(format!("not a WAV file Baton can read: {why}")))?;
    reader.seek(SeekFrom::Start(data)).map_err(io)?;
    let width = align / spec.channels;
    let encoding = match (width, spec.bits_per_sample, spec.sample_format) {
        (1, 8, hound::SampleFormat::Int) => Encoding::U8,
        (2, 16, hound::SampleFormat::Int) => Encoding::I16,
        (3, 24, hound::SampleFormat::Int) => Encoding::I24,
        (4, 24, hound::SampleFormat::Int) => Encoding::I24In32,
        (4, 32, hound::SampleFormat::Int) => Encoding::I32,
        (4, 32, hound::SampleFormat::Float) => Encoding::F32,
        _ => {
            return Err(invalid(format!(
                "a WAV encoding Baton does not read ({} bits in {} bytes): it reads PCM \
                 8/16/24/32-bit and 32-bit float",
                spec.bits_per_sample, width
            )));
        }
    };
    Ok(WavSource {
        reader,
        encoding,
        remaining: samples,
        frames: samples / u64::from(spec.channels),
        sample_rate: spec.sample_rate,
        channels: usize::from(spec.channels),
        bytes: Vec::new(),
    })
}

/// The block alignment of a RIFF file's one `fmt ` chunk before its data; `Ok(Err)` names why
/// there is none to trust (none in the first 64 chunks, or two that could disagree).
fn block_align(file: &mut File) -> std::io::Result<std::result::Result<u16, &'static str>> {
    file.seek(SeekFrom::Start(12))?;
    let mut found = None;
    for _ in 0..64 {
        let mut head = [0u8; 8];
        file.read_exact(&mut head)?;
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        match &head[..4] {
            b"data" => break,
            b"fmt " if found.is_some() => return Ok(Err("two format chunks")),
            b"fmt " => {
                let mut fmt = [0u8; 14];
                file.read_exact(&mut fmt)?;
                found = Some(u16::from_le_bytes([fmt[12], fmt[13]]));
                file.seek(SeekFrom::Current(
                    i64::from(size) + i64::from(size & 1) - 14,
                ))?;
            }
            _ => {
                file.seek(SeekFrom::Current(i64::from(size) + i64::from(size & 1)))?;
            }
        }
    }
    Ok(found.ok_or("no format chunk before the data"))
}

impl WavSource {
    /// Append up to `max` whole frames to `out`, decoding the bytes in bulk as hound decodes
    /// them one at a time (`x as f32 / 2^(bits-1)`), except 24 bits in 4 bytes (left-justified,
    /// as the format defines).
    fn fill(&mut self, shown: &str, out: &mut [Vec<f32>], max: usize) -> Result<usize> {
        let count = out.len();
        // A last frame with fewer samples than channels is not a frame.
        let frames = (self.remaining / count as u64).min(max as u64) as usize;
        let take = frames * count;
        let width = self.encoding.bytes();
        self.bytes.resize(take * width, 0);
        self.reader
            .read_exact(&mut self.bytes)
            .map_err(|error| DspError::InvalidInput {
                path: shown.to_owned(),
                message: format!("the audio data is cut short: {error}"),
            })?;
        let scale = |bits: u32| 1.0 / (1u64 << (bits - 1)) as f32;
        let bytes = &self.bytes;
        match self.encoding {
            Encoding::U8 => {
                let s = scale(8);
                deinterleave(bytes, 1, out, |b| {
                    i32::from(i16::from(b[0]) - 128) as f32 * s
                });
            }
            Encoding::I16 => {
                let s = scale(16);
                deinterleave(bytes, 2, out, |b| {
                    i32::from(i16::from_le_bytes([b[0], b[1]])) as f32 * s
                });
            }
            Encoding::I24 => {
                let s = scale(24);
                deinterleave(bytes, 3, out, |b| {
                    (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 * s
                });
            }
            Encoding::I24In32 => {
                let s = scale(24);
                // WAVE_FORMAT_EXTENSIBLE puts the valid bits at the top of the container
                // (libsndfile writes and reads it so; hound reads the low bytes, wrongly).
                deinterleave(bytes, 4, out, |b| {
                    (i32::from_le_bytes([b[0], b[1], b[2], b[3]]) >> 8) as f32 * s
                });
            }
            Encoding::I32 => {
                let s = scale(32);
                deinterleave(bytes, 4, out, |b| {
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * s
                });
            }
            Encoding::F32 => deinterleave(bytes, 4, out, |b| {
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }),
        }
        self.remaining -= take as u64;
        Ok(frames)
    }
}

/// Decode interleaved samples of `width` bytes into one `Vec` per channel.
fn deinterleave(bytes: &[u8], width: usize, out: &mut [Vec<f32>], decode: impl Fn(&[u8]) -> f32) {
    let count = out.len();
    for (channel, samples) in out.iter_mut().enumerate() {
        samples.extend(
            bytes
                .chunks_exact(width)
                .skip(channel)
                .step_by(count)
                .map(&decode),
        );
    }
}
