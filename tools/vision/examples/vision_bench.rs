//! Times the vision pack on the benchmark images `fixtures/vision/bench_images.py` writes and
//! prints JSON for `scripts/bench_vision.py`: `vision_qa` on a 12 MP JPEG (decode included),
//! `vision_process` per 2 MP photo on one thread, and `vision_batch` throughput on every core.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use baton_kit::{Tool, ToolContext};
use baton_vision::{
    Backdrop, BatchArgs, Onnx, QaConfig, Thresholds, VisionBatch, load, process_one, qa, segment,
};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vision/bench");
    let big = bench.join("product-12mp.jpg");
    let config = QaConfig::default();
    let mut qa_times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let image = load(&big).unwrap();
        let report = qa(&image, &segment(&image), &config);
        std::hint::black_box(report);
        qa_times.push(start.elapsed().as_secs_f64());
    }
    let photos: Vec<_> = (0..20)
        .map(|i| bench.join(format!("product-2mp-{i:02}.jpg")))
        .collect();
    let out = tempfile::tempdir().unwrap();
    let mut process_times = Vec::new();
    for _ in 0..3 {
        for photo in &photos {
            let start = Instant::now();
            process_one(
                photo,
                &baton_kit::Confined::open(out.path()).unwrap(),
                out.path(),
                Backdrop::Solid([255, 255, 255]),
                &config,
                &Onnx::default(),
            )
            .unwrap();
            process_times.push(start.elapsed().as_secs_f64());
        }
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let many: Vec<String> = (0..3)
        .flat_map(|_| photos.iter().map(|p| p.display().to_string()))
        .collect();
    let batch = runtime
        .block_on(
            VisionBatch(Thresholds::defaults(), std::sync::Arc::default()).call(
                BatchArgs {
                    paths: many,
                    dir: None,
                    out_dir: out.path().join("batch").display().to_string(),
                    background: "white".into(),
                },
                ToolContext::new(CancellationToken::new()),
            ),
        )
        .unwrap();
    println!(
        "{}",
        serde_json::json!({
            "qa_12mp_s": qa_times,
            "process_2mp_s": process_times,
            "batch_images_per_second": batch.images_per_second,
            "batch_workers": batch.workers,
            "batch_images": batch.processed,
        })
    );
}
