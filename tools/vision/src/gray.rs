//! Grayscale and sharpness exactly as OpenCV computes them, so `blur_score` can be compared
//! with `cv2.Laplacian(gray, cv2.CV_64F).var()` and thresholds people already use carry over.

use image::{GrayImage, RgbImage};

/// BT.601 luma in OpenCV 5's fixed point (`cv2.cvtColor(…, COLOR_BGR2GRAY)` on 8-bit images):
/// `(9798 R + 19235 G + 3735 B + 2¹⁴) >> 15`, equal to OpenCV 5.0's on all 16.7 million
/// colours (OpenCV 4's 14-bit weights differ on 0.1 % of them). The `image` crate's
/// `to_luma8` uses other weights and gives a different blur score.
pub fn gray(image: &RgbImage) -> GrayImage {
    let (width, height) = image.dimensions();
    let data = image
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
            ((r * 9798 + g * 19235 + b * 3735 + (1 << 14)) >> 15) as u8
        })
        .collect();
    GrayImage::from_raw(width, height, data).unwrap_or_else(|| GrayImage::new(width, height))
}

/// Variance of the 3×3 Laplacian `[0 1 0; 1 −4 1; 0 1 0]` over the whole image, borders
/// reflected without repeating the edge (OpenCV's `BORDER_REFLECT_101`), population variance.
/// Exact: sums are kept in integers.
pub fn laplacian_variance(gray: &GrayImage) -> f64 {
    let (width, height) = (gray.width() as usize, gray.height() as usize);
    if width == 0 || height == 0 {
        return 0.0;
    }
    let data = gray.as_raw();
    // Reflect-101 index: −1 → 1, n → n − 2 (a 1-pixel side reflects onto itself).
    let reflect = |i: isize, n: usize| -> usize {
        if n == 1 {
            0
        } else if i < 0 {
            (-i) as usize
        } else if i as usize >= n {
            2 * n - 2 - i as usize
        } else {
            i as usize
        }
    };
    let (mut sum, mut squares) = (0i64, 0i128);
    for y in 0..height {
        let up = reflect(y as isize - 1, height) * width;
        let down = reflect(y as isize + 1, height) * width;
        let row = y * width;
        for x in 0..width {
            let left = reflect(x as isize - 1, width);
            let right = reflect(x as isize + 1, width);
            let value = i64::from(data[up + x])
                + i64::from(data[down + x])
                + i64::from(data[row + left])
                + i64::from(data[row + right])
                - 4 * i64::from(data[row + x]);
            sum += value;
            squares += i128::from(value * value);
        }
    }
    let n = (width * height) as f64;
    let mean = sum as f64 / n;
    squares as f64 / n - mean * mean
}
