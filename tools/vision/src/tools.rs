//! The `vision` pack's MCP-neutral tools. Image work runs off the async runtime; batches use
//! every core and report progress between images.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use baton_kit::{
    Confined, Effect, Registry, RegistryError, StoredArtifact, Tool, ToolContext, ToolError,
};
use baton_knowledge::{Derived, Shelf};
use image::{GrayImage, ImageFormat, RgbImage, RgbaImage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::color::{hex, parse_hex};
use crate::onnx::Category;
use crate::qa::{IssueCode, QaConfig, QaReport, qa};
use crate::segment::{BBox, Segmentation, segment};
use crate::tag::{DominantColor, dominant_colors};
use crate::{Onnx, Result, VisionError, load_within};

/// Where QA thresholds are read from in the knowledge root.
pub const THRESHOLDS_URI: &str = "knowledge://vision/qa.toml";
/// Most images one batch call takes.
pub const MAX_BATCH: usize = 10_000;

/// QA thresholds: `knowledge/vision/qa.toml` when present, the documented defaults otherwise.
/// Parsed once per knowledge reload through the knowledge crate's one hot-reload mechanism
/// ([`Derived`]): an edit that does not parse keeps the last good thresholds in force, and
/// [`Thresholds::error`] says why.
#[derive(Debug, Clone)]
pub struct Thresholds {
    derived: Option<Arc<Derived<QaConfig>>>,
}

impl Thresholds {
    /// Thresholds read from `shelf`.
    pub fn new(shelf: Arc<Shelf>) -> Thresholds {
        let derived = Derived::new("vision thresholds", shelf, |library| {
            match library.get(THRESHOLDS_URI) {
                None => Ok(QaConfig::default()),
                Some(document) => toml::from_str(&document.text),
            }
        });
        Thresholds {
            derived: Some(Arc::new(derived)),
        }
    }

    /// The defaults, whatever is on disk.
    pub fn defaults() -> Thresholds {
        Thresholds { derived: None }
    }

    /// The thresholds in force now: the newest good `qa.toml`, or an error naming the file
    /// when it has never parsed.
    pub fn config(&self) -> Result<QaConfig> {
        let Some(derived) = &self.derived else {
            return Ok(QaConfig::default());
        };
        match derived.get() {
            Some(config) => Ok((*config).clone()),
            None => Err(thresholds_error(derived.error().unwrap_or_default())),
        }
    }

    /// Why the newest `qa.toml` is not in force, when it is not (the last good thresholds
    /// are).
    pub fn error(&self) -> Option<VisionError> {
        self.derived
            .as_ref()
            .and_then(|derived| derived.error())
            .map(thresholds_error)
    }
}

fn thresholds_error(message: String) -> VisionError {
    VisionError::Config {
        file: THRESHOLDS_URI.into(),
        message,
    }
}

/// Register every tool of the pack under `pack` (normally `vision`).
pub fn register(
    registry: &mut Registry,
    pack: &str,
    thresholds: Thresholds,
    onnx: Arc<Onnx>,
) -> std::result::Result<(), RegistryError> {
    registry.register(pack, VisionQa(thresholds.clone()))?;
    registry.register(pack, VisionSegment(onnx.clone()))?;
    registry.register(pack, VisionTag(onnx.clone()))?;
    registry.register(pack, VisionProcess(thresholds.clone(), onnx.clone()))?;
    registry.register(pack, VisionBatch(thresholds, onnx))?;
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> baton_kit::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ToolError::failed(format!("image worker stopped: {error}")))?
        .map_err(ToolError::from)
}

/// Backdrops a cut-out can be put on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backdrop {
    /// Alpha channel.
    Transparent,
    /// A solid colour.
    Solid([u8; 3]),
}

/// Parse `white`, `transparent` or `#rrggbb`.
pub fn parse_backdrop(text: &str) -> Result<Backdrop> {
    match text {
        "white" => Ok(Backdrop::Solid([255, 255, 255])),
        "transparent" => Ok(Backdrop::Transparent),
        other => {
            parse_hex(other)
                .map(Backdrop::Solid)
                .ok_or_else(|| VisionError::InvalidParameter {
                    name: "background".into(),
                    message: format!("`{other}` is not white, transparent or #rrggbb"),
                })
        }
    }
}

/// The subject composited on `backdrop` through the soft mask, as PNG bytes.
pub fn cutout(image: &RgbImage, mask: &GrayImage, backdrop: Backdrop) -> Result<Vec<u8>> {
    let (width, height) = image.dimensions();
    let mut bytes = Vec::new();
    let encode = |error: image::ImageError| VisionError::Io {
        action: "encode",
        path: "cut-out.png".into(),
        source: std::io::Error::other(error.to_string()),
    };
    match backdrop {
        Backdrop::Transparent => {
            let mut out = RgbaImage::new(width, height);
            for ((o, p), m) in out.pixels_mut().zip(image.pixels()).zip(mask.pixels()) {
                *o = image::Rgba([p[0], p[1], p[2], m[0]]);
            }
            out.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
                .map_err(encode)?;
        }
        Backdrop::Solid(colour) => {
            let mut out = RgbImage::new(width, height);
            for ((o, p), m) in out.pixels_mut().zip(image.pixels()).zip(mask.pixels()) {
                let alpha = u32::from(m[0]);
                for c in 0..3 {
                    let mixed =
                        (u32::from(p[c]) * alpha + u32::from(colour[c]) * (255 - alpha) + 127)
                            / 255;
                    o[c] = mixed as u8;
                }
            }
            out.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
                .map_err(encode)?;
        }
    }
    Ok(bytes)
}

/// What the call may write: the gate's sandbox (unconfined for a tool run directly).
fn sandbox_of(ctx: &ToolContext) -> baton_kit::Sandbox {
    ctx.sandbox()
        .cloned()
        .unwrap_or_else(baton_kit::Sandbox::unconfined)
}

fn png(mask: &GrayImage) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    mask.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|error| VisionError::Io {
            action: "encode",
            path: "mask.png".into(),
            source: std::io::Error::other(error.to_string()),
        })?;
    Ok(bytes)
}

/// `vision_qa` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QaArgs {
    /// The photo (JPEG, PNG or WebP).
    pub path: String,
}

/// `vision_qa`.
#[derive(Debug)]
pub struct VisionQa(pub Thresholds);

impl Tool for VisionQa {
    type Args = QaArgs;
    type Output = QaReport;

    const NAME: &'static str = "vision_qa";
    const TITLE: Option<&'static str> = Some("Check a product photo");
    const DESCRIPTION: &'static str = "Check a product photo against marketplace rules: \
        sharpness (variance of the Laplacian, as OpenCV scores it), size, exposure of the \
        product, a clean uniform backdrop, and the product filling and centred in the frame. \
        Returns the measurements and issues LOW_RES, BLURRY, OVEREXPOSED, UNDEREXPOSED, \
        CLUTTERED_BACKGROUND, SUBJECT_TOO_SMALL, OFF_CENTER.";
    const EFFECT: Effect = Effect::Read;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const HEAVY: bool = true;

    async fn call(&self, args: QaArgs, ctx: ToolContext) -> baton_kit::Result<QaReport> {
        let budget = ctx.memory_budget();
        let config = self.0.config()?;
        blocking(move || {
            let image = load_within(Path::new(&args.path), budget)?;
            Ok(qa(&image, &segment(&image), &config))
        })
        .await
    }
}

/// Segmentation methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMethod {
    /// Backdrop colour model from the border, colour distance with a soft-shadow test,
    /// morphology, largest parts, feathered edge. Fast and deterministic; no model needed.
    #[default]
    Classic,
    /// The user's salient-object / matting model (ISNet, U²-Net) through ONNX Runtime, when
    /// one is configured (`ORT_DYLIB_PATH`, `BATON_SEGMENTATION_MODEL`).
    Onnx,
}

/// `vision_segment` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentArgs {
    /// The photo.
    pub path: String,
    /// Where to write the cut-out PNG; the mask goes beside it as `<name>.mask.png`.
    pub out: String,
    /// `white`, `transparent` (default) or `#rrggbb`.
    #[serde(default = "transparent")]
    pub background: String,
    /// Method (default classic).
    #[serde(default)]
    pub method: SegmentMethod,
}

fn transparent() -> String {
    "transparent".into()
}

fn white() -> String {
    "white".into()
}

/// `vision_segment` result.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SegmentOutput {
    /// The cut-out written.
    pub out: String,
    /// The mask written (8-bit, 255 = product, feathered edge).
    pub mask: String,
    /// Share of the image that is product.
    pub coverage: f64,
    /// The product's bounding box (`null` when nothing stands out).
    pub bbox: Option<BBox>,
    /// The backdrop colour that was removed.
    pub removed_background_hex: String,
}

/// `vision_segment`.
#[derive(Debug)]
pub struct VisionSegment(pub Arc<Onnx>);

impl Tool for VisionSegment {
    type Args = SegmentArgs;
    type Output = SegmentOutput;

    const NAME: &'static str = "vision_segment";
    const TITLE: Option<&'static str> = Some("Remove a photo's background");
    const DESCRIPTION: &'static str = "Cut the product out of its backdrop (soft shadows \
        included in the backdrop) and write the cut-out PNG on white, transparent or a colour, \
        plus the foreground mask. Returns coverage and bounding box.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out", "cutout.png")];
    const HEAVY: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out"];

    async fn call(&self, args: SegmentArgs, ctx: ToolContext) -> baton_kit::Result<SegmentOutput> {
        let backdrop = parse_backdrop(&args.background)?;
        let onnx = self.0.clone();
        let sandbox = sandbox_of(&ctx);
        let budget = ctx.memory_budget();
        blocking(move || {
            let image = load_within(Path::new(&args.path), budget)?;
            let segmentation = match args.method {
                SegmentMethod::Classic => segment(&image),
                SegmentMethod::Onnx => onnx.segmenter()?.segment(&image)?,
            };
            let out = PathBuf::from(&args.out);
            let mask_path = out.with_extension("mask.png");
            let cut = cutout(&image, &segmentation.mask, backdrop)?;
            sandbox.write_file(&out, |file| file.write_all(&cut))?;
            let mask = png(&segmentation.mask)?;
            sandbox.write_file(&mask_path, |file| file.write_all(&mask))?;
            Ok(SegmentOutput {
                out: args.out,
                mask: mask_path.display().to_string(),
                coverage: segmentation.coverage,
                bbox: segmentation.bbox,
                removed_background_hex: hex(segmentation.backdrop.rgb),
            })
        })
        .await
    }
}

/// `vision_tag` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TagArgs {
    /// The photo.
    pub path: String,
}

/// `vision_tag` result.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TagOutput {
    /// The product's main colours (its pixels only, not the backdrop), largest first.
    pub dominant_colors: Vec<DominantColor>,
    /// The product's category, when a classifier model is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

/// The product's box cut out onto white: what a classifier sees.
fn product_crop(image: &RgbImage, segmentation: &Segmentation) -> RgbImage {
    let Some(b) = segmentation.bbox else {
        return image.clone();
    };
    RgbImage::from_fn(b.width, b.height, |x, y| {
        let (px, py) = (b.x + x, b.y + y);
        let p = image.get_pixel(px, py);
        let alpha = u32::from(segmentation.mask.get_pixel(px, py)[0]);
        image::Rgb(
            [0, 1, 2].map(|c| ((u32::from(p[c]) * alpha + 255 * (255 - alpha) + 127) / 255) as u8),
        )
    })
}

/// The category of the segmented product, when a classifier is configured.
fn categorise(
    onnx: &Onnx,
    image: &RgbImage,
    segmentation: &Segmentation,
) -> Result<Option<Category>> {
    match onnx.classifier()? {
        Some(classifier) => Ok(Some(
            classifier.classify(&product_crop(image, segmentation))?,
        )),
        None => Ok(None),
    }
}

/// `vision_tag`.
#[derive(Debug)]
pub struct VisionTag(pub Arc<Onnx>);

impl Tool for VisionTag {
    type Args = TagArgs;
    type Output = TagOutput;

    const NAME: &'static str = "vision_tag";
    const TITLE: Option<&'static str> = Some("Describe a product's colours");
    const DESCRIPTION: &'static str = "Name the product's dominant colours (k-means in CIELAB \
        over the product's pixels only, named against a fixed palette) with their shares, and \
        its category with a score when a classifier model is configured.";
    const EFFECT: Effect = Effect::Read;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const HEAVY: bool = true;

    async fn call(&self, args: TagArgs, ctx: ToolContext) -> baton_kit::Result<TagOutput> {
        let budget = ctx.memory_budget();
        let onnx = self.0.clone();
        blocking(move || {
            let image = load_within(Path::new(&args.path), budget)?;
            let segmentation = segment(&image);
            Ok(TagOutput {
                dominant_colors: dominant_colors(&image, &segmentation.mask),
                category: categorise(&onnx, &image, &segmentation)?,
            })
        })
        .await
    }
}

/// Everything `vision_process` learns about one photo (also written as `<name>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProcessOutput {
    /// The photo read.
    pub source: String,
    /// The ready-to-list PNG written.
    pub image: String,
    /// The metadata file written.
    pub metadata: String,
    /// QA measurements and issues (on the original photo).
    pub qa: QaReport,
    /// The product's colours.
    pub dominant_colors: Vec<DominantColor>,
    /// The product's category, when a classifier model is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

/// Segment → QA → tag one photo and write `<name>.png` and `<name>.json` into `out` (the
/// folder `out_dir`, opened confined to the call's sandbox).
pub fn process_one(
    path: &Path,
    out: &Confined,
    out_dir: &Path,
    backdrop: Backdrop,
    config: &QaConfig,
    onnx: &Onnx,
) -> Result<ProcessOutput> {
    process_one_within(
        path,
        out,
        out_dir,
        backdrop,
        config,
        onnx,
        baton_kit::DEFAULT_MEMORY_BUDGET,
    )
}

/// [`process_one`], refusing a photo whose checking would need more than `budget` bytes.
pub fn process_one_within(
    path: &Path,
    out: &Confined,
    out_dir: &Path,
    backdrop: Backdrop,
    config: &QaConfig,
    onnx: &Onnx,
    budget: u64,
) -> Result<ProcessOutput> {
    let image = load_within(path, budget)?;
    let segmentation = segment(&image);
    let report = qa(&image, &segmentation, config);
    let colors = dominant_colors(&image, &segmentation.mask);
    let category = categorise(onnx, &image, &segmentation)?;
    let stem = path
        .file_stem()
        .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
    let image_path = out_dir.join(format!("{stem}.png"));
    let metadata_path = out_dir.join(format!("{stem}.json"));
    let cut = cutout(&image, &segmentation.mask, backdrop)?;
    out.write_with(Path::new(&format!("{stem}.png")), |file| {
        file.write_all(&cut)
    })?;
    let output = ProcessOutput {
        source: path.display().to_string(),
        image: image_path.display().to_string(),
        metadata: metadata_path.display().to_string(),
        qa: report,
        dominant_colors: colors,
        category,
    };
    let json = serde_json::to_vec_pretty(&output).map_err(|error| VisionError::Io {
        action: "encode",
        path: metadata_path.display().to_string(),
        source: std::io::Error::other(error.to_string()),
    })?;
    out.write_with(Path::new(&format!("{stem}.json")), |file| {
        file.write_all(&json)
    })?;
    Ok(output)
}

/// `vision_process` arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessArgs {
    /// The photo.
    pub path: String,
    /// Folder for `<name>.png` and `<name>.json`; created if missing.
    pub out_dir: String,
    /// Backdrop of the ready-to-list image: `white` (default), `transparent` or `#rrggbb`.
    #[serde(default = "white")]
    pub background: String,
}

/// `vision_process`.
#[derive(Debug)]
pub struct VisionProcess(pub Thresholds, pub Arc<Onnx>);

impl Tool for VisionProcess {
    type Args = ProcessArgs;
    type Output = ProcessOutput;

    const NAME: &'static str = "vision_process";
    const TITLE: Option<&'static str> = Some("Prepare a photo for listing");
    const DESCRIPTION: &'static str = "Remove the backdrop, check the photo (QA) and name its \
        colours, then write `<name>.png` (ready to list) and `<name>.json` (all metadata) into \
        `out_dir`.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/path"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out_dir", "listing/")];
    const HEAVY: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out_dir"];

    async fn call(&self, args: ProcessArgs, ctx: ToolContext) -> baton_kit::Result<ProcessOutput> {
        let backdrop = parse_backdrop(&args.background)?;
        let config = self.0.config()?;
        let onnx = self.1.clone();
        let sandbox = sandbox_of(&ctx);
        blocking(move || {
            let out_dir = Path::new(&args.out_dir);
            let dir = sandbox.create_dir(out_dir)?;
            process_one(
                Path::new(&args.path),
                &dir,
                out_dir,
                backdrop,
                &config,
                &onnx,
            )
        })
        .await
    }
}

/// `vision_batch` arguments: `paths`, or every JPEG/PNG/WebP in `dir`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchArgs {
    /// Photos to process.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A folder whose `.jpg`, `.jpeg`, `.png` and `.webp` files are processed (not recursive).
    #[serde(default)]
    pub dir: Option<String>,
    /// Folder for the outputs and `batch.json`; created if missing.
    pub out_dir: String,
    /// Backdrop of the ready-to-list images (default white).
    #[serde(default = "white")]
    pub background: String,
}

/// One photo of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BatchItem {
    /// The photo.
    pub source: String,
    /// The ready-to-list PNG, when it was processed.
    pub image: Option<String>,
    /// QA issue codes found.
    pub issues: Vec<IssueCode>,
    /// Why it could not be processed, when it could not.
    pub error: Option<String>,
}

/// `vision_batch` result (also written as `batch.json`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BatchOutput {
    /// Photos processed.
    pub processed: usize,
    /// Photos that could not be processed.
    pub failed: usize,
    /// Photos with no QA issue.
    pub ready: usize,
    /// Worker threads used.
    pub workers: usize,
    /// Throughput of this batch.
    pub images_per_second: f64,
    /// One entry per photo, in input order.
    pub items: Vec<BatchItem>,
    /// The summary written.
    pub summary: String,
    /// The same summary kept in Baton's store, readable by an MCP client at its `uri`; absent
    /// only when the tool runs outside the gate (a library call).
    pub stored: Option<StoredArtifact>,
}

/// `vision_batch`.
#[derive(Debug)]
pub struct VisionBatch(pub Thresholds, pub Arc<Onnx>);

fn listed(dir: &str) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|source| VisionError::Io {
        action: "read",
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<String> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(
                    e.to_ascii_lowercase().as_str(),
                    "jpg" | "jpeg" | "png" | "webp"
                )
            })
        })
        .map(|path| path.display().to_string())
        .collect();
    paths.sort();
    Ok(paths)
}

/// One `vision_batch` call's work, run on a blocking thread.
struct BatchJob {
    paths: Vec<String>,
    out_dir: PathBuf,
    backdrop: Backdrop,
    config: QaConfig,
    onnx: Arc<Onnx>,
    budget: u64,
}

impl BatchJob {
    /// Process every photo on every core, then write `batch.json`: the output and its bytes.
    fn run(
        self,
        sandbox: &baton_kit::Sandbox,
        ctx: &ToolContext,
    ) -> Result<(BatchOutput, Vec<u8>)> {
        let out_dir = self.out_dir.as_path();
        let dir = sandbox.create_dir(out_dir)?;
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(self.paths.len());
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let results: Mutex<Vec<Option<BatchItem>>> = Mutex::new(vec![None; self.paths.len()]);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        if stop.load(Ordering::Relaxed) || ctx.is_cancelled() {
                            stop.store(true, Ordering::Relaxed);
                            return;
                        }
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(source) = self.paths.get(index) else {
                            return;
                        };
                        // The call's budget is shared by the photos in flight.
                        let item = self.item(source, &dir, self.budget / workers as u64);
                        if let Ok(mut results) = results.lock() {
                            results[index] = Some(item);
                        }
                        let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                        ctx.progress(
                            finished as f64,
                            Some(self.paths.len() as f64),
                            format!("{finished} of {} photos", self.paths.len()),
                        );
                    }
                });
            }
        });
        if stop.load(Ordering::Relaxed) {
            return Err(VisionError::Cancelled);
        }
        let elapsed = start.elapsed().as_secs_f64();
        let items: Vec<BatchItem> = results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .into_iter()
            .flatten()
            .collect();
        summarize(&dir, out_dir, items, workers, elapsed)
    }

    /// Process one photo of the batch: its entry, whether it worked or not.
    fn item(&self, source: &str, dir: &Confined, budget: u64) -> BatchItem {
        match process_one_within(
            Path::new(source),
            dir,
            &self.out_dir,
            self.backdrop,
            &self.config,
            &self.onnx,
            budget,
        ) {
            Ok(output) => BatchItem {
                source: source.to_owned(),
                image: Some(output.image),
                issues: output.qa.issues.iter().map(|i| i.code).collect(),
                error: None,
            },
            Err(error) => BatchItem {
                source: source.to_owned(),
                image: None,
                issues: Vec::new(),
                error: Some(error.to_string()),
            },
        }
    }
}

/// The batch's output from its `items`, with `batch.json` written in `dir` (the folder
/// `out_dir`): its bytes too.
fn summarize(
    dir: &Confined,
    out_dir: &Path,
    items: Vec<BatchItem>,
    workers: usize,
    elapsed: f64,
) -> Result<(BatchOutput, Vec<u8>)> {
    let failed = items.iter().filter(|i| i.error.is_some()).count();
    let summary = out_dir.join("batch.json");
    let output = BatchOutput {
        processed: items.len() - failed,
        failed,
        ready: items
            .iter()
            .filter(|i| i.error.is_none() && i.issues.is_empty())
            .count(),
        workers,
        images_per_second: items.len() as f64 / elapsed.max(1e-9),
        items,
        summary: summary.display().to_string(),
        stored: None,
    };
    let json = serde_json::to_vec_pretty(&output).map_err(|error| VisionError::Io {
        action: "encode",
        path: summary.display().to_string(),
        source: std::io::Error::other(error.to_string()),
    })?;
    dir.write_with(Path::new("batch.json"), |file| file.write_all(&json))?;
    Ok((output, json))
}

/// The batch's photos processed by workers, one `vision_process` call each: the batch's
/// entries from their answers (in input order), and how many workers ran them.
async fn on_workers(
    fanout: &dyn baton_kit::Fanout,
    paths: &[String],
    args: &BatchArgs,
    ctx: &ToolContext,
) -> baton_kit::Result<(Vec<BatchItem>, usize)> {
    let calls = paths
        .iter()
        .map(|path| {
            serde_json::json!({"path": path, "out_dir": args.out_dir, "background": args.background})
        })
        .collect();
    let fanned = fanout.fan_out(VisionProcess::NAME, calls, ctx).await?;
    let items = paths
        .iter()
        .zip(fanned.items)
        .map(|(source, answer)| {
            let processed = answer.and_then(|value| {
                serde_json::from_value::<ProcessOutput>(value).map_err(|e| {
                    format!("a worker's answer does not read as vision_process's: {e}")
                })
            });
            match processed {
                Ok(output) => BatchItem {
                    source: source.clone(),
                    image: Some(output.image),
                    issues: output.qa.issues.iter().map(|i| i.code).collect(),
                    error: None,
                },
                Err(error) => BatchItem {
                    source: source.clone(),
                    image: None,
                    issues: Vec::new(),
                    error: Some(error),
                },
            }
        })
        .collect();
    Ok((items, fanned.workers))
}

impl Tool for VisionBatch {
    type Args = BatchArgs;
    type Output = BatchOutput;

    const NAME: &'static str = "vision_batch";
    const TITLE: Option<&'static str> = Some("Prepare many photos");
    const DESCRIPTION: &'static str = "Run vision_process on many photos (a list, or every \
        JPEG/PNG/WebP in a folder) in parallel on every core, reporting progress; writes each \
        photo's PNG and JSON and a `batch.json` summary into `out_dir`.";
    const EFFECT: Effect = Effect::Write;
    const FILE_ARGS: &'static [&'static str] = &["/paths"];
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[("/out_dir", "batch/")];
    const HEAVY: bool = true;
    const LONG: bool = true;
    const PATH_ARGS: &'static [&'static str] = &["/out_dir"];

    async fn call(&self, args: BatchArgs, ctx: ToolContext) -> baton_kit::Result<BatchOutput> {
        let backdrop = parse_backdrop(&args.background)?;
        let config = self.0.config()?;
        let onnx = self.1.clone();
        let mut paths = args.paths.clone();
        if let Some(dir) = &args.dir {
            paths.extend(listed(dir)?);
        }
        if paths.is_empty() {
            return Err(ToolError::invalid_args(
                "paths",
                "no photos: give `paths` or a `dir` holding some",
            ));
        }
        if paths.len() > MAX_BATCH {
            return Err(ToolError::invalid_args(
                "paths",
                format!("{} photos; at most {MAX_BATCH} per call", paths.len()),
            ));
        }
        let keeper = ctx.clone();
        let sandbox = sandbox_of(&ctx);
        if let Some(fanout) = ctx.fanout() {
            let start = Instant::now();
            let (items, workers) = on_workers(fanout.as_ref(), &paths, &args, &ctx).await?;
            let elapsed = start.elapsed().as_secs_f64();
            let out_dir = PathBuf::from(&args.out_dir);
            let done = blocking(move || {
                let dir = sandbox.create_dir(&out_dir)?;
                summarize(&dir, &out_dir, items, workers, elapsed)
            })
            .await?;
            let (mut output, json) = done;
            output.stored = keeper.store_artifact(json, "application/json").await?;
            return Ok(output);
        }
        let budget = ctx.memory_budget();
        let done = blocking(move || {
            let job = BatchJob {
                paths,
                out_dir: PathBuf::from(&args.out_dir),
                backdrop,
                config,
                onnx,
                budget,
            };
            job.run(&sandbox, &ctx)
        })
        .await?;
        let (mut output, json) = done;
        output.stored = keeper.store_artifact(json, "application/json").await?;
        Ok(output)
    }
}
