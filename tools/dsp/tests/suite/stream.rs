//! Streaming: a file measured a chunk at a time gives the in-memory result, whatever the
//! chunk size.

use baton_dsp::{
    Analysis, Audio, AudioStream, LoudnessMeter, Unwatched, analyze, analyze_file, read_audio,
    write_wav,
};
use pretty_assertions::assert_eq;

/// Music-like test audio: two tones, a swell and deterministic noise per channel.
fn program(rate: u32, seconds: f64, channels: usize) -> Audio {
    let frames = (f64::from(rate) * seconds) as usize;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let channels = (0..channels)
        .map(|c| {
            (0..frames)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let noise = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    let t = i as f64 / f64::from(rate);
                    let swell = 0.2 + 0.8 * (0.5 + 0.5 * (t * 0.3 + c as f64).sin());
                    let tone = (t * 440.0 * std::f64::consts::TAU).sin() * 0.3
                        + (t * (1000.0 + 100.0 * c as f64) * std::f64::consts::TAU).sin() * 0.1;
                    ((tone * swell) as f32) + noise * 0.05
                })
                .collect()
        })
        .collect();
    Audio {
        sample_rate: rate,
        channels,
    }
}

fn meter_in_chunks(audio: &Audio, chunk: usize) -> baton_dsp::Loudness {
    let mut meter = LoudnessMeter::new(audio.channels.len(), audio.sample_rate);
    let mut start = 0;
    while start < audio.frames() {
        let end = (start + chunk).min(audio.frames());
        let slices: Vec<&[f32]> = audio.channels.iter().map(|c| &c[start..end]).collect();
        meter.push(&slices);
        start = end;
    }
    meter.finish()
}

/// The meter adds in the same order whatever the chunking: equal to the bit, at 48 kHz
/// (stereo and an odd channel) and at 11025 Hz (segment edges that fall between samples).
#[test]
fn loudness_is_the_same_to_the_bit_whatever_the_chunk_size() {
    for (rate, seconds, channels, chunks) in [
        (48_000, 34.0, 3, &[4799usize, 65_536][..]),
        (11_025, 33.0, 1, &[1, 4799, 65_536][..]),
    ] {
        let audio = program(rate, seconds, channels);
        let whole = meter_in_chunks(&audio, audio.frames());
        assert!(whole.integrated.is_some() && whole.range > 0.0, "{whole:?}");
        for &chunk in chunks {
            assert_eq!(
                meter_in_chunks(&audio, chunk),
                whole,
                "{rate} Hz, chunk {chunk}"
            );
        }
    }
}

/// `dsp_analyze` streams the file; the result is the in-memory analysis (loudness, peaks and
/// spectrum exactly; sums over all samples within rounding).
#[test]
fn a_streamed_file_measures_like_the_audio_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    for (name, audio) in [
        ("stereo.wav", program(48_000, 200.0, 2)),
        ("short.wav", program(44_100, 0.05, 2)),
        ("five.wav", program(96_000, 3.5, 5)),
    ] {
        let path = dir.path().join(name);
        write_wav(&path, &audio).unwrap();
        let streamed = analyze_file(&path, &Unwatched).unwrap();
        let in_memory = analyze(&read_audio(&path).unwrap(), &Unwatched).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        assert!(close(
            streamed.rms_dbfs.unwrap(),
            in_memory.rms_dbfs.unwrap()
        ));
        assert!(close(streamed.dc_offset, in_memory.dc_offset));
        let same_sums = Analysis {
            rms_dbfs: in_memory.rms_dbfs,
            dc_offset: in_memory.dc_offset,
            ..streamed.clone()
        };
        assert_eq!(same_sums, in_memory, "{name}");
    }
}

/// A stream reads whole frames in order and says where it is.
#[test]
fn a_stream_reads_the_file_in_whole_frames() {
    let dir = tempfile::tempdir().unwrap();
    let audio = program(48_000, 3.0, 2);
    let path = dir.path().join("three.wav");
    write_wav(&path, &audio).unwrap();
    let mut stream = AudioStream::open(&path).unwrap();
    assert_eq!(
        (
            stream.sample_rate(),
            stream.channels(),
            stream.declared_frames()
        ),
        (48_000, 2, Some(144_000))
    );
    let mut chunk = Vec::new();
    let mut left = Vec::new();
    while stream.read(&mut chunk, 10_000).unwrap() > 0 {
        assert!(chunk[0].len() <= 10_000 && chunk[0].len() == chunk[1].len());
        left.extend_from_slice(&chunk[0]);
    }
    assert_eq!(stream.position(), 144_000);
    assert_eq!(left, audio.channels[0]);
    assert_eq!(stream.read(&mut chunk, 10_000).unwrap(), 0);
}

/// Every WAV encoding Baton reads is decoded in bulk to exactly the samples written — 8-bit
/// unsigned, 16, 24 in 3 bytes and in 4 (left-justified, as `WAVE_FORMAT_EXTENSIBLE` defines
/// and libsndfile writes), 32-bit integer and 32-bit float, with an odd channel count.
#[test]
fn every_wav_encoding_reads_back_exactly_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        (8, 1, hound::SampleFormat::Int),
        (16, 2, hound::SampleFormat::Int),
        (24, 3, hound::SampleFormat::Int),
        (24, 4, hound::SampleFormat::Int),
        (32, 4, hound::SampleFormat::Int),
        (32, 4, hound::SampleFormat::Float),
    ];
    let source = program(44_100, 0.5, 3);
    for (bits, bytes, format) in formats {
        let path = dir.path().join(format!("{bits}-{bytes}-{format:?}.wav"));
        let spec = hound::WavSpec {
            channels: 3,
            sample_rate: 44_100,
            bits_per_sample: bits,
            sample_format: format,
        };
        let spec_ex = hound::WavSpecEx {
            spec,
            bytes_per_sample: bytes,
        };
        let mut writer = hound::WavWriter::new_with_spec_ex(
            std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
            spec_ex,
        )
        .unwrap();
        let full = (1i64 << (bits - 1)) as f32;
        let scale = 1.0 / (1u64 << (bits - 1)) as f32;
        let mut expected = Vec::new();
        for frame in 0..source.frames() {
            for channel in &source.channels {
                let x = channel[frame];
                match format {
                    hound::SampleFormat::Float => {
                        writer.write_sample(x).unwrap();
                        expected.push(x);
                    }
                    hound::SampleFormat::Int => {
                        let v = (f64::from(x) * f64::from(full)).round() as i64;
                        let v = v.clamp(-(full as i64), full as i64 - 1) as i32;
                        writer.write_sample(v).unwrap();
                        expected.push(v as f32 * scale);
                    }
                }
            }
        }
        writer.finalize().unwrap();
        if bytes == 4 && bits == 24 {
            // hound writes 24 bits low in the 4 bytes; the format puts them at the top.
            let mut file = std::fs::read(&path).unwrap();
            let data = file.windows(4).position(|w| w == b"data").unwrap() + 8;
            for sample in file[data..].chunks_exact_mut(4) {
                let v = i32::from_le_bytes([sample[0], sample[1], sample[2], sample[3]]);
                sample.copy_from_slice(&(v << 8).to_le_bytes());
            }
            std::fs::write(&path, file).unwrap();
        }

        let ours = read_audio(&path).unwrap();
        let interleaved: Vec<f32> = (0..ours.frames())
            .flat_map(|f| ours.channels.iter().map(move |c| c[f]))
            .collect();
        let first = interleaved.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(
            (interleaved.len(), first),
            (expected.len(), None),
            "{bits} bits in {bytes} bytes, {format:?}: first difference {:?}",
            first.map(|i| (interleaved[i], expected[i]))
        );
    }
}

/// `dsp_analyze`'s true peak is BS.1770-4 Annex 2 exactly as the `ebur128` crate computes it
/// (4× below 96 kHz, 2× below 192 kHz, none above), for any channel count and chunking.
#[test]
fn the_true_peak_is_the_ebur128_crates_exactly() {
    for (rate, channels) in [
        (44_100, 2),
        (48_000, 1),
        (48_000, 3),
        (96_000, 2),
        (192_000, 6),
    ] {
        let audio = program(rate, 1.5, channels);
        let mut reference = ebur128::EbuR128::new(
            u32::try_from(channels).unwrap(),
            rate,
            ebur128::Mode::TRUE_PEAK,
        )
        .unwrap();
        let slices: Vec<&[f32]> = audio.channels.iter().map(Vec::as_slice).collect();
        reference.add_frames_planar_f32(&slices).unwrap();
        let expected = (0..channels)
            .map(|c| reference.true_peak(u32::try_from(c).unwrap()).unwrap())
            .fold(0.0f64, f64::max);
        for chunk in [1000, 4799, audio.frames()] {
            let mut ours = baton_dsp::Bs1770Peak::new(channels, rate);
            let mut start = 0;
            while start < audio.frames() {
                let end = (start + chunk).min(audio.frames());
                let part: Vec<&[f32]> = audio.channels.iter().map(|c| &c[start..end]).collect();
                ours.push(&part);
                start = end;
            }
            let sample_peak = audio
                .channels
                .iter()
                .flatten()
                .fold(0.0f32, |m, s| m.max(s.abs()));
            let got = f64::from(ours.peak().max(sample_peak));
            assert_eq!(
                got, expected,
                "{rate} Hz, {channels} channels, chunk {chunk}"
            );
        }
    }
}

/// `dsp_spectrum` streamed gives the in-memory spectrum to the bit: the frame count, every
/// peak, and the spectrogram PNG byte for byte, for hops that do and do not divide the half
/// window, a file shorter than a frame, one spanning several read chunks, and one long
/// enough that the picture pools many frames per column.
#[test]
fn a_streamed_spectrum_is_the_in_memory_one_to_the_bit() {
    let dir = tempfile::tempdir().unwrap();
    for (name, audio) in [
        ("stereo.wav", program(48_000, 9.0, 2)),
        ("short.wav", program(44_100, 0.01, 1)),
        ("long.wav", program(8_000, 700.0, 1)),
    ] {
        let path = dir.path().join(name);
        write_wav(&path, &audio).unwrap();
        let decoded = read_audio(&path).unwrap();
        for (n_fft, hop) in [(2048, 512), (1024, 300), (4096, 4096), (512, 37)] {
            for image in [false, true] {
                let window = baton_dsp::Window::Hann;
                let streamed =
                    baton_dsp::spectrum_file(&path, n_fft, hop, window, 12, image, &Unwatched)
                        .unwrap();
                let in_memory =
                    baton_dsp::spectrum(&decoded, n_fft, hop, window, 12, image, &Unwatched)
                        .unwrap();
                assert_eq!(
                    streamed, in_memory,
                    "{name} fft {n_fft} hop {hop} image {image}"
                );
            }
        }
    }
}
