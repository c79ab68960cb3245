//! Compressed audio — FLAC, Ogg Vorbis, MP3 — decoded with Symphonia's pure-Rust decoders.
//!
//! Decoding is strict: a damaged packet, a stream that changes its rate or channel count, or
//! a length other than the one declared is an error naming where it happened, never a silent gap
//! or a cut-off analysis. Encoder delay and padding are trimmed (gapless), so an MP3 has the
//! length of the audio that was encoded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::audio::{MAX_CHANNELS, MAX_RATE, MIN_RATE};
use crate::{DspError, Result};

/// A compressed format Baton reads, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compressed {
    Flac,
    Ogg,
    Mp3,
}

impl Compressed {
    /// The format whose signature `head` starts with.
    pub(crate) fn sniff(head: &[u8]) -> Option<Compressed> {
        match head {
            [b'f', b'L', b'a', b'C', ..] => Some(Compressed::Flac),
            [b'O', b'g', b'g', b'S', ..] => Some(Compressed::Ogg),
            // An ID3v2 tag, or an MPEG audio frame's sync word (layer III).
            [b'I', b'D', b'3', ..] => Some(Compressed::Mp3),
            [0xFF, second, ..] if second & 0xE6 == 0xE2 => Some(Compressed::Mp3),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compressed::Flac => "FLAC",
            Compressed::Ogg => "Ogg",
            Compressed::Mp3 => "MP3",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Compressed::Flac => "flac",
            Compressed::Ogg => "ogg",
            Compressed::Mp3 => "mp3",
        }
    }
}

/// A compressed file decoded a packet at a time: the samples of the packets decoded but not
/// yet taken wait in `pending`, planar.
pub(crate) struct CompressedSource {
    shown: String,
    kind: Compressed,
    stream: Stream,
    next_pts: Option<i64>,
    rate: u32,
    /// Per channel, the decoded samples not yet taken (from `taken` on).
    pending: Vec<Vec<f32>>,
    taken: usize,
    /// Frames decoded so far.
    decoded: u64,
    /// Reused between packets: one packet's samples as the decoder gives them.
    interleaved: Vec<f32>,
    ended: bool,
}

impl CompressedSource {
    /// Open `file` (read from its start, whatever was read before) and decode up to its first
    /// audio, which sets the channel count and rate.
    pub(crate) fn open(shown: &str, file: File, kind: Compressed) -> Result<CompressedSource> {
        let mut source = CompressedSource {
            shown: shown.to_owned(),
            kind,
            stream: open(shown, file, kind)?,
            next_pts: None,
            rate: 0,
            pending: Vec::new(),
            taken: 0,
            decoded: 0,
            interleaved: Vec::new(),
            ended: false,
        };
        while source.pending.first().is_none_or(Vec::is_empty) && !source.ended {
            source.decode_packet()?;
        }
        if source.pending.first().is_none_or(Vec::is_empty) {
            return Err(source.invalid(format!("the {} stream holds no audio", kind.name())));
        }
        Ok(source)
    }

    /// Frames per second.
    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    /// Channels.
    pub(crate) fn channels(&self) -> usize {
        self.pending.len()
    }

    /// The frames the file declares, when its declaration can be trusted.
    pub(crate) fn declared(&self) -> Option<u64> {
        self.stream.declared
    }

    fn invalid(&self, message: String) -> DspError {
        DspError::InvalidInput {
            path: self.shown.clone(),
            message,
        }
    }

    /// Seconds decoded so far, to say where a problem was found.
    fn seconds(&self) -> f64 {
        self.decoded as f64 / f64::from(self.rate.max(1))
    }

    /// Append up to `max` frames to `out` (one `Vec` per channel); 0 at the end. At the end
    /// the frames decoded are held against the frames declared.
    pub(crate) fn fill(&mut self, out: &mut [Vec<f32>], max: usize) -> Result<usize> {
        loop {
            let held = self.pending.first().map_or(0, Vec::len) - self.taken;
            if held >= max || (self.ended && held > 0) {
                let take = held.min(max);
                for (to, from) in out.iter_mut().zip(&self.pending) {
                    to.extend_from_slice(&from[self.taken..self.taken + take]);
                }
                self.taken += take;
                return Ok(take);
            }
            if self.ended {
                return Ok(0);
            }
            // Keep what is held at the front and decode more behind it.
            if self.taken > 0 {
                for channel in &mut self.pending {
                    channel.drain(..self.taken);
                }
                self.taken = 0;
            }
            self.decode_packet()?;
        }
    }

    /// Decode the next packet of the track into `pending`; at the end, set `ended` and check
    /// the length.
    fn decode_packet(&mut self) -> Result<()> {
        let packet = match self.stream.format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                self.ended = true;
                if let Some(declared) = self.stream.declared
                    && declared != self.decoded
                {
                    return Err(self.invalid(format!(
                        "the {} file declares {declared} frames but its stream holds {}: \
                         truncated or corrupt",
                        self.kind.name(),
                        self.decoded
                    )));
                }
                return Ok(());
            }
            Err(error) => {
                return Err(self.invalid(format!(
                    "the stream is damaged after {:.2} s: {error}",
                    self.seconds()
                )));
            }
        };
        if packet.track_id != self.stream.track_id {
            return Ok(());
        }
        // Each Ogg packet starts where the last one ended; a jump means pages were lost or
        // skipped (the reader drops a page that fails its checksum without a word, and an Ogg
        // stream declares no length to hold the total against). FLAC and MP3 declare theirs.
        let pts = packet.pts.get();
        if let Some(expected) = self.next_pts
            && pts != expected
            && self.kind == Compressed::Ogg
        {
            return Err(self.invalid(format!(
                "the stream jumps after {:.2} s (from tick {expected} to {pts}): pages or \
                 frames are missing or damaged",
                self.seconds()
            )));
        }
        let span = packet.trim_start.get() + packet.dur.get() + packet.trim_end.get();
        self.next_pts = Some(pts.saturating_add(i64::try_from(span).unwrap_or(i64::MAX)));
        let at = self.seconds();
        let decoded = match self.stream.decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(error) => {
                let message = match error {
                    SymphoniaError::DecodeError(why) => {
                        format!("the audio data is damaged at {at:.2} s: {why}")
                    }
                    other => format!("decoding stopped at {at:.2} s: {other}"),
                };
                return Err(DspError::InvalidInput {
                    path: self.shown.clone(),
                    message,
                });
            }
        };
        let spec = decoded.spec();
        let count = spec.channels().count();
        let rate = spec.rate();
        let frames = decoded.frames();
        if self.pending.is_empty() {
            if count == 0 || count > usize::from(MAX_CHANNELS) {
                return Err(DspError::InvalidInput {
                    path: self.shown.clone(),
                    message: format!("{count} channels; Baton reads 1 to {MAX_CHANNELS}"),
                });
            }
            if !(MIN_RATE..=MAX_RATE).contains(&rate) {
                return Err(DspError::InvalidInput {
                    path: self.shown.clone(),
                    message: format!("sample rate {rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz"),
                });
            }
            self.rate = rate;
            self.pending = vec![Vec::new(); count];
        } else if count != self.pending.len() || rate != self.rate {
            return Err(DspError::InvalidInput {
                path: self.shown.clone(),
                message: format!(
                    "the stream changes from {} channels at {} Hz to {count} at {rate} Hz \
                     after {at:.2} s; Baton reads one format per file",
                    self.pending.len(),
                    self.rate,
                ),
            });
        }
        self.interleaved.resize(decoded.samples_interleaved(), 0.0);
        decoded.copy_to_slice_interleaved(&mut self.interleaved);
        for frame in self.interleaved.chunks_exact(count) {
            for (channel, &sample) in self.pending.iter_mut().zip(frame) {
                channel.push(sample);
            }
        }
        self.decoded += frames as u64;
        Ok(())
    }
}

/// A compressed file opened for decoding its audio track.
struct Stream {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    /// The frames the file declares, when its declaration can be trusted.
    declared: Option<u64>,
}

/// Probe `file` as `kind` and set up a decoder for its audio track.
fn open(shown: &str, mut file: File, kind: Compressed) -> Result<Stream> {
    let invalid = |message: String| DspError::InvalidInput {
        path: shown.to_owned(),
        message,
    };
    let io = |source| DspError::Io {
        action: "read",
        path: shown.to_owned(),
        source,
    };
    let declares_length = match kind {
        Compressed::Flac => true,
        Compressed::Ogg => false,
        Compressed::Mp3 => mp3_length_tag(&mut file).map_err(io)?,
    };
    file.rewind().map_err(io)?;
    let mut hint = Hint::new();
    hint.with_extension(kind.extension());
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|error| {
            invalid(format!(
                "looks like {} but cannot be read as it: {error}",
                kind.name()
            ))
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| invalid(format!("the {} file holds no audio track", kind.name())))?;
    let track_id = track.id;
    // FLAC's STREAMINFO and an MP3's Xing/Info/VBRI tag say how long the audio is: frames lost
    // in between (a decoder skips what fails its checks) are caught against it. Without a tag
    // Symphonia estimates an MP3's length from its bitrate, which proves nothing; a streamed
    // FLAC may declare 0 (unknown).
    let declared = track
        .num_frames
        .filter(|&frames| declares_length && frames > 0);
    let params = track
        .codec_params
        .as_ref()
        .and_then(|params| params.audio())
        .ok_or_else(|| invalid("its audio track has no codec parameters".into()))?;
    let decoder = symphonia::default::get_codecs()
        // Gapless trimming follows the container's length; an untagged MP3's is only an
        // estimate, and trimming to it would cut real audio.
        .make_audio_decoder(
            params,
            &AudioDecoderOptions::default().gapless(kind != Compressed::Mp3 || declares_length),
        )
        .map_err(|error| invalid(format!("a codec Baton does not read: {error}")))?;
    Ok(Stream {
        format,
        decoder,
        track_id,
        declared,
    })
}

/// Whether an MP3's first frame holds a Xing, Info or VBRI tag (which counts its frames).
fn mp3_length_tag(file: &mut File) -> std::io::Result<bool> {
    let mut head = [0u8; 10];
    let read = file.read(&mut head)?;
    // An ID3v2 tag first: its size is four 7-bit bytes, plus a footer when flagged.
    let start = if read == head.len() && head.starts_with(b"ID3") {
        let size = head[6..10]
            .iter()
            .fold(0u64, |size, &byte| (size << 7) | u64::from(byte & 0x7F));
        let footer = if head[5] & 0x10 != 0 { 10 } else { 0 };
        10 + size + footer
    } else {
        0
    };
    file.seek(SeekFrom::Start(start))?;
    // The tag sits after the frame header and side information: within the first 64 bytes.
    let mut frame = Vec::with_capacity(64);
    file.take(64).read_to_end(&mut frame)?;
    Ok([b"Xing", b"Info", b"VBRI"]
        .iter()
        .any(|tag| frame.windows(4).any(|window| window == *tag)))
}
