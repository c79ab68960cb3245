//! `rx_validate` throughput on one core: the committed sample prescriptions, parsed and checked
//! against the committed rule tables (the work one `rx_validate` call does behind the gate).
//! Beside it, the reference: `serde_json` merely reading the same bytes into a `Value`, so the
//! figures can be read as ratios on a machine whose speed moves.

use std::hint::black_box;
use std::path::Path;

use baton_knowledge::Library;
use baton_rx::{Day, RuleBook, parse_bytes, validate, validate_bytes};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The allocator the `baton` binary runs with, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/rx")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let library = Library::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let book = RuleBook::from_library(&library).unwrap_or_else(|e| panic!("{e}"));
    let today = Day::parse("2026-11-22").unwrap_or_else(|| panic!("date"));
    let mut group = c.benchmark_group("rx_validate");
    group.throughput(Throughput::Elements(1));
    let fhir = load("nsw-cat2-sas-b.fhir.json");
    // The same bundle as clients usually send it: without the pretty-printing.
    let compact = serde_json::to_vec(
        &serde_json::from_slice::<serde_json::Value>(&fhir).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let inputs = [
        ("simple_json", load("nsw-cat2-sas-b.json")),
        ("fhir_bundle", fhir),
        ("fhir_bundle_compact", compact),
        ("simple_json_invalid", load("act-no-cho.json")),
    ];
    for (label, bytes) in &inputs {
        group.bench_function(*label, |b| {
            b.iter(|| validate_bytes(black_box(&book), black_box(bytes), today))
        });
    }
    let (parsed, _) = parse_bytes(&inputs[0].1).unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("rules_only", |b| {
        b.iter(|| validate(black_box(&book), black_box(&parsed), today))
    });
    group.finish();

    let mut reference = c.benchmark_group("serde_json_value");
    reference.throughput(Throughput::Elements(1));
    for (label, bytes) in &inputs {
        reference.bench_function(*label, |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(bytes)))
        });
    }
    reference.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
