//! Marketplace QA: is the photo sharp, big enough, well exposed, on a clean backdrop, with the
//! product filling and centred in the frame. Thresholds come from a TOML file
//! (`knowledge/vision/qa.toml`); every one has a documented default.

use image::{GrayImage, RgbImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::color::hex;
use crate::gray::{gray, laplacian_variance};
use crate::segment::{BBox, Segmentation};

/// QA thresholds. Missing keys take the defaults shown in `docs/vision.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct QaConfig {
    /// Below this variance of the Laplacian a photo is blurry (default 8: a product on a
    /// seamless backdrop is mostly flat, so the 100 often used for scenes flags sharp shots).
    /// Judged on [`QaReport::blur_score_judged`].
    pub blur_threshold: f64,
    /// Shortest side a listing needs, pixels (default 1000).
    pub min_side: u32,
    /// Share of the product's pixels with two or more channels clipped (at 250 or more) above
    /// which the product is washed out: overexposed (default 0.25). The backdrop is meant to
    /// be bright and is not counted; one clipped channel is a saturated colour, not lost detail.
    pub bright_clip_max: f64,
    /// Image mean luma below which the photo is underexposed (default 60).
    pub underexposed_mean: f64,
    /// Share of the image at 5 or darker above which the photo is underexposed (default 0.25).
    pub dark_clip_max: f64,
    /// A backdrop whose border pixels spread more than this (ΔE, 90th percentile) is not
    /// uniform (default 12).
    pub uniform_spread_max: f64,
    /// Share of the image in stray foreground beyond which the backdrop is cluttered
    /// (default 0.0005: about 650 px of a 1.3 MP photo; clean shots measure 0).
    pub clutter_max: f64,
    /// The subject must span at least this share of the frame along its longer extent
    /// (`max(box width / width, box height / height)`, default 0.35).
    pub min_subject_fill: f64,
    /// The subject's centre may sit at most this share of the width/height from the image
    /// centre (default 0.12).
    pub max_center_offset: f64,
}

impl Default for QaConfig {
    fn default() -> Self {
        QaConfig {
            blur_threshold: 8.0,
            min_side: 1000,
            bright_clip_max: 0.25,
            underexposed_mean: 60.0,
            dark_clip_max: 0.25,
            uniform_spread_max: 12.0,
            clutter_max: 0.0005,
            min_subject_fill: 0.35,
            max_center_offset: 0.12,
        }
    }
}

/// Issue codes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueCode {
    /// Shortest side below `min_side`.
    LowRes,
    /// Variance of the Laplacian below `blur_threshold`.
    Blurry,
    /// The subject is washed out.
    Overexposed,
    /// The subject is too dark.
    Underexposed,
    /// The backdrop is uneven or has other things on it.
    ClutteredBackground,
    /// The subject fills too little of the frame.
    SubjectTooSmall,
    /// The subject is far from the centre.
    OffCenter,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Issue {
    /// What kind of problem.
    pub code: IssueCode,
    /// What was measured against what.
    pub message: String,
}

/// Exposure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Exposure {
    /// Mean luma of the whole image, 0–255.
    pub mean: f64,
    /// Share of the image at 5 or darker.
    pub dark_clip: f64,
    /// Share of the product's pixels with two or more channels at 250 or more (of the whole
    /// image when no product stands out).
    pub bright_clip: f64,
}

/// The backdrop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Background {
    /// Whether it is one even colour.
    pub uniform: bool,
    /// Its median colour.
    pub color_hex: String,
}

/// The product in the frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subject {
    /// Bounding box (`null` when nothing stands out from the backdrop).
    pub bbox: Option<BBox>,
    /// Share of the image the subject's pixels cover.
    pub coverage: f64,
    /// Whether the box's centre is near the image centre.
    pub centered: bool,
}

/// What `vision_qa` reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QaReport {
    /// Width, pixels (after EXIF orientation).
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Variance of the Laplacian of OpenCV's BT.601 grayscale (as `cv2.Laplacian(gray,
    /// cv2.CV_64F).var()`); higher is sharper.
    pub blur_score: f64,
    /// What the blur threshold is held against: the larger of `blur_score` and the same score
    /// over the product's box (a small product on a flat backdrop is not blurry), at full
    /// exposure (the variance grows with the square of the brightness, so a dark photo's score
    /// is scaled to its brightest 1 % at 255).
    pub blur_score_judged: f64,
    /// `blur_score_judged` below the threshold.
    pub is_blurry: bool,
    /// Shortest side at least `min_side`.
    pub min_size_ok: bool,
    /// Exposure.
    pub exposure: Exposure,
    /// The backdrop.
    pub background: Background,
    /// Share of the image in stray foreground outside the subject (other objects, dirt).
    pub clutter_score: f64,
    /// The subject.
    pub subject: Subject,
    /// Problems, in a fixed order (LOW_RES, BLURRY, OVEREXPOSED, UNDEREXPOSED,
    /// CLUTTERED_BACKGROUND, SUBJECT_TOO_SMALL, OFF_CENTER).
    pub issues: Vec<Issue>,
}

/// Check a photo against the thresholds, given its segmentation.
pub fn qa(image: &RgbImage, segmentation: &Segmentation, config: &QaConfig) -> QaReport {
    let (width, height) = image.dimensions();
    let luma = gray(image);
    let blur_score = laplacian_variance(&luma);
    let blur_score_judged = judged(&luma, blur_score, segmentation.bbox);
    let exposure = exposure(image, &luma, segmentation);
    let (share, offset) = placement(segmentation, width, height);
    let mut report = QaReport {
        width,
        height,
        blur_score,
        blur_score_judged,
        is_blurry: blur_score_judged < config.blur_threshold,
        min_size_ok: width.min(height) >= config.min_side,
        exposure,
        background: Background {
            uniform: f64::from(segmentation.backdrop.spread) <= config.uniform_spread_max,
            color_hex: hex(segmentation.backdrop.rgb),
        },
        clutter_score: segmentation.stray,
        subject: Subject {
            bbox: segmentation.bbox,
            coverage: segmentation.coverage,
            centered: segmentation.bbox.is_some() && offset <= config.max_center_offset,
        },
        issues: Vec::new(),
    };
    report.issues = issues(&report, segmentation, config, share, offset);
    report
}

/// The score sharpness is judged on (see [`QaReport::blur_score_judged`]).
fn judged(luma: &GrayImage, blur_score: f64, bbox: Option<BBox>) -> f64 {
    let boxed = bbox.map_or(0.0, |b| {
        laplacian_variance(&image::imageops::crop_imm(luma, b.x, b.y, b.width, b.height).to_image())
    });
    let mut histogram = [0u64; 256];
    for &value in luma.as_raw() {
        histogram[usize::from(value)] += 1;
    }
    let mut above = luma.as_raw().len() as u64 / 100;
    let mut bright = 255usize;
    while bright > 0 && above >= histogram[bright] {
        above -= histogram[bright];
        bright -= 1;
    }
    blur_score.max(boxed) * (255.0 / (bright as f64).max(32.0)).powi(2)
}

/// Mean luma and clipping: dark clipping over the whole image, bright clipping over the
/// subject only (a white backdrop is meant to be bright) when there is a subject.
fn exposure(image: &RgbImage, luma: &GrayImage, segmentation: &Segmentation) -> Exposure {
    let use_mask = segmentation.bbox.is_some();
    let (mut sum, mut dark, mut bright, mut subject) = (0u64, 0u64, 0u64, 0u64);
    let pixels = image.as_raw().chunks_exact(3);
    for ((&value, &m), p) in luma
        .as_raw()
        .iter()
        .zip(segmentation.mask.as_raw())
        .zip(pixels)
    {
        sum += u64::from(value);
        dark += u64::from(value <= 5);
        if !use_mask || m >= 128 {
            let clipped = p.iter().filter(|&&c| c >= 250).count();
            bright += u64::from(clipped >= 2);
            subject += 1;
        }
    }
    let n = luma.as_raw().len().max(1) as f64;
    Exposure {
        mean: sum as f64 / n,
        dark_clip: dark as f64 / n,
        bright_clip: bright as f64 / subject.max(1) as f64,
    }
}

/// How much of the frame the subject spans (its larger side's share) and how far its centre
/// is from the frame's (the larger axis, as a share of the frame); zeros with no subject.
fn placement(segmentation: &Segmentation, width: u32, height: u32) -> (f64, f64) {
    match segmentation.bbox {
        Some(b) => {
            let share = (f64::from(b.width) / f64::from(width))
                .max(f64::from(b.height) / f64::from(height));
            let cx = (f64::from(b.x) + f64::from(b.width) / 2.0) / f64::from(width) - 0.5;
            let cy = (f64::from(b.y) + f64::from(b.height) / 2.0) / f64::from(height) - 0.5;
            (share, cx.abs().max(cy.abs()))
        }
        None => (0.0, 0.0),
    }
}

/// The problems `report` shows, in the fixed order [`QaReport::issues`] documents.
fn issues(
    report: &QaReport,
    segmentation: &Segmentation,
    config: &QaConfig,
    share: f64,
    offset: f64,
) -> Vec<Issue> {
    let (width, height, exposure) = (report.width, report.height, &report.exposure);
    let mut issues = Vec::new();
    let mut flag = |code: IssueCode, message: String| issues.push(Issue { code, message });
    if !report.min_size_ok {
        flag(
            IssueCode::LowRes,
            format!(
                "{width} × {height}: the shortest side is below {} px",
                config.min_side
            ),
        );
    }
    if report.is_blurry {
        flag(
            IssueCode::Blurry,
            format!(
                "blur score {:.1} (judged {:.1}: the frame or the product's box, at full \
                 exposure) is below {}",
                report.blur_score, report.blur_score_judged, config.blur_threshold
            ),
        );
    }
    if exposure.bright_clip > config.bright_clip_max {
        flag(
            IssueCode::Overexposed,
            format!(
                "{:.0} % of the product has two or more channels clipped at 250 or more \
                 (at most {:.0} %)",
                exposure.bright_clip * 100.0,
                config.bright_clip_max * 100.0
            ),
        );
    }
    if exposure.mean < config.underexposed_mean || exposure.dark_clip > config.dark_clip_max {
        flag(
            IssueCode::Underexposed,
            format!(
                "mean luma {:.0} (at least {} wanted), {:.0} % at 5 or darker",
                exposure.mean,
                config.underexposed_mean,
                exposure.dark_clip * 100.0
            ),
        );
    }
    if !report.background.uniform || segmentation.stray > config.clutter_max {
        flag(
            IssueCode::ClutteredBackground,
            format!(
                "backdrop spread ΔE {:.1} (limit {}), stray foreground {:.2} % of the image (limit {:.2} %)",
                segmentation.backdrop.spread,
                config.uniform_spread_max,
                segmentation.stray * 100.0,
                config.clutter_max * 100.0
            ),
        );
    }
    if segmentation.bbox.is_some() && share < config.min_subject_fill {
        flag(
            IssueCode::SubjectTooSmall,
            format!(
                "the subject spans {:.0} % of the frame (at least {:.0} % wanted)",
                share * 100.0,
                config.min_subject_fill * 100.0
            ),
        );
    }
    if segmentation.bbox.is_some() && !report.subject.centered {
        flag(
            IssueCode::OffCenter,
            format!(
                "the subject's centre is {:.0} % of the frame from the centre (at most {:.0} %)",
                offset * 100.0,
                config.max_center_offset * 100.0
            ),
        );
    }
    issues
}
