//! QA thresholds come from `knowledge/vision/qa.toml` through the one hot-reload mechanism: an
//! edit applies to the next call, a typo keeps the last good thresholds (and says why), a fix is
//! picked up. Real files in a temporary knowledge root, a real file watcher.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_kit::{Tool, ToolContext};
use baton_knowledge::Shelf;
use baton_vision::{IssueCode, QaArgs, Thresholds, VisionQa};
use image::{Rgb, RgbImage};
use tokio_util::sync::CancellationToken;

/// A clean 600 × 500 shot: only its size can be an issue.
fn shot(dir: &Path) -> String {
    let path = dir.join("disc.png");
    RgbImage::from_fn(600, 500, |x, y| {
        let noise = ((x * 7 + y * 13) % 5) as u8;
        if (x as i32 - 300).pow(2) + (y as i32 - 250).pow(2) <= 175 * 175 {
            Rgb([200 + noise, 30 + noise, 40])
        } else {
            Rgb([235 + noise, 235 + noise, 235 + noise])
        }
    })
    .save(&path)
    .unwrap();
    path.display().to_string()
}

async fn issues(thresholds: &Thresholds, path: &str) -> Vec<IssueCode> {
    VisionQa(thresholds.clone())
        .call(
            QaArgs { path: path.into() },
            ToolContext::new(CancellationToken::new()),
        )
        .await
        .unwrap()
        .issues
        .iter()
        .map(|issue| issue.code)
        .collect()
}

/// Write `text` as `qa.toml` and wait for the shelf to reload.
fn edit(shelf: &Shelf, file: &Path, text: &str) {
    let before = shelf.generation();
    std::fs::write(file, text).unwrap();
    let started = Instant::now();
    while shelf.generation() == before && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(shelf.generation() > before, "no reload within 5 s");
}

#[tokio::test]
async fn a_typo_in_qa_toml_keeps_the_last_good_thresholds_and_says_why() {
    let root = tempfile::tempdir().unwrap();
    let vision = root.path().join("vision");
    std::fs::create_dir_all(&vision).unwrap();
    let file = vision.join("qa.toml");
    std::fs::write(&file, "min_side = 400\n").unwrap();
    let shelf = Arc::new(Shelf::watch(root.path()).unwrap());
    let thresholds = Thresholds::new(shelf.clone());
    let photo = shot(root.path());
    assert_eq!(issues(&thresholds, &photo).await, vec![]);
    assert!(thresholds.error().is_none());

    // A good edit applies to the next call.
    edit(&shelf, &file, "min_side = 800\n");
    assert_eq!(thresholds.config().unwrap().min_side, 800);
    assert_eq!(issues(&thresholds, &photo).await, vec![IssueCode::LowRes]);

    // A typo: the calls keep working on the last good thresholds, and the reason is kept.
    edit(&shelf, &file, "min_side = = 400\n");
    assert_eq!(issues(&thresholds, &photo).await, vec![IssueCode::LowRes]);
    assert_eq!(thresholds.config().unwrap().min_side, 800);
    let error = thresholds.error().unwrap().to_string();
    assert!(
        error.starts_with("QA thresholds `knowledge://vision/qa.toml`: ")
            && error.contains("line 1"),
        "{error}"
    );
    // A key that does not exist is a bad edit too.
    edit(&shelf, &file, "min_sides = 400\n");
    assert_eq!(issues(&thresholds, &photo).await, vec![IssueCode::LowRes]);
    assert!(
        thresholds
            .error()
            .unwrap()
            .to_string()
            .contains("min_sides"),
        "{:?}",
        thresholds.error()
    );

    // The fix is picked up and the reason cleared.
    edit(&shelf, &file, "min_side = 400\n");
    assert_eq!(issues(&thresholds, &photo).await, vec![]);
    assert!(thresholds.error().is_none(), "{:?}", thresholds.error());
}

#[tokio::test]
async fn a_qa_toml_that_never_parsed_is_named_and_the_defaults_need_no_file() {
    let root = tempfile::tempdir().unwrap();
    let vision = root.path().join("vision");
    std::fs::create_dir_all(&vision).unwrap();
    std::fs::write(vision.join("qa.toml"), "blur_threshold = \"sharp\"\n").unwrap();
    let shelf = Arc::new(Shelf::watch(root.path()).unwrap());
    let error = Thresholds::new(shelf).config().unwrap_err().to_string();
    assert!(
        error.starts_with("QA thresholds `knowledge://vision/qa.toml`: ")
            && error.contains("blur_threshold"),
        "{error}"
    );
    // No qa.toml: the documented defaults.
    let empty = tempfile::tempdir().unwrap();
    let shelf = Arc::new(Shelf::watch(empty.path()).unwrap());
    assert_eq!(
        Thresholds::new(shelf).config().unwrap(),
        baton_vision::QaConfig::default()
    );
}
