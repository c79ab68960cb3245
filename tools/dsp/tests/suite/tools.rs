//! The pack's tools called as the gate calls them, on audio written by the test, and on
//! inputs that are not what they claim to be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use baton_dsp::{
    AnalyzeArgs, Audio, DspAnalyze, DspFilter, DspResponse, DspSeparate, DspSpectrum, FilterArgs,
    ResponseArgs, SeparateArgs, Separator, SpectrumArgs, write_wav,
};
use baton_kit::{Attachment, Tool, ToolContext, ToolError};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn ctx() -> ToolContext {
    ToolContext::new(CancellationToken::new())
}

fn sine(rate: u32, seconds: f64, freq: f64, amp: f32) -> Vec<f32> {
    (0..(f64::from(rate) * seconds) as usize)
        .map(|i| amp * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin() as f32)
        .collect()
}

fn write(dir: &Path, name: &str, audio: &Audio) -> String {
    let path = dir.join(name);
    write_wav(&path, audio).unwrap();
    path.display().to_string()
}

/// Floats rounded so snapshots do not depend on the last bits of `sin`.
fn rounded(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            json!((x * 1e4).round() / 1e4)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(rounded).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, rounded(v))).collect())
        }
        other => other,
    }
}

#[tokio::test]
async fn analyze_reports_levels_loudness_dc_clipping_and_pitch() {
    let dir = tempfile::tempdir().unwrap();
    // Left: 1 kHz at −6 dBFS with 0.01 DC; right: the same, with 5 samples forced to full scale.
    let left: Vec<f32> = sine(48_000, 3.0, 1000.0, 0.5)
        .iter()
        .map(|s| s + 0.01)
        .collect();
    let mut right = sine(48_000, 3.0, 1000.0, 0.5);
    for i in 0..5 {
        right[1000 + i * 7] = 1.0;
    }
    let path = write(
        dir.path(),
        "tone.wav",
        &Audio {
            sample_rate: 48_000,
            channels: vec![left, right],
        },
    );
    let analysis = DspAnalyze.call(AnalyzeArgs { path }, ctx()).await.unwrap();
    assert_eq!(analysis.clipped_samples, 5);
    assert!(
        (analysis.dc_offset - 0.01).abs() < 1e-4,
        "{}",
        analysis.dc_offset
    );
    assert!((analysis.dominant_hz.unwrap() - 1000.0).abs() < 1.0);
    assert!((analysis.rms_dbfs.unwrap() - -9.03).abs() < 0.05);
    insta::assert_json_snapshot!(
        "analyze_tone",
        rounded(serde_json::to_value(&analysis).unwrap())
    );
}

#[tokio::test]
async fn spectrum_finds_both_tones_and_draws_a_spectrogram() {
    let dir = tempfile::tempdir().unwrap();
    let a = sine(44_100, 2.0, 440.0, 0.5);
    let b = sine(44_100, 2.0, 3000.0, 0.05);
    let mix: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let path = write(
        dir.path(),
        "two.wav",
        &Audio {
            sample_rate: 44_100,
            channels: vec![mix],
        },
    );
    let png = dir.path().join("two.png").display().to_string();
    let out = DspSpectrum
        .call(
            SpectrumArgs {
                path,
                fft_size: 8192,
                hop: None,
                window: baton_dsp::Window::Blackman,
                max_peaks: 2,
                spectrogram: Some(png.clone()),
            },
            ctx(),
        )
        .await
        .unwrap();
    assert_eq!(out.peaks.len(), 2);
    assert!((out.peaks[0].hz - 440.0).abs() < 1.0, "{:?}", out.peaks);
    assert!((out.peaks[0].db - -6.02).abs() < 0.1, "{:?}", out.peaks);
    assert!((out.peaks[1].hz - 3000.0).abs() < 1.0, "{:?}", out.peaks);
    assert!((out.peaks[1].db - -26.02).abs() < 0.1, "{:?}", out.peaks);
    let written = std::fs::read(&png).unwrap();
    assert_eq!(&written[1..4], b"PNG");
    let attachments = DspSpectrum.attachments(&out);
    assert_eq!(
        attachments,
        vec![Attachment::Image {
            mime_type: "image/png".into(),
            data: written
        }]
    );
    let info = out.spectrogram.unwrap();
    assert_eq!((info.width, info.height), (out.frames, 1024));
}

#[tokio::test]
async fn filter_output_does_not_depend_on_the_block_size() {
    let dir = tempfile::tempdir().unwrap();
    let noise: Vec<f32> = (0..48_000u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 24) as f32) - 0.5)
        .collect();
    let path = write(
        dir.path(),
        "noise.wav",
        &Audio {
            sample_rate: 48_000,
            channels: vec![noise.clone(), noise],
        },
    );
    let chain: Vec<baton_dsp::FilterSpec> = serde_json::from_value(json!([
        {"type": "highpass", "freq_hz": 80},
        {"type": "peaking", "freq_hz": 2500, "q": 1.2, "gain_db": -4},
        {"type": "lowpass", "freq_hz": 9000, "q": 0.9}
    ]))
    .unwrap();
    let mut outputs = Vec::new();
    for block_size in [1, 128, 16_384] {
        let out = dir.path().join(format!("out-{block_size}.wav"));
        let result = DspFilter
            .call(
                FilterArgs {
                    path: path.clone(),
                    out: out.display().to_string(),
                    chain: chain.clone(),
                    block_size,
                },
                ctx(),
            )
            .await
            .unwrap();
        assert_eq!(result.frames, 48_000);
        assert_eq!(result.blocks, 48_000usize.div_ceil(block_size));
        outputs.push(baton_dsp::read_wav(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[1], outputs[2]);
}

#[tokio::test]
async fn response_spans_min_hz_to_nyquist_and_its_impulse_settles() {
    let out = DspResponse
        .call(
            serde_json::from_value::<ResponseArgs>(json!({
                "sample_rate": 48000,
                "chain": [{"type": "lowpass", "freq_hz": 1000}],
                "points": 5,
                "impulse_length": 4096
            }))
            .unwrap(),
            ctx(),
        )
        .await
        .unwrap();
    assert_eq!(out.frequencies_hz.len(), 5);
    assert!((out.frequencies_hz[0] - 10.0).abs() < 1e-9);
    assert!((out.frequencies_hz[4] - 24_000.0).abs() < 1e-6);
    assert!(out.magnitude_db[0].abs() < 0.01);
    assert_eq!(
        out.magnitude_db[4], -400.0,
        "a lowpass has a zero at Nyquist"
    );
    assert!(out.impulse[4000].abs() < 1e-9);
    insta::assert_json_snapshot!(
        "response_lowpass",
        rounded(serde_json::to_value(&out.coefficients).unwrap())
    );
}

#[tokio::test]
async fn separate_writes_stems_that_add_back_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut music = sine(22_050, 2.0, 330.0, 0.3);
    for start in (0..music.len()).step_by(5512) {
        for (i, sample) in music[start..].iter_mut().take(200).enumerate() {
            *sample += 0.5 * (-(i as f32) / 30.0).exp() * if i % 2 == 0 { 1.0 } else { -1.0 };
        }
    }
    let path = write(
        dir.path(),
        "beat.wav",
        &Audio {
            sample_rate: 22_050,
            channels: vec![music],
        },
    );
    let out = DspSeparate(Arc::new(Separator::default()))
        .call(
            serde_json::from_value::<SeparateArgs>(json!({
                "path": path,
                "out_dir": dir.path().join("stems").display().to_string()
            }))
            .unwrap(),
            ctx(),
        )
        .await
        .unwrap();
    assert!(out.reconstruction_error_db.unwrap() < -60.0, "{out:?}");
    let names: Vec<&str> = out.stems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["harmonic", "percussive"]);
    let harmonic_share = out.stems[0].share;
    assert!(harmonic_share > 0.5 && harmonic_share < 1.0, "{out:?}");
    assert!(out.stems[0].path.ends_with("beat.harmonic.wav"));
    assert_eq!(
        baton_dsp::read_wav(Path::new(&out.stems[1].path))
            .unwrap()
            .frames(),
        44_100
    );

    // No model configured: `onnx` says what to set.
    let error = DspSeparate(Arc::new(Separator::default()))
        .call(
            serde_json::from_value::<SeparateArgs>(json!({
                "path": path,
                "out_dir": dir.path().join("stems").display().to_string(),
                "method": "onnx"
            }))
            .unwrap(),
            ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("no separation model configured")
            && error.to_string().contains("BATON_SEPARATION_MODEL"),
        "{error}"
    );
}

/// A RIFF/WAVE header: PCM `format`, the given fields, and a data chunk declaring `data` bytes
/// followed by `body` real bytes.
fn header(format: u16, channels: u16, rate: u32, bits: u16, data: u32, body: usize) -> Vec<u8> {
    let block = channels * bits.div_ceil(8);
    let mut out = Vec::new();
    out.extend(b"RIFF");
    out.extend(36u32.wrapping_add(data).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(format.to_le_bytes());
    out.extend(channels.to_le_bytes());
    out.extend(rate.to_le_bytes());
    out.extend((rate * u32::from(block)).to_le_bytes());
    out.extend(block.to_le_bytes());
    out.extend(bits.to_le_bytes());
    out.extend(b"data");
    out.extend(data.to_le_bytes());
    out.extend(vec![0u8; body]);
    out
}

#[tokio::test]
async fn bad_files_get_a_clear_invalid_input_error_and_no_allocation_of_their_claims() {
    let dir = tempfile::tempdir().unwrap();
    let good = header(1, 2, 48_000, 16, 400, 400);
    let mut rf64 = good.clone();
    rf64[..4].copy_from_slice(b"RF64");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wav", Vec::new(), "the file is empty (0 bytes)"),
        (
            "text.wav",
            b"these are not the samples you are looking for".to_vec(),
            "not an audio file Baton reads (WAV, FLAC, Ogg Vorbis or MP3): it starts with 74 68 \
             65 73 65 20 61 72",
        ),
        ("cut.wav", good[..20].to_vec(), "invalid input"),
        (
            "zero-channels.wav",
            header(1, 0, 48_000, 16, 400, 400),
            "channels",
        ),
        (
            "rate-1hz.wav",
            header(1, 2, 1, 16, 400, 400),
            "sample rate 1 Hz is outside 8000–384000 Hz",
        ),
        (
            "rate-4mhz.wav",
            header(1, 2, 4_000_000, 16, 400, 400),
            "sample rate 4000000 Hz is outside 8000–384000 Hz",
        ),
        (
            "huge.wav",
            header(1, 2, 48_000, 16, 0xFFFF_FFF0, 400),
            "the header declares 4294967280 bytes of audio but the file is 444 bytes",
        ),
        ("rf64-20gb.wav", rf64, "not a WAV file"),
        (
            "short-data.wav",
            header(1, 2, 48_000, 16, 4000, 400),
            "truncated or corrupt",
        ),
        (
            "adpcm.wav",
            header(2, 2, 48_000, 4, 400, 400),
            "invalid input",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = DspAnalyze
            .call(
                AnalyzeArgs {
                    path: path.display().to_string(),
                },
                ctx(),
            )
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("invalid input")
                && message.contains(name)
                && message.contains(expected),
            "{name}: {message}"
        );
    }
    let missing = DspAnalyze
        .call(
            AnalyzeArgs {
                path: dir.path().join("nope.wav").display().to_string(),
            },
            ctx(),
        )
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("cannot read"), "{missing}");
}

/// A float WAV holding NaN or infinite samples is refused, naming the first bad sample, by
/// every tool that reads audio — never measured as plausible numbers.
#[tokio::test]
async fn non_finite_samples_are_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bad) in [
        ("nan.wav", f32::NAN),
        ("inf.wav", f32::INFINITY),
        ("minus-inf.wav", f32::NEG_INFINITY),
    ] {
        let mut left = sine(48_000, 0.5, 440.0, 0.5);
        let mut right = left.clone();
        right[12_000] = bad;
        left[20_000] = bad;
        let path = write(
            dir.path(),
            name,
            &Audio {
                sample_rate: 48_000,
                channels: vec![left, right],
            },
        );
        let error = DspAnalyze
            .call(AnalyzeArgs { path: path.clone() }, ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("invalid input")
                && error.contains(&format!(
                    "sample 12000 of channel 1 (at 0.250000 s) is {bad}"
                ))
                && error.contains("2 sample(s) in all are NaN or infinite"),
            "{name}: {error}"
        );
        let spectrum = DspSpectrum
            .call(
                serde_json::from_value(json!({"path": path})).unwrap(),
                ctx(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            spectrum.contains("sample 12000 of channel 1"),
            "{name}: {spectrum}"
        );
    }
}

/// Work scales with `hop`: a hop under fft_size/16 is refused outright, and a call whose
/// estimated memory is over the call's budget is refused before it starts, naming `hop`.
#[tokio::test]
async fn work_over_the_budget_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "ten-seconds.wav",
        &Audio {
            sample_rate: 48_000,
            channels: vec![sine(48_000, 10.0, 440.0, 0.5)],
        },
    );
    let tiny_hop = DspSeparate(Arc::new(Separator::default()))
        .call(
            serde_json::from_value(json!({"path": path, "out_dir": dir.path().join("stems"), "fft_size": 4096, "hop": 1}))
                .unwrap(),
            ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        tiny_hop,
        "invalid arguments at `hop`: 1 must be from fft_size/16 (256) to the FFT size (4096)"
    );
    let tight = ctx().with_memory_budget(64 << 20);
    let separate = DspSeparate(Arc::new(Separator::default()))
        .call(
            serde_json::from_value(json!({"path": path, "out_dir": dir.path().join("stems"), "fft_size": 4096, "hop": 256}))
                .unwrap(),
            tight.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        separate,
        "invalid arguments at `hop`: separating 480000 samples with fft_size 4096 and hop 256 \
         needs about 93.5 MiB; a call may use 64.0 MiB ([limits] call_memory_mb)"
    );
    assert!(!dir.path().join("stems").exists(), "nothing was written");
    // A spectrum streams the file (a few frames and the pooled picture at a time): the same
    // call fits a budget the whole decoded file would not.
    let spectrum = DspSpectrum
        .call(
            serde_json::from_value(json!({"path": path, "fft_size": 65536, "hop": 4096, "spectrogram": dir.path().join("s.png")}))
                .unwrap(),
            ctx().with_memory_budget(1 << 20),
        )
        .await
        .unwrap();
    assert_eq!(spectrum.frames, 1 + 480_000 / 4096);
    assert!(
        (spectrum.peaks[0].hz - 440.0).abs() < 1.0,
        "{:?}",
        spectrum.peaks
    );
    // The default budget takes the same calls.
    DspSeparate(Arc::new(Separator::default()))
        .call(
            serde_json::from_value(json!({"path": path, "out_dir": dir.path().join("stems"), "fft_size": 4096, "hop": 256}))
                .unwrap(),
            ctx(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_parameters_name_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.wav",
        &Audio {
            sample_rate: 8_000,
            channels: vec![sine(8_000, 0.5, 100.0, 0.5)],
        },
    );
    let filter = |chain: Value| {
        let path = path.clone();
        let out = dir.path().join("b.wav").display().to_string();
        async move {
            DspFilter
                .call(
                    FilterArgs {
                        path,
                        out,
                        chain: serde_json::from_value(chain).unwrap(),
                        block_size: 64,
                    },
                    ctx(),
                )
                .await
                .unwrap_err()
        }
    };
    let cases = [
        (
            filter(
                json!([{"type": "lowpass", "freq_hz": 100}, {"type": "notch", "freq_hz": 4000}]),
            )
            .await,
            "chain[1].freq_hz",
            "4000 Hz must be above 0 and below half the sample rate (4000 Hz)",
        ),
        (
            filter(json!([{"type": "lowpass", "freq_hz": 100, "gain_db": 3}])).await,
            "chain[0].gain_db",
            "only peaking and shelf filters have a gain",
        ),
        (
            filter(json!([{"type": "peaking", "freq_hz": 100, "q": 0}])).await,
            "chain[0].q",
            "0 must be above 0 and at most 100",
        ),
        (
            DspSpectrum
                .call(
                    SpectrumArgs {
                        path: path.clone(),
                        fft_size: 1000,
                        hop: None,
                        window: baton_dsp::Window::Hann,
                        max_peaks: 5,
                        spectrogram: None,
                    },
                    ctx(),
                )
                .await
                .unwrap_err(),
            "fft_size",
            "1000 is not a power of two from 64 to 65536",
        ),
    ];
    for (error, at, message) in cases {
        match error {
            ToolError::InvalidArgs { path, message: got } => {
                assert_eq!((path.as_str(), got.contains(message)), (at, true), "{got}");
            }
            other => panic!("{other}"),
        }
    }
}

mod hostile {
    //! Property tests: audio files with bytes replaced, inserted or deleted — WAVs made here
    //! (16-bit, float) and, where the test command has generated them, the FLAC, MP3 and Ogg
    //! fixtures — never panic the readers, and what they do read holds only finite samples
    //! within the limits. Fixed seed, bounded cases.
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::{Audio, sine};

    static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut seeds = Vec::new();
        let stereo = Audio {
            sample_rate: 8_000,
            channels: vec![sine(8_000, 0.05, 440.0, 0.5), sine(8_000, 0.05, 660.0, 0.5)],
        };
        let path = dir.path().join("float.wav");
        baton_dsp::write_wav(&path, &stereo).unwrap();
        seeds.push(std::fs::read(&path).unwrap());
        let mut pcm = super::header(1, 1, 8_000, 16, 800, 800);
        pcm.extend((0..400u16).flat_map(|i| i.wrapping_mul(97).to_le_bytes()));
        pcm.truncate(44 + 800);
        seeds.push(pcm);
        let fixtures =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/dsp/audio");
        for name in [
            "sweep-44k-stereo-32.mp3",
            "sweep-44k-stereo-32.ogg",
            "music-48k-mono-16.flac",
        ] {
            if let Ok(bytes) = std::fs::read(fixtures.join(name)) {
                seeds.push(bytes);
            }
        }
        seeds
    });

    proptest! {
        #![proptest_config(Config {
            cases: 3000,
            rng_seed: RngSeed::Fixed(0x5eed_0016),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn corrupted_audio_is_read_or_refused_never_panics(
            seed in 0usize..64,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let bytes = baton_test_support::mutate(SEEDS[seed % SEEDS.len()].clone(), &edits);
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), &bytes).unwrap();
            if let Ok(audio) = baton_dsp::read_audio(file.path()) {
                prop_assert!(audio.channels.iter().flatten().all(|s| s.is_finite()));
                prop_assert!((1..=usize::from(baton_dsp::MAX_CHANNELS)).contains(&audio.channels.len()));
                prop_assert!(
                    (baton_dsp::MIN_RATE..=baton_dsp::MAX_RATE).contains(&audio.sample_rate)
                );
            }
        }
    }
}
