//! Decoding photos: JPEG, PNG or WebP, EXIF orientation applied, and refused before decoding
//! when the header promises more pixels than Baton will hold (a decompression bomb).

use std::io::{BufReader, Cursor};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::{Result, VisionError};

/// Largest side accepted, pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels accepted: 100 MP (a 50,000 × 50,000 header is refused before decoding).
pub const MAX_PIXELS: u64 = 100_000_000;

/// Read an image file as 8-bit RGB, upright.
pub fn load(path: &Path) -> Result<RgbImage> {
    load_within(path, baton_kit::DEFAULT_MEMORY_BUDGET)
}

/// [`load`], refusing an image whose checking would need more than `budget` bytes.
pub fn load_within(path: &Path, budget: u64) -> Result<RgbImage> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| VisionError::Io {
        action: "read",
        path: shown.clone(),
        source,
    })?;
    decode_within(&bytes, &shown, budget)
}

/// Memory a vision call needs per pixel of its photo, measured: the RGB image, its grey and
/// Lab copies, masks and the cut-out (a 100 MP photo took 2.1 GB).
pub const BYTES_PER_PIXEL: u64 = 24;

/// Decode image bytes; `name` is used in errors.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage> {
    decode_within(bytes, name, baton_kit::DEFAULT_MEMORY_BUDGET)
}

/// [`decode`], refusing — from the header, before decoding — an image whose checking would
/// need more than `budget` bytes.
pub fn decode_within(bytes: &[u8], name: &str, budget: u64) -> Result<RgbImage> {
    let invalid = |message: String| VisionError::InvalidInput {
        path: name.to_owned(),
        message,
    };
    if bytes.is_empty() {
        return Err(invalid("the file is empty (0 bytes)".into()));
    }
    let mut reader = ImageReader::new(BufReader::new(Cursor::new(bytes)))
        .with_guessed_format()
        .map_err(|error| invalid(error.to_string()))?;
    let format = reader.format();
    match format {
        None => {
            return Err(invalid(
                "not an image Baton reads (JPEG, PNG or WebP)".into(),
            ));
        }
        // The JPEG decoder fills a cut-off scan with grey rather than failing; a complete
        // file has its end-of-image marker after the first scan (scan data cannot hold it).
        Some(ImageFormat::Jpeg) => {
            let complete = memchr::memmem::find(bytes, b"\xFF\xDA")
                .is_some_and(|scan| memchr::memmem::find(&bytes[scan..], b"\xFF\xD9").is_some());
            if !complete {
                return Err(invalid(
                    "cannot decode (truncated or corrupt?): the JPEG ends before its \
                     end-of-image marker"
                        .into(),
                ));
            }
        }
        Some(_) => {}
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|error| invalid(describe(error)))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(invalid(format!(
            "{width} × {height} is more than Baton decodes ({MAX_PIXELS} pixels)"
        )));
    }
    let need = u64::from(width) * u64::from(height) * BYTES_PER_PIXEL;
    if need > budget {
        return Err(invalid(format!(
            "{width} × {height} ({:.1} MP) needs about {} to check; a call may use {} \
             ([limits] call_memory_mb)",
            f64::from(width) * f64::from(height) / 1e6,
            baton_kit::shown_bytes(need),
            baton_kit::shown_bytes(budget)
        )));
    }
    let orientation = decoder
        .orientation()
        .map_err(|error| invalid(describe(error)))?;
    // The header was read by the `image` crate (limits, orientation); a JPEG's pixels come from
    // libjpeg-turbo, as OpenCV's do (see `jpeg.rs`).
    let pixels = match format {
        Some(ImageFormat::Jpeg) => crate::jpeg::decode(bytes, name)?,
        _ => None,
    };
    let mut image = match pixels {
        Some(rgb) => DynamicImage::ImageRgb8(rgb),
        None => DynamicImage::from_decoder(decoder).map_err(|error| invalid(describe(error)))?,
    };
    image.apply_orientation(orientation);
    Ok(if image.color().has_alpha() {
        on_white(image.into_rgba8())
    } else {
        image.into_rgb8()
    })
}

/// A photo with transparency as a marketplace shows it: over white. Dropping the alpha
/// channel instead would show whatever colour the transparent pixels happen to hold (black,
/// most often) — a plausible, wrong backdrop.
fn on_white(image: image::RgbaImage) -> RgbImage {
    let (width, height) = image.dimensions();
    let mut out = RgbImage::new(width, height);
    for (o, p) in out.pixels_mut().zip(image.pixels()) {
        let alpha = u32::from(p[3]);
        for c in 0..3 {
            o[c] = ((u32::from(p[c]) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        }
    }
    out
}

fn describe(error: image::ImageError) -> String {
    match error {
        image::ImageError::Limits(limit) => format!(
            "the header declares an image larger than Baton decodes (at most {MAX_SIDE} px a \
             side, {MAX_PIXELS} pixels): {limit}"
        ),
        image::ImageError::Unsupported(what) => format!("not an image Baton reads: {what}"),
        image::ImageError::Decoding(what) => {
            format!("cannot decode (truncated or corrupt?): {what}")
        }
        image::ImageError::IoError(what) => format!("cut short: {what}"),
        other => other.to_string(),
    }
}
