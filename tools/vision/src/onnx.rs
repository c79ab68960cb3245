//! Segmentation and classification with a user's ONNX model (U²-Net / ISNet shape: `[1, 3, H, W]` RGB in,
//! `[1, 1, H, W]` saliency out) through ONNX Runtime, loaded at run time from the library the
//! user points at (`ORT_DYLIB_PATH`) — nothing is downloaded. Without a runtime or a model,
//! `method: onnx` says so and the classic path keeps working.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use baton_onnx::TensorModel;
use image::imageops::{FilterType, resize};
use image::{GrayImage, ImageBuffer, Luma, RgbImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::backdrop::backdrop;
use crate::color::ToLab;
use crate::segment::{Segmentation, measure};
use crate::{Result, VisionError};

/// How a model wants its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// `(x − 128) / 256` per channel (ISNet as `@imgly/background-removal` ships it).
    Isnet,
    /// `(x / 255 − mean) / std` with ImageNet's mean and std (U²-Net).
    Imagenet,
}

/// Where the runtime and the models are. Read from the environment: `ORT_DYLIB_PATH` (the
/// `libonnxruntime.so` of the `onnxruntime==1.31.1` wheel), `BATON_SEGMENTATION_MODEL` (an
/// `.onnx` file), `BATON_SEGMENTATION_NORMALIZE` (`isnet`, the default, or `imagenet`),
/// `BATON_CLASSIFIER_MODEL` and `BATON_CLASSIFIER_LABELS`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnnxConfig {
    /// The ONNX Runtime shared library.
    pub runtime: Option<PathBuf>,
    /// The segmentation model.
    pub model: Option<PathBuf>,
    /// Its input normalisation (`None`: ISNet's).
    pub normalize: Option<Normalize>,
    /// An image classifier for `vision_tag`'s `category` (ImageNet normalisation).
    pub classifier: Option<PathBuf>,
    /// Its labels, one per line, in output order.
    pub classifier_labels: Option<PathBuf>,
}

impl OnnxConfig {
    /// The configuration the environment gives; an unknown normalisation is an error.
    pub fn from_env() -> Result<OnnxConfig> {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let normalize = match std::env::var_os("BATON_SEGMENTATION_NORMALIZE") {
            None => None,
            Some(value) => Some(match value.to_str() {
                Some("isnet") => Normalize::Isnet,
                Some("imagenet") => Normalize::Imagenet,
                _ => {
                    return Err(VisionError::InvalidParameter {
                        name: "BATON_SEGMENTATION_NORMALIZE".into(),
                        message: format!("{value:?} is not `isnet` or `imagenet`"),
                    });
                }
            }),
        };
        Ok(OnnxConfig {
            runtime: baton_onnx::runtime_from_env(),
            model: path("BATON_SEGMENTATION_MODEL"),
            normalize,
            classifier: path("BATON_CLASSIFIER_MODEL"),
            classifier_labels: path("BATON_CLASSIFIER_LABELS"),
        })
    }
}

/// An ONNX model taking one `[1, 3, H, W]` RGB image.
struct Model {
    tensor: TensorModel,
    width: u32,
    height: u32,
}

impl Model {
    /// Open `model` (a `what` model) on the runtime at `runtime`; a dynamic side gets `side`.
    fn open(runtime: Option<&Path>, model: &Path, what: &str, side: u32) -> Result<Model> {
        let tensor = TensorModel::open(runtime, model, what)?;
        let shape = tensor.input_shape()?;
        if shape.len() != 4 || shape.get(1).is_some_and(|&c| c != 3 && c != -1) {
            return Err(VisionError::Model(format!(
                "`{}` takes {shape:?}; Baton feeds {what} models [1, 3, H, W]",
                model.display()
            )));
        }
        let dimension = |i: usize| match shape.get(i) {
            Some(&n) if n > 0 => u32::try_from(n).unwrap_or(side),
            _ => side,
        };
        Ok(Model {
            tensor,
            width: dimension(3),
            height: dimension(2),
        })
    }

    /// Resize `image` to the input, normalise, run: the first output's shape and values.
    fn run(&self, image: &RgbImage, normalize: Normalize) -> Result<(Vec<i64>, Vec<f32>)> {
        let small = resize(image, self.width, self.height, FilterType::Triangle);
        let plane = (self.width * self.height) as usize;
        let mut data = vec![0.0f32; 3 * plane];
        for (i, pixel) in small.pixels().enumerate() {
            for c in 0..3 {
                let x = f32::from(pixel[c]);
                data[c * plane + i] = match normalize {
                    Normalize::Isnet => (x - 128.0) / 256.0,
                    Normalize::Imagenet => {
                        const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
                        const STD: [f32; 3] = [0.229, 0.224, 0.225];
                        (x / 255.0 - MEAN[c]) / STD[c]
                    }
                };
            }
        }
        Ok(self
            .tensor
            .run(&[1, 3, self.height as usize, self.width as usize], data)?)
    }
}

/// A loaded segmentation model.
pub struct OnnxSegmenter {
    model: Model,
    normalize: Normalize,
}

impl std::fmt::Debug for OnnxSegmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxSegmenter")
            .field("input", &self.model.tensor.input_name())
            .field("size", &(self.model.width, self.model.height))
            .finish_non_exhaustive()
    }
}

impl OnnxSegmenter {
    /// Load the configured model.
    pub fn load(config: &OnnxConfig) -> Result<OnnxSegmenter> {
        let runtime = config
            .runtime
            .as_deref()
            .ok_or(baton_onnx::OnnxError::NoRuntime)?;
        let model = config.model.as_deref().ok_or_else(|| {
            VisionError::Model("no segmentation model configured: set BATON_SEGMENTATION_MODEL to an ISNet or U²-Net .onnx file".into())
        })?;
        // Dynamic sides get ISNet's 1024.
        Ok(OnnxSegmenter {
            model: Model::open(Some(runtime), model, "segmentation", 1024)?,
            normalize: config.normalize.unwrap_or(Normalize::Isnet),
        })
    }

    /// Segment `image`: resize to the model's input, normalise, run, rescale the saliency to
    /// 0–1 (min–max, as U²-Net's reference code does) and back to the image's size.
    pub fn segment(&self, image: &RgbImage) -> Result<Segmentation> {
        let (width, height) = image.dimensions();
        let (shape, saliency) = self.model.run(image, self.normalize)?;
        let (out_h, out_w) = match shape.len() {
            4 => (shape[2], shape[3]),
            3 => (shape[1], shape[2]),
            _ => {
                return Err(VisionError::Model(format!(
                    "the model's output has shape {shape:?}; expected [1, 1, H, W]"
                )));
            }
        };
        let (out_w, out_h) = (
            u32::try_from(out_w).unwrap_or(0),
            u32::try_from(out_h).unwrap_or(0),
        );
        let count = (out_w * out_h) as usize;
        if count == 0 || saliency.len() < count {
            return Err(VisionError::Model(format!(
                "the model's output has shape {shape:?}"
            )));
        }
        let (low, high) = saliency[..count]
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let span = (high - low).max(1e-6);
        let scaled: Vec<f32> = saliency[..count].iter().map(|v| (v - low) / span).collect();
        let map: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_raw(out_w, out_h, scaled)
            .ok_or_else(|| {
                VisionError::Model("the model's output does not fit its shape".into())
            })?;
        let full = resize(&map, width, height, FilterType::Triangle);
        let mask = GrayImage::from_raw(
            width,
            height,
            full.as_raw()
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect(),
        )
        .unwrap_or_else(|| GrayImage::new(width, height));
        Ok(measure(mask, backdrop(image, &ToLab::default()), 0.0))
    }
}

/// A product category and the classifier's confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Category {
    /// The label (a line of the labels file).
    pub label: String,
    /// Softmax probability, 0–1.
    pub score: f64,
}

/// A loaded image classifier: `[1, 3, H, W]` (ImageNet normalisation) → `[1, N]` logits, with
/// one label per line in a text file.
pub struct OnnxClassifier {
    model: Model,
    labels: Vec<String>,
}

impl std::fmt::Debug for OnnxClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxClassifier")
            .field("labels", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl OnnxClassifier {
    /// Load the configured classifier, or `None` when none is configured.
    pub fn load(config: &OnnxConfig) -> Result<Option<OnnxClassifier>> {
        let Some(model) = config.classifier.as_deref() else {
            return Ok(None);
        };
        let labels_path = config.classifier_labels.as_deref().ok_or_else(|| {
            VisionError::Model("a classifier needs its labels: set BATON_CLASSIFIER_LABELS to a text file with one label per line".into())
        })?;
        let text = std::fs::read_to_string(labels_path).map_err(|source| VisionError::Io {
            action: "read",
            path: labels_path.display().to_string(),
            source,
        })?;
        let labels: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        if labels.is_empty() {
            return Err(VisionError::Model(format!(
                "`{}` holds no labels",
                labels_path.display()
            )));
        }
        // Dynamic sides get the usual 224.
        Ok(Some(OnnxClassifier {
            model: Model::open(config.runtime.as_deref(), model, "classifier", 224)?,
            labels,
        }))
    }

    /// The most likely category of `image` (the product crop on white, ideally).
    pub fn classify(&self, image: &RgbImage) -> Result<Category> {
        let (_, logits) = self.model.run(image, Normalize::Imagenet)?;
        if logits.len() != self.labels.len() {
            return Err(VisionError::Model(format!(
                "the classifier gives {} scores for {} labels",
                logits.len(),
                self.labels.len()
            )));
        }
        let top = logits.iter().copied().fold(f32::MIN, f32::max);
        let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - top).exp()).collect();
        let total: f64 = exps.iter().sum();
        let (best, weight) = exps
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or((0, 0.0), |(i, w)| (i, *w));
        Ok(Category {
            label: self.labels[best].clone(),
            score: weight / total,
        })
    }
}

/// The configured models, each loaded on first use and kept.
#[derive(Debug, Default)]
pub struct Onnx {
    config: OnnxConfig,
    segmenter: Mutex<Option<Arc<OnnxSegmenter>>>,
    classifier: Mutex<Option<Option<Arc<OnnxClassifier>>>>,
}

impl Onnx {
    /// The models `config` names.
    pub fn new(config: OnnxConfig) -> Onnx {
        Onnx {
            config,
            segmenter: Mutex::new(None),
            classifier: Mutex::new(None),
        }
    }

    /// The segmenter, loading it the first time.
    pub fn segmenter(&self) -> Result<Arc<OnnxSegmenter>> {
        let mut loaded = self.segmenter.lock().map_err(|_| {
            VisionError::Model("the segmentation model was poisoned by an earlier failure".into())
        })?;
        if let Some(segmenter) = loaded.as_ref() {
            return Ok(segmenter.clone());
        }
        let segmenter = Arc::new(OnnxSegmenter::load(&self.config)?);
        *loaded = Some(segmenter.clone());
        Ok(segmenter)
    }

    /// The classifier, loading it the first time; `None` when none is configured.
    pub fn classifier(&self) -> Result<Option<Arc<OnnxClassifier>>> {
        let mut loaded = self.classifier.lock().map_err(|_| {
            VisionError::Model("the classifier was poisoned by an earlier failure".into())
        })?;
        if let Some(classifier) = loaded.as_ref() {
            return Ok(classifier.clone());
        }
        let classifier = OnnxClassifier::load(&self.config)?.map(Arc::new);
        *loaded = Some(classifier.clone());
        Ok(classifier)
    }
}
