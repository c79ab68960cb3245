//! Binary-mask morphology on 0/1 bytes: erosion and dilation by squares (running counts along
//! rows then columns, so the cost does not grow with the square's size), a 3×3 feather, and
//! 4-connected components.

/// Ones in the square of `radius` around each pixel (clipped to the image), and its area:
/// running counts along each row, then running sums of those down each column.
fn window_counts(
    mask: &[u8],
    w: usize,
    h: usize,
    radius: usize,
    mut each: impl FnMut(usize, u32, u32),
) {
    if w == 0 || h == 0 {
        return;
    }
    let mut across = vec![0u32; mask.len()];
    for (row, out) in mask.chunks_exact(w).zip(across.chunks_exact_mut(w)) {
        let mut count: u32 = row[..=radius.min(w - 1)]
            .iter()
            .map(|&v| u32::from(v))
            .sum();
        for x in 0..w {
            out[x] = count;
            if x + 1 + radius < w {
                count += u32::from(row[x + 1 + radius]);
            }
            if x >= radius {
                count -= u32::from(row[x - radius]);
            }
        }
    }
    let widths: Vec<u32> = (0..w)
        .map(|x| ((x + radius + 1).min(w) - x.saturating_sub(radius)) as u32)
        .collect();
    let mut sums = vec![0u32; w];
    for row in across.chunks_exact(w).take(radius + 1) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
    for y in 0..h {
        let rows = ((y + radius + 1).min(h) - y.saturating_sub(radius)) as u32;
        for (x, (&ones, &width)) in sums.iter().zip(&widths).enumerate() {
            each(y * w + x, ones, rows * width);
        }
        if y + 1 + radius < h {
            let row = &across[(y + 1 + radius) * w..(y + 2 + radius) * w];
            sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
        }
        if y >= radius {
            let row = &across[(y - radius) * w..(y - radius + 1) * w];
            sums.iter_mut().zip(row).for_each(|(s, &v)| *s -= v);
        }
    }
}

/// Erosion by the square of `radius`: a pixel stays one when its whole square (clipped to
/// the image) is ones. Rows then columns, each a running count.
pub(crate) fn erode(mask: &[u8], w: usize, h: usize, radius: usize) -> Vec<u8> {
    let rows = along_rows(mask, w, radius, |ones, width| ones == width);
    down_columns(&rows, w, h, radius, |ones, height| ones == height)
}

/// Dilation by the square of `radius`: a pixel becomes one when any of its square is.
pub(crate) fn dilate(mask: &[u8], w: usize, h: usize, radius: usize) -> Vec<u8> {
    let rows = along_rows(mask, w, radius, |ones, _| ones > 0);
    down_columns(&rows, w, h, radius, |ones, _| ones > 0)
}

/// Each pixel decided from the ones in its row within `radius` (and the window's width).
fn along_rows(mask: &[u8], w: usize, radius: usize, decide: impl Fn(u32, u32) -> bool) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    if w == 0 {
        return out;
    }
    for (row, target) in mask.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        let mut count: u32 = row[..=radius.min(w - 1)]
            .iter()
            .map(|&v| u32::from(v))
            .sum();
        for x in 0..w {
            let width = ((x + radius + 1).min(w) - x.saturating_sub(radius)) as u32;
            target[x] = u8::from(decide(count, width));
            if x + 1 + radius < w {
                count += u32::from(row[x + 1 + radius]);
            }
            if x >= radius {
                count -= u32::from(row[x - radius]);
            }
        }
    }
    out
}

/// Each pixel decided from the ones in its column within `radius` (and the window's height).
fn down_columns(
    mask: &[u8],
    w: usize,
    h: usize,
    radius: usize,
    decide: impl Fn(u32, u32) -> bool,
) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    if w == 0 || h == 0 {
        return out;
    }
    let mut sums = vec![0u32; w];
    for row in mask.chunks_exact(w).take(radius + 1) {
        sums.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += u32::from(v));
    }
    for (y, target) in out.chunks_exact_mut(w).enumerate() {
        let height = ((y + radius + 1).min(h) - y.saturating_sub(radius)) as u32;
        for (t, &ones) in target.iter_mut().zip(&sums) {
            *t = u8::from(decide(ones, height));
        }
        if y + 1 + radius < h {
            let row = &mask[(y + 1 + radius) * w..(y + 2 + radius) * w];
            sums.iter_mut()
                .zip(row)
                .for_each(|(s, &v)| *s += u32::from(v));
        }
        if y >= radius {
            let row = &mask[(y - radius) * w..(y - radius + 1) * w];
            sums.iter_mut()
                .zip(row)
                .for_each(|(s, &v)| *s -= u32::from(v));
        }
    }
    out
}

/// 3×3 box blur of a 0/1 mask into 0–255.
pub(crate) fn blur(mask: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; mask.len()];
    window_counts(mask, w, h, 1, |i, ones, area| {
        out[i] = ((ones * 255 + area / 2) / area) as u8;
    });
    out
}

/// 4-connected components of the ones: a label per pixel (0 = background) and each label's
/// size (index 0 unused). Runs of ones along each row are joined to the runs they touch in
/// the row above (union-find over provisional labels), then labels are made consecutive.
pub(crate) fn components(mask: &[u8], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
    let mut parent: Vec<u32> = vec![0];
    let mut runs: Vec<(usize, usize, u32)> = Vec::new();
    let mut above = 0..0;
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        let here = runs.len();
        let mut j = above.start;
        let mut x = 0;
        while x < w {
            if row[x] == 0 {
                x += 1;
                continue;
            }
            let start = x;
            while x < w && row[x] != 0 {
                x += 1;
            }
            let (start, end) = (y * w + start, y * w + x);
            let mut label = 0u32;
            while j < above.end && runs[j].1 + w <= start {
                j += 1;
            }
            let mut k = j;
            while k < above.end && runs[k].0 + w < end {
                let other = root(&mut parent, runs[k].2);
                label = if label == 0 {
                    other
                } else {
                    join(&mut parent, label, other)
                };
                k += 1;
            }
            if label == 0 {
                label = parent.len() as u32;
                parent.push(label);
            }
            runs.push((start, end, label));
        }
        above = here..runs.len();
    }
    let mut id = vec![0u32; parent.len()];
    let mut sizes = vec![0usize];
    let mut labels = vec![0u32; mask.len()];
    for &(start, end, label) in &runs {
        let r = root(&mut parent, label) as usize;
        if id[r] == 0 {
            id[r] = sizes.len() as u32;
            sizes.push(0);
        }
        sizes[id[r] as usize] += end - start;
        labels[start..end].fill(id[r]);
    }
    (labels, sizes)
}

fn root(parent: &mut [u32], mut label: u32) -> u32 {
    while parent[label as usize] != label {
        let up = parent[parent[label as usize] as usize];
        parent[label as usize] = up;
        label = up;
    }
    label
}

/// Join two roots' sets; the smaller label becomes the root.
fn join(parent: &mut [u32], a: u32, b: u32) -> u32 {
    let (a, b) = (root(parent, a), root(parent, b));
    let (low, high) = (a.min(b), a.max(b));
    parent[high as usize] = low;
    low
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::{components, dilate, erode};

    /// Labels by flood fill, numbered in raster order of each part's first pixel.
    fn flood(mask: &[u8], w: usize, h: usize) -> (Vec<u32>, Vec<usize>) {
        let mut labels = vec![0u32; mask.len()];
        let mut sizes = vec![0usize];
        for start in 0..mask.len() {
            if mask[start] == 0 || labels[start] != 0 {
                continue;
            }
            let label = sizes.len() as u32;
            let mut stack = vec![start];
            labels[start] = label;
            let mut size = 0;
            while let Some(i) = stack.pop() {
                size += 1;
                let (x, y) = (i % w, i / w);
                for (ok, n) in [
                    (x > 0, i.wrapping_sub(1)),
                    (x + 1 < w, i + 1),
                    (y > 0, i.wrapping_sub(w)),
                    (y + 1 < h, i + w),
                ] {
                    if ok && mask[n] != 0 && labels[n] == 0 {
                        labels[n] = label;
                        stack.push(n);
                    }
                }
            }
            sizes.push(size);
        }
        (labels, sizes)
    }

    /// Erosion or dilation by looking at every pixel of each square.
    fn naive(mask: &[u8], w: usize, h: usize, radius: usize, all: bool) -> Vec<u8> {
        (0..mask.len())
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let mut window =
                    (y.saturating_sub(radius)..(y + radius + 1).min(h)).flat_map(|yy| {
                        (x.saturating_sub(radius)..(x + radius + 1).min(w))
                            .map(move |xx| mask[yy * w + xx])
                    });
                u8::from(if all {
                    window.all(|v| v == 1)
                } else {
                    window.any(|v| v == 1)
                })
            })
            .collect()
    }

    fn masks() -> impl Strategy<Value = (Vec<u8>, usize, usize)> {
        (1usize..24, 1usize..24).prop_flat_map(|(w, h)| {
            (
                proptest::collection::vec(prop_oneof![3 => Just(1u8), 2 => Just(0u8)], w * h),
                Just(w),
                Just(h),
            )
        })
    }

    proptest! {
        #[test]
        fn runs_label_as_a_flood_fill_does((mask, w, h) in masks()) {
            prop_assert_eq!(components(&mask, w, h), flood(&mask, w, h));
        }

        #[test]
        fn separable_squares_equal_the_whole_square((mask, w, h) in masks(), radius in 0usize..5) {
            prop_assert_eq!(erode(&mask, w, h, radius), naive(&mask, w, h, radius, true));
            prop_assert_eq!(dilate(&mask, w, h, radius), naive(&mask, w, h, radius, false));
        }
    }
}
