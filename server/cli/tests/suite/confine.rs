//! Every dsp and vision tool that writes, through the gate under `workspace-write` with root R:
//! an output file that is a symlink to a file outside R, and an output folder that is a symlink
//! to a folder outside R (as the folder itself and as a folder on the way), never lead a write
//! outside. A symlinked file is replaced inside R, never followed; a symlinked folder is
//! refused. Nothing outside R changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::common::Home;
use baton_cli::{App, Config};
use baton_kit::{Invocation, Outcome, Principal, Role, ToolContext, ToolError};
use serde_json::{Value, json};

struct Place {
    home: Home,
    app: App,
    root: PathBuf,
    outside: PathBuf,
    wav: PathBuf,
    photo: PathBuf,
}

impl Place {
    fn new() -> Place {
        let home = Home::new("");
        let root = home.path().join("out");
        let outside = home.path().join("elsewhere");
        let inputs = home.path().join("in");
        for dir in [&root, &outside, &inputs] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(
            home.path().join("policy.toml"),
            "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"out\"]\n",
        )
        .unwrap();
        let tone: Vec<f32> = (0..8_192)
            .map(|i| 0.5 * (std::f32::consts::TAU * 440.0 * i as f32 / 8_000.0).sin())
            .collect();
        let wav = inputs.join("tone.wav");
        baton_dsp::write_wav(
            &wav,
            &baton_dsp::Audio {
                sample_rate: 8_000,
                channels: vec![tone],
            },
        )
        .unwrap();
        let photo = inputs.join("shot.png");
        let image = image::RgbImage::from_fn(64, 48, |x, y| {
            if (16..48).contains(&x) && (12..36).contains(&y) {
                image::Rgb([200, 30, 30])
            } else {
                image::Rgb([250, 250, 250])
            }
        });
        image.save(&photo).unwrap();
        std::fs::write(outside.join("victim"), "keep").unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), root.join("file-link")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dir-link")).unwrap();
        let config = Config::load(Some(&home.config())).unwrap();
        let app = App::build(config).unwrap();
        Place {
            home,
            app,
            root,
            outside,
            wav,
            photo,
        }
    }

    async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let outcome = self
            .app
            .gate()
            .call(Invocation {
                principal: Arc::new(Principal::new("agent", [Role::Agent])),
                tool: tool.into(),
                args,
                approval_id: None,
                context: ToolContext::new(Default::default()),
            })
            .await?;
        match outcome {
            Outcome::Completed(output) => Ok(output.structured),
            Outcome::PendingApproval(pending) => panic!("{tool} waits: {pending:?}"),
        }
    }

    /// Nothing outside R changed: the victim keeps its bytes and nothing was added.
    fn untouched(&self, what: &str) {
        let mut names: Vec<String> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["victim"], "{what}");
        assert_eq!(
            std::fs::read_to_string(self.outside.join("victim")).unwrap(),
            "keep",
            "{what}"
        );
    }

    fn reset_file_link(&self) {
        let link = self.root.join("file-link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(self.outside.join("victim"), &link).unwrap();
    }
}

fn refused(result: Result<Value, ToolError>, what: &str) {
    let error = result.expect_err(what).to_string();
    assert!(
        error.contains("goes through a symlink or out of its root"),
        "{what}: {error}"
    );
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// An output file argument that is a symlink to a file outside R: the tool's output replaces
/// the link inside R; the file outside keeps its bytes.
#[tokio::test]
async fn a_symlinked_output_file_is_replaced_never_followed() {
    let p = Place::new();
    let link = p.root.join("file-link");
    let calls = [
        (
            "dsp_spectrum",
            json!({"path": p.wav, "max_peaks": 1, "spectrogram": s(&link)}),
        ),
        (
            "dsp_filter",
            json!({"path": p.wav, "out": s(&link), "chain": [{"type": "highpass", "freq_hz": 40}]}),
        ),
        ("vision_segment", json!({"path": p.photo, "out": s(&link)})),
    ];
    for (tool, args) in calls {
        p.reset_file_link();
        p.call(tool, args).await.unwrap();
        p.untouched(tool);
        assert!(
            !link.is_symlink(),
            "{tool}: the link was replaced by the output"
        );
        assert!(std::fs::metadata(&link).unwrap().len() > 4, "{tool}");
    }
}

/// An output folder that is a symlink to a folder outside R — named as the output folder or
/// on the way to an output file — is refused, and nothing is written outside.
#[tokio::test]
async fn a_symlinked_output_folder_is_refused() {
    let p = Place::new();
    let dir = p.root.join("dir-link");
    let via = dir.join("sub");
    let calls = [
        (
            "dsp_spectrum",
            json!({"path": p.wav, "max_peaks": 1, "spectrogram": s(&dir.join("x.png"))}),
        ),
        (
            "dsp_filter",
            json!({"path": p.wav, "out": s(&dir.join("x.wav")), "chain": [{"type": "highpass", "freq_hz": 40}]}),
        ),
        ("dsp_separate", json!({"path": p.wav, "out_dir": s(&dir)})),
        ("dsp_separate", json!({"path": p.wav, "out_dir": s(&via)})),
        (
            "vision_segment",
            json!({"path": p.photo, "out": s(&dir.join("x.png"))}),
        ),
        (
            "vision_process",
            json!({"path": p.photo, "out_dir": s(&dir)}),
        ),
        (
            "vision_process",
            json!({"path": p.photo, "out_dir": s(&via)}),
        ),
        (
            "vision_batch",
            json!({"paths": [p.photo], "out_dir": s(&dir)}),
        ),
        (
            "vision_batch",
            json!({"paths": [p.photo], "out_dir": s(&via)}),
        ),
    ];
    for (tool, args) in calls {
        let what = format!("{tool} {args}");
        refused(p.call(tool, args).await, &what);
        p.untouched(&what);
    }
    // The same calls into a real folder of R work — and files they write there that were
    // planted as symlinks to outside are replaced, never followed.
    let real = p.root.join("real");
    std::fs::create_dir_all(&real).unwrap();
    for planted in [
        "tone.harmonic.wav",
        "tone.percussive.wav",
        "shot.png",
        "shot.json",
        "batch.json",
    ] {
        std::os::unix::fs::symlink(p.outside.join("victim"), real.join(planted)).unwrap();
    }
    p.call("dsp_separate", json!({"path": p.wav, "out_dir": s(&real)}))
        .await
        .unwrap();
    p.call(
        "vision_batch",
        json!({"paths": [p.photo], "out_dir": s(&real)}),
    )
    .await
    .unwrap();
    for written in [
        "tone.harmonic.wav",
        "tone.percussive.wav",
        "shot.png",
        "shot.json",
        "batch.json",
    ] {
        let path = real.join(written);
        assert!(path.is_file() && !path.is_symlink(), "{written}");
    }
    p.untouched("planted symlinks in a real output folder");
    drop(p.home);
}

/// `[limits] call_memory_mb` reaches every call through the gate: a photo that fits the
/// default budget is refused under a small one, before it is decoded.
#[tokio::test]
async fn the_configured_memory_budget_reaches_the_tools() {
    let home = Home::new("[limits]\ncall_memory_mb = 16\n");
    let photo = home.path().join("shot.png");
    image::RgbImage::from_pixel(1000, 800, image::Rgb([200, 30, 30]))
        .save(&photo)
        .unwrap();
    let app = App::build(Config::load(Some(&home.config())).unwrap()).unwrap();
    let refused = app
        .gate()
        .call(Invocation {
            principal: Arc::new(Principal::new("agent", [Role::Agent])),
            tool: "vision_qa".into(),
            args: json!({ "path": photo }),
            approval_id: None,
            context: ToolContext::new(Default::default()),
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused
            .contains("1000 × 800 (0.8 MP) needs about 18.3 MiB to check; a call may use 16.0 MiB"),
        "{refused}"
    );
    let bad = Config::parse(
        std::path::Path::new("baton.toml"),
        "[limits]\ncall_memory_mb = 1\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        bad,
        "invalid config `baton.toml`: limits.call_memory_mb: must be at least 16"
    );
}
