//! Classic background removal for product shots: model the backdrop from the image border as
//! a smooth surface in CIELAB (`backdrop.rs`), call a pixel foreground when it is far from the
//! backdrop at its place and is not that backdrop in shadow, clean the mask with morphology,
//! keep the large connected parts, fill the holes that are part of the product, and feather
//! the edge.
//!
//! The shadow test is brightness-free: darkening a colour by k in linear light scales `L + 16`,
//! `a` and `b` all by k^(1/3), so a shadow keeps `a / (L + 16)` and `b / (L + 16)` of the
//! backdrop under it, in a dim photo as in a bright one. A product the same hue as its
//! backdrop and 60–100 % of its `L + 16` reads as shadow; when nothing else stands out it is
//! taken as the subject.

use image::{GrayImage, RgbImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backdrop::{BackdropModel, backdrop, coordinate};
use crate::color::{Lab, ToLab, to_rgb};
use crate::morph::{blur, components, dilate, erode};

/// A pixel at most this far (ΔE) from the backdrop is backdrop, however even the backdrop.
const MIN_THRESHOLD: f32 = 5.0;
/// Below this share of the image, the parts that are not shadow-like are not a subject: the
/// product is then taken with its shadow-like pixels (a grey product on a grey backdrop).
const MIN_SUBJECT: f64 = 0.002;

/// Pixel classes.
const BACKDROP: u8 = 0;
const SHADOW_LIKE: u8 = 1;
const STRONG: u8 = 2;
/// Stands out at least twice the threshold: print, not the rim of a shadow.
const MARK: u8 = 3;

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

/// Whether `p` is the backdrop colour `under` in shadow: darker, with the same `a / (L + 16)`
/// and `b / (L + 16)` within `tolerance`.
fn shadow(p: Lab, under: Lab, tolerance: f32) -> bool {
    let s = (p.l + 16.0) / (under.l + 16.0).max(1.0);
    // JPEG's halved chroma and the surface's fit drift by a few a*, b* units in a light
    // shadow; a dark product's own colour is only a few units from grey.
    let tolerance = tolerance + 0.04 * p.l;
    (0.6..1.0).contains(&s) && (p.a - under.a * s).hypot(p.b - under.b * s) < tolerance
}

/// Each pixel's class against the backdrop surface.
fn classify(image: &RgbImage, model: &BackdropModel, to_lab: &ToLab) -> Vec<u8> {
    let (width, height) = image.dimensions();
    let threshold = (2.5 * model.spread + 4.0).max(MIN_THRESHOLD);
    let tolerance = 2.0 + 0.6 * model.spread;
    let us: Vec<f32> = (0..width).map(|x| coordinate(x, width)).collect();
    let mut classes = Vec::with_capacity(image.as_raw().len() / 3);
    for (y, row) in image.as_raw().chunks_exact(width as usize * 3).enumerate() {
        let [kl, ka, kb] = model.row(coordinate(y as u32, height));
        for (p, &u) in row.chunks_exact(3).zip(&us) {
            let under = Lab {
                l: kl[0] + u * (kl[1] + u * kl[2]),
                a: ka[0] + u * (ka[1] + u * ka[2]),
                b: kb[0] + u * (kb[1] + u * kb[2]),
            };
            let lab = to_lab.lab([p[0], p[1], p[2]]);
            let (dl, da, db) = (lab.l - under.l, lab.a - under.a, lab.b - under.b);
            let distance = dl * dl + da * da + db * db;
            classes.push(if distance <= threshold * threshold {
                BACKDROP
            } else if shadow(lab, under, tolerance) {
                SHADOW_LIKE
            } else if distance > 4.0 * threshold * threshold {
                MARK
            } else {
                STRONG
            });
        }
    }
    classes
}

/// Segment the subject from its backdrop.
pub fn segment(image: &RgbImage) -> Segmentation {
    let to_lab = ToLab::default();
    let (width, height) = image.dimensions();
    let (w, h) = (width as usize, height as usize);
    // Sensor noise and JPEG blocks, averaged over 3 × 3, no longer hide a product close in
    // colour to its backdrop behind a threshold raised to clear them.
    let smooth = box3(image);
    let backdrop = backdrop(&smooth, &to_lab);
    let classes = classify(&smooth, &backdrop, &to_lab);
    let radius = (width.min(height) / 400).max(1) as usize;
    let area = (w * h).max(1) as f64;
    let strong: Vec<u8> = classes.iter().map(|&c| u8::from(c >= STRONG)).collect();
    let marks: Vec<u8> = classes.iter().map(|&c| u8::from(c == MARK)).collect();
    let any: Vec<u8> = classes.iter().map(|&c| u8::from(c != BACKDROP)).collect();
    let luma = crate::gray::gray(&smooth);
    let mut cleaned = clean(&strong, &marks, luma.as_raw(), w, h, radius);
    if (cleaned.subject as f64) < MIN_SUBJECT * area {
        let with_shadows = clean(&any, &marks, luma.as_raw(), w, h, radius);
        if with_shadows.subject > cleaned.subject {
            cleaned = with_shadows;
        }
    }
    refine(&mut cleaned.mask, &smooth, &backdrop);
    let soft = blur(&cleaned.mask, w, h);
    let soft =
        GrayImage::from_raw(width, height, soft).unwrap_or_else(|| GrayImage::new(width, height));
    measure(soft, backdrop, cleaned.stray as f64 / area)
}

/// Put the edge where a person sees it, halfway between what lies on either side: a pixel
/// near the edge stays subject only when it lies at least halfway from the nearest pixel well
/// outside (the backdrop, or the shadow on it) to the nearest pixel well inside. A threshold
/// alone puts a soft edge (a blurry photo, the 3 × 3 mean, a shadow's rim) where the
/// product's first trace shows, pixels out over the backdrop.
fn refine(mask: &mut [u8], image: &RgbImage, model: &BackdropModel) {
    let (width, height) = image.dimensions();
    let (w, h) = (width as usize, height as usize);
    let reach = (width.min(height) / 100).max(2) as usize;
    let near = erode(mask, w, h, reach);
    let core = erode(&near, w, h, reach);
    let around = dilate(mask, w, h, reach);
    let inside = nearest(&core, |i| mask[i] == 1, w, h);
    let far: Vec<u8> = around.iter().map(|&v| 1 - v).collect();
    let outside = nearest(&far, |i| around[i] == 1, w, h);
    let rgb = |i: u32| {
        let p = &image.as_raw()[i as usize * 3..i as usize * 3 + 3];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    for i in 0..mask.len() {
        if mask[i] == 0 || near[i] == 1 || inside[i] == u32::MAX {
            continue;
        }
        let (x, y) = ((i % w) as u32, (i / w) as u32);
        let out = if outside[i] == u32::MAX {
            to_rgb(model.at(coordinate(x, width), coordinate(y, height))).map(f32::from)
        } else {
            rgb(outside[i])
        };
        let (here, product) = (rgb(i as u32), rgb(inside[i]));
        // Where `here` falls between outside (0) and inside (1), in sRGB values, where edges
        // blend (lenses blend light, but the encoder and every resize blend encoded values).
        let (mut along, mut length) = (0.0f32, 0.0f32);
        for c in 0..3 {
            along += (here[c] - out[c]) * (product[c] - out[c]);
            length += (product[c] - out[c]).powi(2);
        }
        if along < 0.5 * length {
            mask[i] = 0;
        }
    }
}

/// For each pixel `region` admits, the seed pixel (`seeds` = 1) a breadth-first walk through
/// the region reaches it from (`u32::MAX` when none does); seeds are their own.
fn nearest(seeds: &[u8], region: impl Fn(usize) -> bool, w: usize, h: usize) -> Vec<u32> {
    let neighbours = |i: usize| {
        let (x, y) = (i % w, i / w);
        [
            (x > 0).then(|| i - 1),
            (x + 1 < w).then(|| i + 1),
            (y > 0).then(|| i - w),
            (y + 1 < h).then(|| i + w),
        ]
    };
    let mut source = vec![u32::MAX; seeds.len()];
    let mut queue = std::collections::VecDeque::new();
    for (i, &seed) in seeds.iter().enumerate() {
        if seed == 1 {
            source[i] = i as u32;
            // Only seeds at the edge of their set start the walk.
            if neighbours(i).into_iter().flatten().any(|n| seeds[n] == 0) {
                queue.push_back(i);
            }
        }
    }
    while let Some(i) = queue.pop_front() {
        for n in neighbours(i).into_iter().flatten() {
            if source[n] == u32::MAX && region(n) {
                source[n] = source[i];
                queue.push_back(n);
            }
        }
    }
    source
}

/// The 3 × 3 mean of each channel (edges repeated).
fn box3(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let (w, h) = (width as usize, height as usize);
    let stride = w * 3;
    let data = image.as_raw();
    if w < 2 || h < 2 {
        return image.clone();
    }
    // Rows first: each channel summed with its left and right neighbours'.
    let mut across = vec![0u16; data.len()];
    for (row, out) in data
        .chunks_exact(stride)
        .zip(across.chunks_exact_mut(stride))
    {
        for ((o, &left), (&here, &right)) in out[3..stride - 3]
            .iter_mut()
            .zip(&row[..stride - 6])
            .zip(row[3..stride - 3].iter().zip(&row[6..]))
        {
            *o = u16::from(left) + u16::from(here) + u16::from(right);
        }
        for c in 0..3 {
            out[c] = 2 * u16::from(row[c]) + u16::from(row[3 + c]);
            let last = stride - 3 + c;
            out[last] = 2 * u16::from(row[last]) + u16::from(row[last - 3]);
        }
    }
    let mut out = vec![0u8; data.len()];
    for (y, target) in out.chunks_exact_mut(stride).enumerate() {
        let row = |y: usize| &across[y * stride..(y + 1) * stride];
        let (up, here, down) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(h - 1)));
        for (o, ((&a, &b), &c)) in target.iter_mut().zip(up.iter().zip(here).zip(down)) {
            *o = ((a + b + c + 4) / 9) as u8;
        }
    }
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| image.clone())
}

/// A cleaned 0/1 mask, its subject's size and the stray foreground dropped from it.
struct Cleaned {
    mask: Vec<u8>,
    subject: usize,
    stray: usize,
}

/// Open (drop specks), close (bridge seams, `radius` scaled to the image), keep the largest part and any part at least a
/// quarter its size (the rest is clutter), and fill the holes that belong to the product
/// (`marks`: what stands out twice the threshold, before cleaning).
fn clean(raw: &[u8], marks: &[u8], luma: &[u8], w: usize, h: usize, radius: usize) -> Cleaned {
    let marked = marked_holes(raw, marks, luma, w, h);
    // Opened by one pixel only: after the 3 × 3 mean, specks are rare, and a wider opening cuts
    // the thin rim a label leaves at a product's edge.
    let mut mask = erode(raw, w, h, 1);
    mask = dilate(&mask, w, h, 1);
    mask = dilate(&mask, w, h, radius * 2);
    mask = erode(&mask, w, h, radius * 2);
    for (value, &marked) in mask.iter_mut().zip(&marked) {
        *value |= marked;
    }
    let (labels, sizes) = components(&mask, w, h);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let keep: Vec<bool> = sizes.iter().map(|&s| s > 0 && s * 4 >= largest).collect();
    for (value, &label) in mask.iter_mut().zip(&labels) {
        if label > 0 && !keep[label as usize] {
            *value = 0;
        }
    }
    let subject: usize = sizes
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(s, _)| s)
        .sum();
    fill_holes(&mut mask, raw, w, h, subject / 50);
    let stray = mask
        .iter()
        .zip(&labels)
        .filter(|(value, label)| **value == 0 && **label > 0)
        .count();
    Cleaned {
        mask,
        subject,
        stray,
    }
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

/// Fill the subject's holes that are part of it: small ones (specular highlights, a speck of
/// print) and any with marks inside (at least 3 % of the hole stood out before cleaning).
/// Larger clean ones
/// (a mug's handle) are backdrop seen through the product.
fn fill_holes(mask: &mut [u8], marks: &[u8], w: usize, h: usize, limit: usize) {
    let inverse: Vec<u8> = mask.iter().map(|&v| u8::from(v == 0)).collect();
    let (labels, sizes) = components(&inverse, w, h);
    let inside = enclosed(&labels, sizes.len(), w, h);
    let mut marked = vec![0usize; sizes.len()];
    for (&label, &value) in labels.iter().zip(marks) {
        marked[label as usize] += usize::from(value != 0);
    }
    for (value, &label) in mask.iter_mut().zip(&labels) {
        let label = label as usize;
        if inside[label] && (sizes[label] < limit || marked[label] * 33 >= sizes[label]) {
            *value = 1;
        }
    }
}

/// The holes of `raw` that marks make part of the product: a white label's paper, as light as
/// the backdrop, with its print inside (parts of `marks` of at least 1/5,000 of the image, not
/// specks, 24 levels of luma darker or lighter than the hole beside them — ink on paper, not
/// JPEG's colour bleeding from a product into the shadow seen through its handle — filling at
/// least 3 % of the hole and what it holds). Found before cleaning, while
/// the print is islands in the paper and the rim the label leaves at the product's edge is
/// whole; cleaning may join the print to it.
fn marked_holes(raw: &[u8], marks: &[u8], luma: &[u8], w: usize, h: usize) -> Vec<u8> {
    let (parts, part_sizes) = components(marks, w, h);
    let mut part_luma = vec![0u64; part_sizes.len()];
    for (&part, &value) in parts.iter().zip(luma) {
        part_luma[part as usize] += u64::from(value);
    }
    let least = (marks.len() / 5_000).max(4);
    let inverse: Vec<u8> = raw.iter().map(|&v| u8::from(v == 0)).collect();
    let (holes, hole_sizes) = components(&inverse, w, h);
    let inside = enclosed(&holes, hole_sizes.len(), w, h);
    // A mark lies in the hole met going left from its first pixel, past the blend at its edge
    // (at most 3 pixels that stand out less); a mark further in is part of something else.
    let mut held = vec![0usize; hole_sizes.len()];
    let mut seen = vec![false; part_sizes.len()];
    for (i, &part) in parts.iter().enumerate() {
        if part == 0 || seen[part as usize] || part_sizes[part as usize] < least {
            continue;
        }
        seen[part as usize] = true;
        let row = (i - i % w).max(i.saturating_sub(4));
        let size = part_sizes[part as usize];
        let mean = part_luma[part as usize] as f64 / size as f64;
        if let Some(left) = (row..i).rev().find(|&j| raw[j] == 0)
            && (mean - f64::from(luma[left])).abs() >= 24.0
        {
            held[holes[left] as usize] += size;
        }
    }
    holes
        .iter()
        .map(|&hole| {
            let hole = hole as usize;
            u8::from(inside[hole] && held[hole] * 33 >= hole_sizes[hole] + held[hole])
        })
        .collect()
}

/// Which labels of a labelling of the backdrop side never touch the image's border.
fn enclosed(labels: &[u32], count: usize, w: usize, h: usize) -> Vec<bool> {
    let mut inside = vec![true; count];
    inside[0] = false;
    for x in 0..w {
        inside[labels[x] as usize] = false;
        inside[labels[(h - 1) * w + x] as usize] = false;
    }
    for y in 0..h {
        inside[labels[y * w] as usize] = false;
        inside[labels[y * w + w - 1] as usize] = false;
    }
    inside
}
