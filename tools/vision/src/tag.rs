//! Dominant colours of the product: k-means in CIELAB over the subject's pixels only, each
//! cluster named after the nearest colour of a fixed palette.

use image::{GrayImage, RgbImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::color::{Lab, ToLab, delta_e, hex, name, to_rgb};

/// Most pixels clustered (a regular subsample of the subject).
const SAMPLE: usize = 40_000;
/// Clusters.
const K: usize = 5;

/// One dominant colour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DominantColor {
    /// Palette name (`docs/vision.md`).
    pub name: String,
    /// The cluster's centre.
    pub hex: String,
    /// Share of the subject's pixels.
    pub share: f64,
}

/// The subject's dominant colours, largest share first (clusters with the same name merged).
pub fn dominant_colors(image: &RgbImage, mask: &GrayImage) -> Vec<DominantColor> {
    let to_lab = ToLab::default();
    let inside: Vec<usize> = mask
        .as_raw()
        .iter()
        .enumerate()
        .filter(|(_, m)| **m >= 128)
        .map(|(i, _)| i)
        .collect();
    let pixels: Vec<usize> = if inside.is_empty() {
        (0..(image.width() * image.height()) as usize).collect()
    } else {
        inside
    };
    let step = (pixels.len() / SAMPLE).max(1);
    let raw = image.as_raw();
    let points: Vec<Lab> = pixels
        .iter()
        .step_by(step)
        .map(|&i| to_lab.lab([raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]]))
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    let (centres, counts) = kmeans(&points, K.min(points.len()));
    let total = points.len() as f64;
    let mut named: Vec<DominantColor> = Vec::new();
    let mut order: Vec<usize> = (0..centres.len()).filter(|&c| counts[c] > 0).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]));
    for c in order {
        let label = name(&to_lab, centres[c]);
        let share = counts[c] as f64 / total;
        match named.iter_mut().find(|d| d.name == label) {
            Some(existing) => existing.share += share,
            None => named.push(DominantColor {
                name: label.to_owned(),
                hex: hex(to_rgb(centres[c])),
                share,
            }),
        }
    }
    named.retain(|d| d.share >= 0.02);
    named.sort_by(|a, b| b.share.total_cmp(&a.share));
    named
}

/// Lloyd's k-means with a deterministic farthest-point start; 20 rounds at most.
fn kmeans(points: &[Lab], k: usize) -> (Vec<Lab>, Vec<usize>) {
    let mut centres = vec![points[0]];
    while centres.len() < k {
        let next = points
            .iter()
            .max_by(|a, b| {
                let da = centres
                    .iter()
                    .map(|c| delta_e(**a, *c))
                    .fold(f32::MAX, f32::min);
                let db = centres
                    .iter()
                    .map(|c| delta_e(**b, *c))
                    .fold(f32::MAX, f32::min);
                da.total_cmp(&db)
            })
            .copied()
            .unwrap_or(points[0]);
        centres.push(next);
    }
    let mut assignment = vec![0usize; points.len()];
    let mut counts = vec![0usize; k];
    for _ in 0..20 {
        let mut changed = false;
        for (point, slot) in points.iter().zip(assignment.iter_mut()) {
            let nearest = (0..k)
                .min_by(|&a, &b| {
                    delta_e(*point, centres[a]).total_cmp(&delta_e(*point, centres[b]))
                })
                .unwrap_or(0);
            if *slot != nearest {
                *slot = nearest;
                changed = true;
            }
        }
        let mut sums = vec![(0.0f64, 0.0f64, 0.0f64); k];
        counts = vec![0usize; k];
        for (point, &c) in points.iter().zip(&assignment) {
            sums[c].0 += f64::from(point.l);
            sums[c].1 += f64::from(point.a);
            sums[c].2 += f64::from(point.b);
            counts[c] += 1;
        }
        for c in 0..k {
            if counts[c] > 0 {
                let n = counts[c] as f64;
                centres[c] = Lab {
                    l: (sums[c].0 / n) as f32,
                    a: (sums[c].1 / n) as f32,
                    b: (sums[c].2 / n) as f32,
                };
            }
        }
        if !changed {
            break;
        }
    }
    (centres, counts)
}
