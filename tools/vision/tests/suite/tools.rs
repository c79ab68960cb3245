//! The pack's tools as the gate calls them, on images the test draws, and on files that are
//! not what they claim to be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use baton_kit::{Tool, ToolContext};
use baton_vision::{
    BatchArgs, IssueCode, ProcessArgs, QaArgs, SegmentArgs, TagArgs, Thresholds, VisionBatch,
    VisionProcess, VisionQa, VisionSegment, VisionTag,
};
use image::{GenericImageView, ImageFormat, Rgb, RgbImage};
use pretty_assertions::assert_eq;
use tokio_util::sync::CancellationToken;

fn ctx() -> ToolContext {
    ToolContext::new(CancellationToken::new())
}

/// A red disc on a light grey backdrop, with a little deterministic noise.
fn product(width: u32, height: u32) -> RgbImage {
    let (cx, cy, r) = (
        width as f64 / 2.0,
        height as f64 / 2.0,
        height as f64 * 0.35,
    );
    RgbImage::from_fn(width, height, |x, y| {
        let noise = ((x * 7 + y * 13) % 5) as u8;
        let inside = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) <= r * r;
        if inside {
            Rgb([200 + noise, 30 + noise, 40])
        } else {
            Rgb([235 + noise, 235 + noise, 235 + noise])
        }
    })
}

fn save(dir: &Path, name: &str, image: &RgbImage) -> String {
    let path = dir.join(name);
    image.save(&path).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn qa_segment_tag_and_process_agree_on_a_clean_shot() {
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "disc.png", &product(1200, 1000));
    let report = VisionQa(Thresholds::defaults())
        .call(QaArgs { path: path.clone() }, ctx())
        .await
        .unwrap();
    assert_eq!(report.issues, vec![]);
    assert_eq!((report.width, report.height), (1200, 1000));
    assert!(report.background.uniform);
    assert!(report.subject.centered);
    let bbox = report.subject.bbox.unwrap();
    assert!(
        (bbox.width as i64 - 700).abs() <= 4 && (bbox.height as i64 - 700).abs() <= 4,
        "{bbox:?}"
    );

    let out = dir.path().join("cut.png").display().to_string();
    let segmented = VisionSegment(std::sync::Arc::default())
        .call(
            serde_json::from_value::<SegmentArgs>(
                serde_json::json!({"path": path, "out": out, "background": "#00ff00"}),
            )
            .unwrap(),
            ctx(),
        )
        .await
        .unwrap();
    assert!(segmented.mask.ends_with("cut.mask.png"));
    let cut = image::open(&out).unwrap().into_rgb8();
    assert_eq!(
        cut.get_pixel(5, 5),
        &Rgb([0, 255, 0]),
        "the backdrop is replaced"
    );
    assert_eq!(cut.get_pixel(600, 500)[0] >= 200, true, "the product stays");
    assert!((segmented.coverage - std::f64::consts::PI * 350.0 * 350.0 / 1.2e6).abs() < 0.005);

    let tags = VisionTag(std::sync::Arc::default())
        .call(TagArgs { path: path.clone() }, ctx())
        .await
        .unwrap();
    assert_eq!(tags.dominant_colors[0].name, "red");
    assert!(tags.dominant_colors[0].share > 0.9, "{tags:?}");

    let processed = VisionProcess(Thresholds::defaults(), std::sync::Arc::default())
        .call(
            ProcessArgs {
                path,
                out_dir: dir.path().join("out").display().to_string(),
                background: "white".into(),
            },
            ctx(),
        )
        .await
        .unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&processed.metadata).unwrap()).unwrap();
    assert_eq!(written["qa"]["issues"], serde_json::json!([]));
    assert_eq!(written["dominant_colors"][0]["name"], "red");
    assert_eq!(
        image::open(&processed.image).unwrap().get_pixel(3, 3).0,
        [255, 255, 255, 255]
    );
}

#[tokio::test]
async fn batch_processes_a_folder_in_parallel_and_reports_failures_per_photo() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 0..5 {
        save(&photos, &format!("p{i}.jpg"), &product(800 + i * 10, 700));
    }
    std::fs::write(photos.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    std::fs::write(photos.join("notes.txt"), b"ignored").unwrap();
    let out = VisionBatch(Thresholds::defaults(), std::sync::Arc::default())
        .call(
            BatchArgs {
                paths: vec![],
                dir: Some(photos.display().to_string()),
                out_dir: dir.path().join("out").display().to_string(),
                background: "white".into(),
            },
            ctx(),
        )
        .await
        .unwrap();
    assert_eq!((out.processed, out.failed), (5, 1));
    assert!(
        out.items[0]
            .error
            .as_deref()
            .unwrap()
            .contains("broken.png"),
        "{:?}",
        out.items[0]
    );
    for item in &out.items[1..] {
        assert_eq!(item.issues, vec![IssueCode::LowRes], "{item:?}");
        assert!(Path::new(item.image.as_ref().unwrap()).exists());
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out.summary).unwrap()).unwrap();
    assert_eq!(summary["processed"], 5);
}

/// A PNG header declaring `width × height` with nothing after it.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    bytes.extend(13u32.to_be_bytes());
    bytes.extend(&ihdr);
    let crc = crc(&ihdr);
    bytes.extend(crc.to_be_bytes());
    bytes
}

/// [`png_header`] followed by the start of its pixel data (a small deflate stream) and the
/// end: what a decoder needs before it reports the image's size.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png_header(width, height);
    for (kind, data) in [
        (
            &b"IDAT"[..],
            &[0x78u8, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff][..],
        ),
        (&b"IEND"[..], &[][..]),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        bytes.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
        bytes.extend(&chunk);
        bytes.extend(crc(&chunk).to_be_bytes());
    }
    bytes
}

fn crc(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                0xEDB8_8320 ^ (crc >> 1)
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The budget is the configuration's: a photo fine by default is refused under a small one,
/// before decoding, and every vision tool that reads a photo checks it.
#[tokio::test]
async fn a_photo_over_the_memory_budget_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shot.png");
    product(1000, 800).save(&path).unwrap();
    let tight = ctx().with_memory_budget(16 << 20);
    let error = VisionQa(Thresholds::defaults())
        .call(
            QaArgs {
                path: path.display().to_string(),
            },
            tight.clone(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(
            "1000 × 800 (0.8 MP) needs about 18.3 MiB to check; a call may use 16.0 MiB \
             ([limits] call_memory_mb)"
        ),
        "{error}"
    );
    VisionQa(Thresholds::defaults())
        .call(
            QaArgs {
                path: path.display().to_string(),
            },
            ctx(),
        )
        .await
        .unwrap();
}

/// A cut-out with a transparent backdrop is checked as a marketplace shows it — over white —
/// not over the black its transparent pixels hold: the same report as the same shot on white.
#[tokio::test]
async fn a_transparent_backdrop_is_white_not_black() {
    let dir = tempfile::tempdir().unwrap();
    let shot = product(800, 600);
    let backdrop = |p: &Rgb<u8>| p[0] >= 235 && p[1] >= 235;
    let white = RgbImage::from_fn(800, 600, |x, y| {
        let p = shot.get_pixel(x, y);
        if backdrop(p) {
            Rgb([255, 255, 255])
        } else {
            *p
        }
    });
    let on_white = dir.path().join("white.png");
    white.save(&on_white).unwrap();
    let cutout = image::RgbaImage::from_fn(800, 600, |x, y| {
        let p = shot.get_pixel(x, y);
        if backdrop(p) {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([p[0], p[1], p[2], 255])
        }
    });
    let transparent = dir.path().join("transparent.png");
    cutout.save(&transparent).unwrap();
    let qa = |path: &Path| {
        let path = path.display().to_string();
        async move {
            VisionQa(Thresholds::defaults())
                .call(QaArgs { path }, ctx())
                .await
                .unwrap()
        }
    };
    let white = serde_json::to_value(qa(&on_white).await).unwrap();
    let clear = serde_json::to_value(qa(&transparent).await).unwrap();
    assert_eq!(clear, white);
}

#[tokio::test]
async fn bad_files_get_a_clear_invalid_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut jpeg = Vec::new();
    product(400, 300)
        .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.jpg", Vec::new(), "the file is empty (0 bytes)"),
        (
            "notes.jpg",
            b"just some words, not pixels".to_vec(),
            "not an image Baton reads",
        ),
        ("cut.jpg", jpeg[..jpeg.len() / 3].to_vec(), "cannot decode"),
        (
            "bomb.png",
            png_header(50_000, 50_000),
            "larger than Baton decodes",
        ),
        // Within the pixel limit, over the memory budget: refused from the header.
        (
            "hundred-megapixels.png",
            png_claiming(10_000, 10_000),
            "10000 × 10000 (100.0 MP) needs about 2.2 GiB to check; a call may use 2.0 GiB",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = VisionQa(Thresholds::defaults())
            .call(
                QaArgs {
                    path: path.display().to_string(),
                },
                ctx(),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("invalid input") && error.contains(name) && error.contains(expected),
            "{name}: {error}"
        );
    }
    let bad_backdrop = VisionSegment(std::sync::Arc::default())
        .call(
            serde_json::from_value::<SegmentArgs>(serde_json::json!({
                "path": "x.png", "out": "y.png", "background": "mauve"
            }))
            .unwrap(),
            ctx(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        bad_backdrop,
        "invalid arguments at `background`: `mauve` is not white, transparent or #rrggbb"
    );
}

#[test]
fn the_committed_thresholds_file_states_the_defaults_and_edits_take_effect() {
    use std::sync::Arc;

    use baton_knowledge::{Library, Shelf};
    use baton_vision::QaConfig;

    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge/vision/qa.toml");
    let parsed: QaConfig = toml::from_str(&std::fs::read_to_string(&committed).unwrap()).unwrap();
    assert_eq!(parsed, QaConfig::default());

    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("vision")).unwrap();
    std::fs::write(root.path().join("vision/qa.toml"), "min_side = 500\n").unwrap();
    let thresholds = Thresholds::new(Arc::new(Shelf::fixed(Library::load(root.path()).unwrap())));
    assert_eq!(
        thresholds.config().unwrap(),
        QaConfig {
            min_side: 500,
            ..QaConfig::default()
        }
    );
    std::fs::write(root.path().join("vision/qa.toml"), "min_sides = 500\n").unwrap();
    let thresholds = Thresholds::new(Arc::new(Shelf::fixed(Library::load(root.path()).unwrap())));
    let error = thresholds.config().unwrap_err().to_string();
    assert!(
        error.starts_with("QA thresholds `knowledge://vision/qa.toml`: ")
            && error.contains("unknown field `min_sides`"),
        "{error}"
    );
}

mod hostile {
    //! Property tests: PNG, JPEG and WebP bytes replaced, inserted or deleted never panic the
    //! decoder, and what it decodes is within the size limits. Fixed seed, bounded cases.
    use std::sync::LazyLock;

    use image::ImageFormat;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
        let shot = super::product(48, 32);
        [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP]
            .into_iter()
            .map(|format| {
                let mut bytes = Vec::new();
                shot.write_to(&mut std::io::Cursor::new(&mut bytes), format)
                    .unwrap();
                bytes
            })
            .collect()
    });

    proptest! {
        #![proptest_config(Config {
            cases: 20_000,
            rng_seed: RngSeed::Fixed(0x5eed_0016),
            failure_persistence: None,
            ..Config::default()
        })]

        #[test]
        fn corrupted_photos_are_decoded_or_refused_never_panic(
            seed in 0usize..64,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let bytes = baton_test_support::mutate(SEEDS[seed % SEEDS.len()].clone(), &edits);
            if let Ok(image) = baton_vision::decode(&bytes, "fuzzed") {
                let pixels = u64::from(image.width()) * u64::from(image.height());
                prop_assert!(pixels <= baton_vision::MAX_PIXELS);
            }
        }
    }
}

/// JPEGs go through libjpeg-turbo (OpenCV's decoder), except colour spaces it does not turn
/// into RGB (CMYK), which the `image` crate decodes; both upright, both refused cleanly when
/// broken.
#[test]
fn jpegs_of_every_colour_space_decode_and_broken_ones_are_named() {
    let (width, height) = (40usize, 24usize);
    let mut cmyk = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    cmyk.set_size(width, height);
    let mut started = cmyk.start_compress(Vec::new()).unwrap();
    started
        .write_scanlines(&[0u8, 200, 200, 0].repeat(width * height))
        .unwrap();
    let bytes = started.finish().unwrap();
    let image = baton_vision::decode(&bytes, "cmyk.jpg").unwrap();
    assert_eq!(image.dimensions(), (width as u32, height as u32));
    let first = *image.get_pixel(0, 0);
    assert!(
        image
            .pixels()
            .all(|p| p.0.iter().zip(first.0).all(|(a, b)| a.abs_diff(b) <= 2))
    );

    let gray = image::GrayImage::from_fn(32, 16, |x, _| image::Luma([(x * 8) as u8]));
    let mut bytes = Vec::new();
    gray.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Jpeg)
        .unwrap();
    let decoded = baton_vision::decode(&bytes, "gray.jpg").unwrap();
    assert!(decoded.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));

    // Scan data overwritten with a marker libjpeg stops at: decoded (as OpenCV does, grey
    // where data is missing) or refused by name, never a panic or a silent garbage size.
    let mut broken = Vec::new();
    product(64, 48)
        .write_to(&mut std::io::Cursor::new(&mut broken), ImageFormat::Jpeg)
        .unwrap();
    let scan = broken.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    for i in (scan + 20..broken.len() - 2).step_by(7) {
        broken[i] = 0xFF;
        broken[i + 1] = 0xC8;
    }
    match baton_vision::decode(&broken, "broken.jpg") {
        Ok(image) => assert_eq!(image.dimensions(), (64, 48)),
        Err(error) => assert!(error.to_string().contains("broken.jpg"), "{error}"),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Any size down to one pixel, any content: segmentation and QA answer, never panic, and
    /// the mask matches the photo.
    #[test]
    fn photos_of_any_size_and_content_are_segmented(
        width in 1u32..40,
        height in 1u32..40,
        seed in proptest::prelude::any::<u64>(),
        flat in proptest::prelude::any::<bool>(),
    ) {
        let mut state = seed | 1;
        let image = RgbImage::from_fn(width, height, |_, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if flat { Rgb([240, 240, 240]) } else { Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8]) }
        });
        let segmentation = baton_vision::segment(&image);
        proptest::prop_assert_eq!(segmentation.mask.dimensions(), (width, height));
        let report = baton_vision::qa(&image, &segmentation, &baton_vision::QaConfig::default());
        proptest::prop_assert!(report.blur_score_judged.is_finite());
    }
}
