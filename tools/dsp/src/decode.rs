//! Compressed audio — FLAC, Ogg Vorbis, MP3 — decoded with Symphonia's pure-Rust decoders.
//!
//! Decoding is strict: a damaged packet, a stream that changes its rate or channel count, or
//! more samples than [`MAX_SAMPLES`] is an error naming where it happened, never a silent gap
//! or a cut-off analysis. Encoder delay and padding are trimmed (gapless), so an MP3 has the
//! length of the audio that was encoded.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::audio::{Audio, MAX_CHANNELS, MAX_RATE, MAX_SAMPLES, MIN_RATE};
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

/// Decode a whole compressed file (read from its start, whatever was read before) into
/// planar `f32`.
pub(crate) fn read_compressed(
    shown: &str,
    file: File,
    kind: Compressed,
    budget: u64,
) -> Result<Audio> {
    let invalid = |message: String| DspError::InvalidInput {
        path: shown.to_owned(),
        message,
    };
    let mut stream = open(shown, file, kind)?;
    let mut pcm = Pcm::default();
    let mut next_pts: Option<i64> = None;
    loop {
        let packet = match stream.format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(error) => {
                return Err(invalid(format!(
                    "the stream is damaged after {:.2} s: {error}",
                    pcm.seconds()
                )));
            }
        };
        if packet.track_id != stream.track_id {
            continue;
        }
        // Each Ogg packet starts where the last one ended; a jump means pages were lost or
        // skipped (the reader drops a page that fails its checksum without a word, and an Ogg
        // stream declares no length to hold the total against). FLAC and MP3 declare theirs.
        let pts = packet.pts.get();
        if let Some(expected) = next_pts
            && pts != expected
            && kind == Compressed::Ogg
        {
            return Err(invalid(format!(
                "the stream jumps after {:.2} s (from tick {expected} to {pts}): pages or \
                 frames are missing or damaged",
                pcm.seconds()
            )));
        }
        let span = packet.trim_start.get() + packet.dur.get() + packet.trim_end.get();
        next_pts = Some(pts.saturating_add(i64::try_from(span).unwrap_or(i64::MAX)));
        let decoded = stream.decoder.decode(&packet).map_err(|error| {
            let at = pcm.seconds();
            invalid(match error {
                SymphoniaError::DecodeError(why) => {
                    format!("the audio data is damaged at {at:.2} s: {why}")
                }
                other => format!("decoding stopped at {at:.2} s: {other}"),
            })
        })?;
        pcm.append(&decoded, &invalid)?;
        // A few kilobytes of FLAC can hold gigabytes of silence: stop before the decoded
        // samples pass the call's memory, not after.
        let held = pcm.samples() * 4;
        if held > budget {
            return Err(invalid(format!(
                "the decoded audio passes {} after {:.2} s; a call may use {} \
                 ([limits] call_memory_mb)",
                baton_kit::shown_bytes(held),
                pcm.seconds(),
                baton_kit::shown_bytes(budget)
            )));
        }
    }
    pcm.finish(kind, stream.declared, &invalid)
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

/// The samples decoded so far, planar, in the format the first packet set.
#[derive(Default)]
struct Pcm {
    channels: Vec<Vec<f32>>,
    rate: u32,
    /// Reused between packets: one packet's samples as the decoder gives them.
    interleaved: Vec<f32>,
}

impl Pcm {
    /// Samples decoded so far, every channel.
    fn samples(&self) -> u64 {
        self.channels.iter().map(|c| c.len() as u64).sum()
    }

    /// Seconds decoded so far, to say where a problem was found.
    fn seconds(&self) -> f64 {
        self.channels.first().map_or(0.0, |c| c.len() as f64) / f64::from(self.rate.max(1))
    }

    /// Add one packet's samples; the first sets the channel count and rate, which may not
    /// change after it.
    fn append(
        &mut self,
        decoded: &GenericAudioBufferRef<'_>,
        invalid: &dyn Fn(String) -> DspError,
    ) -> Result<()> {
        let spec = decoded.spec();
        let count = spec.channels().count();
        if self.channels.is_empty() {
            if count == 0 || count > usize::from(MAX_CHANNELS) {
                return Err(invalid(format!(
                    "{count} channels; Baton reads 1 to {MAX_CHANNELS}"
                )));
            }
            if !(MIN_RATE..=MAX_RATE).contains(&spec.rate()) {
                return Err(invalid(format!(
                    "sample rate {} Hz is outside {MIN_RATE}–{MAX_RATE} Hz",
                    spec.rate()
                )));
            }
            self.rate = spec.rate();
            self.channels = vec![Vec::new(); count];
        } else if count != self.channels.len() || spec.rate() != self.rate {
            return Err(invalid(format!(
                "the stream changes from {} channels at {} Hz to {count} at {} Hz after \
                 {:.2} s; Baton reads one format per file",
                self.channels.len(),
                self.rate,
                spec.rate(),
                self.seconds()
            )));
        }
        let held = self.channels.first().map_or(0, Vec::len) + decoded.frames();
        if (held as u64).saturating_mul(count as u64) > MAX_SAMPLES {
            return Err(invalid(format!(
                "more than {MAX_SAMPLES} samples, more than Baton reads at once"
            )));
        }
        self.interleaved.resize(decoded.samples_interleaved(), 0.0);
        decoded.copy_to_slice_interleaved(&mut self.interleaved);
        for frame in self.interleaved.chunks_exact(count) {
            for (channel, &sample) in self.channels.iter_mut().zip(frame) {
                channel.push(sample);
            }
        }
        Ok(())
    }

    /// The audio, unless the stream held none or fewer (or more) frames than it declared.
    fn finish(
        self,
        kind: Compressed,
        declared: Option<u64>,
        invalid: &dyn Fn(String) -> DspError,
    ) -> Result<Audio> {
        if self.channels.first().is_none_or(Vec::is_empty) {
            return Err(invalid(format!(
                "the {} stream holds no audio",
                kind.name()
            )));
        }
        let decoded = self.channels.first().map_or(0, Vec::len) as u64;
        if let Some(declared) = declared
            && declared != decoded
        {
            return Err(invalid(format!(
                "the {} file declares {declared} frames but its stream holds {decoded}: \
                 truncated or corrupt",
                kind.name()
            )));
        }
        Ok(Audio {
            sample_rate: self.rate,
            channels: self.channels,
        })
    }
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
