//! What the vision tests share.

use image::{GrayImage, RgbImage};

/// Intersection over union of a soft mask (≥ 128 is product) and a true mask drawn as an
/// image (white is product).
pub fn iou(mask: &GrayImage, truth: &RgbImage) -> f64 {
    let (mut both, mut either) = (0u64, 0u64);
    for (m, t) in mask.as_raw().iter().zip(truth.as_raw().chunks_exact(3)) {
        let (a, b) = (*m >= 128, t[0] >= 128);
        both += u64::from(a && b);
        either += u64::from(a || b);
    }
    both as f64 / either.max(1) as f64
}
