//! What kernel confinement costs one `repo_exec`: `true` spawned unconfined (env scrubbed)
//! against `true` under bubblewrap with and without its own network namespace, in the same
//! run, through the same `exec::run` the tool calls.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use baton_kit::{Sandbox, SandboxMode};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root: PathBuf = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join(".git")).unwrap_or_else(|e| panic!("{e}"));
    if let Some(why) = &baton_sop::host_confinement().unavailable {
        panic!("no confinement on this host: {why}");
    }
    let sandbox = |network| Sandbox {
        mode: SandboxMode::WorkspaceWrite,
        writable_roots: vec![root.clone()],
        network,
        env: Vec::new(),
        protected: Vec::new(),
    };
    let variants = [
        ("unconfined", None),
        ("bwrap_no_network", Some(sandbox(false))),
        ("bwrap_network_granted", Some(sandbox(true))),
    ];
    let argv = vec!["true".to_owned()];
    let mut group = c.benchmark_group("repo_exec_true");
    group.sample_size(60);
    group.measurement_time(Duration::from_secs(6));
    for (name, sandbox) in &variants {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let outcome = runtime
                    .block_on(baton_sop::exec::run(
                        &argv,
                        &root,
                        Duration::from_secs(10),
                        sandbox.as_ref(),
                    ))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(outcome.success, "{outcome:?}");
                black_box(outcome)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
