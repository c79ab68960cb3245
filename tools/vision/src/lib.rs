//! `baton-vision`: the product-image pack. Checks photos against marketplace rules, removes
//! backdrops, names a product's colours, and prepares single photos or whole folders for
//! listing.
//!
//! The key design choice: classical computer vision does the work — fast, deterministic, no
//! model — and matches the tools sellers and marketplaces already use where a number is shared:
//! `blur_score` is exactly OpenCV's variance of the Laplacian (OpenCV's fixed-point BT.601
//! grayscale, reflect-101 borders), so a threshold tuned with `cv2` means the same here.
//! Models are optional: a user's segmenter or classifier runs on ONNX Runtime through
//! `baton-onnx`, and QA thresholds come from `knowledge/vision/qa.toml`, reloaded through the
//! knowledge crate's one hot-reload mechanism with the last good thresholds kept.

mod backdrop;
mod color;
mod error;
mod gray;
mod jpeg;
mod load;
mod morph;
mod onnx;
mod qa;
mod segment;
mod tag;
mod tools;

pub use backdrop::{BackdropModel, backdrop};
pub use color::{Lab, PALETTE, ToLab, delta_e};
pub use error::{Result, VisionError};
pub use gray::{gray, laplacian_variance};
pub use load::{BYTES_PER_PIXEL, MAX_PIXELS, MAX_SIDE, decode, decode_within, load, load_within};
pub use onnx::{Category, Normalize, Onnx, OnnxClassifier, OnnxConfig, OnnxSegmenter};
pub use qa::{Background, Exposure, Issue, IssueCode, QaConfig, QaReport, Subject, qa};
pub use segment::{BBox, Segmentation, measure, segment};
pub use tag::{DominantColor, dominant_colors};
pub use tools::*;
