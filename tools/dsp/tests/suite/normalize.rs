//! `dsp_normalize`: the target reached, the ceiling never passed, measured on what was
//! written by an independent meter (`dsp_analyze`'s, the `ebur128` crate's true peak).

use std::path::Path;

use baton_dsp::{
    Audio, DspNormalize, NormalizeArgs, Normalized, Unwatched, analyze_file, read_audio, write_wav,
};
use baton_kit::{Tool, ToolContext};
use tokio_util::sync::CancellationToken;

fn ctx() -> ToolContext {
    ToolContext::new(CancellationToken::new())
}

/// A quiet tone with a swell: gain alone reaches −16 LUFS.
fn quiet(rate: u32) -> Audio {
    let frames = rate as usize * 12;
    let left: Vec<f32> = (0..frames)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0.05 * (0.6 + 0.4 * (t * 0.7).sin()) * (std::f64::consts::TAU * 330.0 * t).sin())
                as f32
        })
        .collect();
    let right = left.iter().map(|x| x * 0.8).collect();
    Audio {
        sample_rate: rate,
        channels: vec![left, right],
    }
}

/// A hot master: a quarter-rate tone sampled 45° off its peaks (samples at 0.7071 of a true
/// peak at full scale), with a 5 ms burst at full scale every half second over a bed 10 dB
/// down — gain to the target would push the bursts over any ceiling.
fn hot(rate: u32) -> Audio {
    let frames = rate as usize * 12;
    let burst = rate as usize / 200;
    let tone: Vec<f32> = (0..frames)
        .map(|i| {
            let phase = std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4;
            let level = if i % (rate as usize / 2) < burst {
                1.0
            } else {
                0.3
            };
            (level * phase.sin()) as f32
        })
        .collect();
    Audio {
        sample_rate: rate,
        channels: vec![tone.clone(), tone],
    }
}

async fn normalize(path: &Path, out: &Path, target: f64, ceiling: f64) -> Normalized {
    let args = NormalizeArgs {
        path: path.display().to_string(),
        target_lufs: target,
        true_peak_dbtp: ceiling,
        out: out.display().to_string(),
    };
    DspNormalize.call(args, ctx()).await.unwrap()
}

#[tokio::test]
async fn gain_alone_reaches_the_target_exactly_when_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("quiet.wav");
    write_wav(&input, &quiet(44_100)).unwrap();
    let out = dir.path().join("out.wav");
    let report = normalize(&input, &out, -16.0, -1.0).await;
    assert!(!report.limited, "{report:?}");
    assert_eq!(report.passes, 2);
    let measured = analyze_file(&out, &Unwatched).unwrap();
    assert!(
        (measured.integrated_lufs.unwrap() + 16.0).abs() < 1e-3,
        "{measured:?}"
    );
    // The output is the input times one gain.
    let (before, after) = (read_audio(&input).unwrap(), read_audio(&out).unwrap());
    let gain = 10f64.powf(report.gain_db / 20.0);
    for (a, b) in before.channels[0].iter().zip(&after.channels[0]) {
        assert!((f64::from(*a) * gain - f64::from(*b)).abs() < 1e-6);
    }
}

#[tokio::test]
async fn a_hot_master_is_limited_under_the_ceiling_at_the_target() {
    let dir = tempfile::tempdir().unwrap();
    for rate in [44_100, 48_000, 96_000] {
        let input = dir.path().join(format!("hot-{rate}.wav"));
        write_wav(&input, &hot(rate)).unwrap();
        let out = dir.path().join(format!("out-{rate}.wav"));
        // 4 dB louder than it is, under −1 dBTP: the bursts must lose 5 dB.
        let target = analyze_file(&input, &Unwatched)
            .unwrap()
            .integrated_lufs
            .unwrap()
            + 4.0;
        let report = normalize(&input, &out, target, -1.0).await;
        assert!(
            report.limited && report.max_gain_reduction_db > 4.0,
            "{report:?}"
        );
        assert!((report.output_lufs - target).abs() <= 0.1, "{report:?}");
        assert!(report.output_true_peak_dbtp.unwrap() <= -1.0, "{report:?}");
        // dsp_analyze's meter (ebur128, 4×) on the file written agrees.
        let measured = analyze_file(&out, &Unwatched).unwrap();
        assert!(
            (measured.integrated_lufs.unwrap() - target).abs() <= 0.1,
            "{measured:?}"
        );
        assert!(
            measured.true_peak_dbtp.unwrap() <= -1.0,
            "{rate}: {measured:?}"
        );
        assert_eq!(measured.frames as u64, report.frames);
    }
}

#[tokio::test]
async fn silence_and_impossible_targets_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let silent = dir.path().join("silent.wav");
    write_wav(
        &silent,
        &Audio {
            sample_rate: 48_000,
            channels: vec![vec![0.0; 48_000 * 3]],
        },
    )
    .unwrap();
    let out = dir.path().join("out.wav");
    let call = |path: &Path, target: f64, ceiling: f64| NormalizeArgs {
        path: path.display().to_string(),
        target_lufs: target,
        true_peak_dbtp: ceiling,
        out: out.display().to_string(),
    };
    let error = DspNormalize
        .call(call(&silent, -14.0, -1.0), ctx())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("−70 LUFS gate"), "{error}");
    for (target, ceiling, field) in [
        (5.0, -1.0, "target_lufs"),
        (f64::NAN, -1.0, "target_lufs"),
        (-14.0, 3.0, "true_peak_dbtp"),
    ] {
        let error = DspNormalize
            .call(call(&silent, target, ceiling), ctx())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(field), "{error}");
    }
    // A full-scale square wave cannot be 0 LUFS under −20 dBTP: refused after the tries,
    // nothing written (never a file that misses the target reported as done).
    let square = dir.path().join("square.wav");
    let wave: Vec<f32> = (0..48_000 * 3)
        .map(|i| if (i / 24) % 2 == 0 { 0.99 } else { -0.99 })
        .collect();
    write_wav(
        &square,
        &Audio {
            sample_rate: 48_000,
            channels: vec![wave],
        },
    )
    .unwrap();
    let error = DspNormalize
        .call(call(&square, 0.0, -20.0), ctx())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("target_lufs") && error.contains("cannot be reached"),
        "{error}"
    );
    assert!(!out.exists(), "nothing is written for a refused call");
}
