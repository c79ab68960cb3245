//! Classic background removal for product shots: model the backdrop from the image border in
//! CIELAB, call a pixel foreground when it is far from the backdrop and not a soft shadow on
//! it, clean the mask with morphology, keep the large connected parts, fill small holes, and
//! feather the edge.

use image::{GrayImage, RgbImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::color::{Lab, ToLab, delta_e};

/// A box in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct BBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// The backdrop as seen along the border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackdropModel {
    /// Median border colour.
    pub lab: Lab,
    /// Median border colour as sRGB.
    pub rgb: [u8; 3],
    /// 90th percentile of border pixels' distance (ΔE) from the median: how uneven it is.
    pub spread: f32,
}

/// A foreground mask and what it says.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Soft mask, 255 = subject (feathered edge).
    pub mask: GrayImage,
    /// The backdrop model used.
    pub backdrop: BackdropModel,
    /// Share of the image that is subject (mask ≥ 128).
    pub coverage: f64,
    /// The subject's bounding box (`None` when nothing stands out from the backdrop).
    pub bbox: Option<BBox>,
    /// Share of the image in foreground specks outside the kept subject parts: clutter.
    pub stray: f64,
}

/// Model the backdrop from a band along the border.
pub fn backdrop(image: &RgbImage, to_lab: &ToLab) -> BackdropModel {
    let (width, height) = image.dimensions();
    let band = (width.min(height) / 50).max(2);
    let mut pixels = Vec::new();
    let step = ((2 * (width + height) * band) as usize / 20_000).max(1);
    let mut index = 0usize;
    for y in 0..height {
        for x in 0..width {
            let on_border = x < band
                || y < band
                || x >= width.saturating_sub(band)
                || y >= height.saturating_sub(band);
            if on_border {
                if index.is_multiple_of(step) {
                    pixels.push(image.get_pixel(x, y).0);
                }
                index += 1;
            }
        }
    }
    let median = |channel: usize| {
        let mut values: Vec<u8> = pixels.iter().map(|p| p[channel]).collect();
        values.sort_unstable();
        values.get(values.len() / 2).copied().unwrap_or(255)
    };
    let rgb = [median(0), median(1), median(2)];
    let lab = to_lab.lab(rgb);
    let mut distances: Vec<f32> = pixels
        .iter()
        .map(|p| delta_e(to_lab.lab(*p), lab))
        .collect();
    distances.sort_by(f32::total_cmp);
    let spread = distances
        .get(distances.len() * 9 / 10)
        .copied()
        .unwrap_or(0.0);
    BackdropModel { lab, rgb, spread }
}

/// Whether `p` is the backdrop darkened by a soft shadow: same hue and chroma, somewhat darker.
fn shadow(p: Lab, backdrop: Lab) -> bool {
    let chroma = ((p.a - backdrop.a).powi(2) + (p.b - backdrop.b).powi(2)).sqrt();
    backdrop.l > 45.0
        && p.l < backdrop.l
        && p.l > backdrop.l - 32.0
        && chroma < 5.0 + (backdrop.l - p.l) * 0.12
}

/// Segment the subject from its backdrop.
pub fn segment(image: &RgbImage) -> Segmentation {
    let to_lab = ToLab::default();
    let (width, height) = image.dimensions();
    let (w, h) = (width as usize, height as usize);
    let backdrop = backdrop(image, &to_lab);
    let threshold = (2.5 * backdrop.spread + 4.0).max(12.0);
    let mut mask: Vec<u8> = image
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            let lab = to_lab.lab([p[0], p[1], p[2]]);
            u8::from(delta_e(lab, backdrop.lab) > threshold && !shadow(lab, backdrop.lab))
        })
        .collect();

    // Open (drop specks), then close (bridge seams) with square elements sized to the image.
    let radius = (width.min(height) / 400).max(1) as usize;
    mask = erode(&mask, w, h, radius);
    mask = dilate(&mask, w, h, radius);
    mask = dilate(&mask, w, h, radius * 2);
    mask = erode(&mask, w, h, radius * 2);

    // Keep the largest part and any part at least a quarter its size; the rest is clutter.
    let (labels, sizes) = components(&mask, w, h);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let keep: Vec<bool> = sizes.iter().map(|&s| s > 0 && s * 4 >= largest).collect();
    let mut stray = 0usize;
    for (value, &label) in mask.iter_mut().zip(&labels) {
        if label > 0 && !keep[label as usize] {
            *value = 0;
            stray += 1;
        }
    }
    let subject: usize = sizes
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(s, _)| s)
        .sum();
    fill_small_holes(&mut mask, w, h, subject / 50);

    // Feather: a 3×3 box blur of the hard mask.
    let soft = blur(&mask, w, h);
    let area = (w * h).max(1) as f64;
    let soft =
        GrayImage::from_raw(width, height, soft).unwrap_or_else(|| GrayImage::new(width, height));
    measure(soft, backdrop, stray as f64 / area)
}

/// A segmentation from a soft mask: the share of the image at 128 or more, and its box.
pub fn measure(mask: GrayImage, backdrop: BackdropModel, stray: f64) -> Segmentation {
    let (width, height) = mask.dimensions();
    let w = width as usize;
    let mut count = 0usize;
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (i, &value) in mask.as_raw().iter().enumerate() {
        if value >= 128 {
            count += 1;
            let (x, y) = (i % w, i / w);
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
    }
    let bbox = (count > 0).then(|| BBox {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0 + 1) as u32,
        height: (y1 - y0 + 1) as u32,
    });
    let area = (u64::from(width) * u64::from(height)).max(1) as f64;
    Segmentation {
        mask,
        backdrop,
        coverage: count as f64 / area,
        bbox,
        stray,
    }
}

/// Summed-area table of a 0/1 mask, `(w + 1) × (h + 1)`.
fn integral(mask: &[u8], w: usize, h: usize) -> Vec<u32> {
    let mut table = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(mask[y * w + x]);
            table[(y + 1) * (w + 1) + x + 1] = table[y * (w + 1) + x + 1] + row;
        }
    }
    table
}

/// Ones in the square of `radius` around each pixel (clipped to the image), and its area.
fn window_counts(
    mask: &[u8],
    w: usize,
    h: usize,
    radius: usize,
    mut each: impl FnMut(usize, u32, u32),
) {
    let table = integral(mask, w, h);
    for y in 0..h {
        let (top, bottom) = (y.saturating_sub(radius), (y + radius + 1).min(h));
        for x in 0..w {
            let (left, right) = (x.saturating_sub(radius), (x + radius + 1).min(w));
            let ones = table[bottom * (w + 1) + right] + table[top * (w + 1) + left]
                - table[top * (w + 1) + right]
                - table[bottom * (w + 1) + left];
            let area = ((bottom - top) * (right - left)) as u32;
            each(y * w + x, ones, area);
        }
    }
}

fn erode(mask: &[u8], w: usize, h: usize, radius: usize) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    window_counts(mask, w, h, radius, |i, ones, area| {
        out[i] = u8::from(ones == area)
    });
    out
}

fn dilate(mask: &[u8], w: usize, h: usize, radius: usize) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    window_counts(mask, w, h, radius, |i, ones, _| out[i] = u8::from(ones > 0));
    out
}

/// 3×3 box blur of a 0/1 mask into 0–255.
fn blur(mask: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    window_counts(mask, w, h, 1, |i, ones, area| {
        out[i] = ((ones * 255 + area / 2) / area) as u8;
    });
    out
}

/// 4-connected components of the ones: a label per pixel (0 = background) and each label's
/// size (index 0 unused).
fn components(mask: &[u8], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut labels = vec![0u32; mask.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if mask[start] == 0 || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0usize;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < w).then(|| i + 1),
                (y > 0).then(|| i - w),
                (y + 1 < h).then(|| i + w),
            ];
            for n in neighbours.into_iter().flatten() {
                if mask[n] != 0 && labels[n] == 0 {
                    labels[n] = label;
                    stack.push(n);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// Fill holes in the subject smaller than `limit` pixels (specular highlights, print on a
/// label); larger ones (a mug's handle) are backdrop seen through the object.
fn fill_small_holes(mask: &mut [u8], w: usize, h: usize, limit: usize) {
    let inverse: Vec<u8> = mask.iter().map(|&v| u8::from(v == 0)).collect();
    let (labels, sizes) = components(&inverse, w, h);
    let mut touches_border = vec![false; sizes.len()];
    for x in 0..w {
        touches_border[labels[x] as usize] = true;
        touches_border[labels[(h - 1) * w + x] as usize] = true;
    }
    for y in 0..h {
        touches_border[labels[y * w] as usize] = true;
        touches_border[labels[y * w + w - 1] as usize] = true;
    }
    for (value, &label) in mask.iter_mut().zip(&labels) {
        let label = label as usize;
        if label > 0 && !touches_border[label] && sizes[label] < limit {
            *value = 1;
        }
    }
}
