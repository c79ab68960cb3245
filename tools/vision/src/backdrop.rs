//! The backdrop as the border shows it: a smooth quadratic surface in CIELAB fitted to the
//! medians of short stretches of the border band, so a sweep, a side light or a vignette is
//! backdrop everywhere and not only where it matches the border's average colour. Stretches
//! that disagree with the fit (a thing lying on the border) are dropped and the fit redone.

use image::RgbImage;

use crate::color::{Lab, ToLab, delta_e};

/// Stretches per side of the border band.
const STRETCHES: u32 = 16;

/// The backdrop as seen along the border.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackdropModel {
    /// Median border colour.
    pub lab: Lab,
    /// Median border colour as sRGB.
    pub rgb: [u8; 3],
    /// 90th percentile of border pixels' distance (ΔE) from the surface at their place: how
    /// uneven the backdrop is beyond its smooth shading.
    pub spread: f32,
    /// L, a and b as `c0 + c1 u + c2 v + c3 u² + c4 v² + c5 u v`, with u and v running from −1
    /// to 1 across the width and height.
    surface: [[f32; 6]; 3],
}

impl BackdropModel {
    /// The backdrop's colour at (u, v) ∈ [−1, 1]².
    pub fn at(&self, u: f32, v: f32) -> Lab {
        let terms = [1.0, u, v, u * u, v * v, u * v];
        let value = |c: &[f32; 6]| c.iter().zip(terms).map(|(c, t)| c * t).sum();
        Lab {
            l: value(&self.surface[0]),
            a: value(&self.surface[1]),
            b: value(&self.surface[2]),
        }
    }

    /// Along the row at `v`, each channel as `[k0, k1, k2]`: `k0 + k1 u + k2 u²`.
    pub fn row(&self, v: f32) -> [[f32; 3]; 3] {
        self.surface
            .map(|c| [c[0] + c[2] * v + c[4] * v * v, c[1] + c[5] * v, c[3]])
    }
}

/// Where a pixel sits in the model's coordinates.
pub fn coordinate(i: u32, n: u32) -> f32 {
    if n <= 1 {
        0.0
    } else {
        2.0 * i as f32 / (n - 1) as f32 - 1.0
    }
}

/// A border pixel sampled for the fit.
struct Sample {
    u: f32,
    v: f32,
    lab: Lab,
    rgb: [u8; 3],
    /// Which stretch of the border it lies in (16 per side: top, bottom, left, right).
    stretch: usize,
}

/// Fit the backdrop to a band along the border.
pub fn backdrop(image: &RgbImage, to_lab: &ToLab) -> BackdropModel {
    let (width, height) = image.dimensions();
    let band = (width.min(height) / 50).max(2);
    let step = ((2 * (width + height) * band) as usize / 20_000).max(1);
    let mut samples: Vec<Sample> = Vec::new();
    let mut index = 0usize;
    let along = |i: u32, n: u32| ((i * STRETCHES.min(n)) / n.max(1)) as usize;
    for y in 0..height {
        for x in 0..width {
            let stretch = if y < band {
                Some(along(x, width))
            } else if y >= height.saturating_sub(band) {
                Some(16 + along(x, width))
            } else if x < band {
                Some(32 + along(y, height))
            } else if x >= width.saturating_sub(band) {
                Some(48 + along(y, height))
            } else {
                None
            };
            let Some(stretch) = stretch else { continue };
            if index.is_multiple_of(step) {
                let rgb = image.get_pixel(x, y).0;
                samples.push(Sample {
                    u: coordinate(x, width),
                    v: coordinate(y, height),
                    lab: to_lab.lab(rgb),
                    rgb,
                    stretch,
                });
            }
            index += 1;
        }
    }
    let rgb = [0, 1, 2].map(|c| median(samples.iter().map(|s| f32::from(s.rgb[c]))) as u8);
    let lab = to_lab.lab(rgb);
    let surface = fit(&samples, lab);
    let mut model = BackdropModel {
        lab,
        rgb,
        spread: 0.0,
        surface,
    };
    let mut distances: Vec<f32> = samples
        .iter()
        .map(|s| delta_e(s.lab, model.at(s.u, s.v)))
        .collect();
    distances.sort_by(f32::total_cmp);
    model.spread = distances
        .get(distances.len() * 9 / 10)
        .copied()
        .unwrap_or(0.0);
    model
}

fn median(values: impl Iterator<Item = f32>) -> f32 {
    let mut values: Vec<f32> = values.collect();
    values.sort_by(f32::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(255.0)
}

/// The surface through the stretches' medians, refitted without the stretches that disagree
/// with it; a flat `fallback` when too few stretches are left to fit six terms.
fn fit(samples: &[Sample], fallback: Lab) -> [[f32; 6]; 3] {
    let flat = [fallback.l, fallback.a, fallback.b].map(|c| [c, 0.0, 0.0, 0.0, 0.0, 0.0]);
    let mut points: Vec<(f32, f32, Lab)> = (0..64)
        .filter_map(|stretch| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.stretch == stretch).collect();
            if mine.is_empty() {
                return None;
            }
            let n = mine.len() as f32;
            Some((
                mine.iter().map(|s| s.u).sum::<f32>() / n,
                mine.iter().map(|s| s.v).sum::<f32>() / n,
                Lab {
                    l: median(mine.iter().map(|s| s.lab.l)),
                    a: median(mine.iter().map(|s| s.lab.a)),
                    b: median(mine.iter().map(|s| s.lab.b)),
                },
            ))
        })
        .collect();
    let mut surface = flat;
    for _ in 0..3 {
        if points.len() < 12 {
            return flat;
        }
        let Some(fitted) = least_squares(&points) else {
            return flat;
        };
        surface = fitted;
        let model = BackdropModel {
            lab: fallback,
            rgb: [0; 3],
            spread: 0.0,
            surface,
        };
        let residual: Vec<f32> = points
            .iter()
            .map(|&(u, v, p)| delta_e(p, model.at(u, v)))
            .collect();
        let typical = median(residual.iter().copied());
        let limit = (4.0 * typical).max(3.0);
        let before = points.len();
        let mut kept = residual.iter().map(|&r| r <= limit);
        points.retain(|_| kept.next().unwrap_or(false));
        if points.len() == before {
            break;
        }
    }
    surface
}

/// Least squares of the six terms per channel (normal equations, Gaussian elimination with
/// partial pivoting); `None` when they are degenerate.
fn least_squares(points: &[(f32, f32, Lab)]) -> Option<[[f32; 6]; 3]> {
    let mut normal = [[0.0f64; 6]; 6];
    let mut right = [[0.0f64; 3]; 6];
    for &(u, v, p) in points {
        let (u, v) = (f64::from(u), f64::from(v));
        let terms = [1.0, u, v, u * u, v * v, u * v];
        let values = [f64::from(p.l), f64::from(p.a), f64::from(p.b)];
        for ((row, sums), &ti) in normal.iter_mut().zip(right.iter_mut()).zip(&terms) {
            row.iter_mut()
                .zip(&terms)
                .for_each(|(n, &tj)| *n += ti * tj);
            sums.iter_mut()
                .zip(&values)
                .for_each(|(r, &value)| *r += ti * value);
        }
    }
    for column in 0..6 {
        let pivot = (column..6)
            .max_by(|&a, &b| normal[a][column].abs().total_cmp(&normal[b][column].abs()))?;
        if normal[pivot][column].abs() < 1e-9 {
            return None;
        }
        normal.swap(column, pivot);
        right.swap(column, pivot);
        let (pivot_row, pivot_right) = (normal[column], right[column]);
        for (row, (coefficients, sums)) in normal.iter_mut().zip(right.iter_mut()).enumerate() {
            if row != column {
                let factor = coefficients[column] / pivot_row[column];
                coefficients
                    .iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(a, &b)| *a -= factor * b);
                sums.iter_mut()
                    .zip(&pivot_right)
                    .for_each(|(a, &b)| *a -= factor * b);
            }
        }
    }
    let mut surface = [[0.0f32; 6]; 3];
    for (i, row) in right.iter().enumerate() {
        for c in 0..3 {
            surface[c][i] = (row[c] / normal[i][i]) as f32;
        }
    }
    Some(surface)
}
