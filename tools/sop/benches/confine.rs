//! What kernel confinement costs one `repo_exec`: `true` spawned unconfined (env scrubbed)
//! against `true` under each backend (in-process Landlock, bubblewrap), with and without the
//! network, in the same run, through the same `exec::run_on` the tool calls.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use baton_kit::{Sandbox, SandboxMode};
use baton_sop::{Backend, HostConfinement, confinement::probe};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root: PathBuf = dir.path().canonicalize().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join(".git")).unwrap_or_else(|e| panic!("{e}"));
    let hosts: Vec<(Backend, HostConfinement)> = [Backend::Landlock, Backend::Bubblewrap]
        .into_iter()
        .map(|backend| (backend, probe(backend)))
        .collect();
    for (backend, host) in &hosts {
        if let Some(why) = &host.unavailable {
            panic!("no {} confinement on this host: {why}", backend.name());
        }
    }
    let sandbox = |network| Sandbox {
        mode: SandboxMode::WorkspaceWrite,
        writable_roots: vec![root.clone()],
        network,
        env: Vec::new(),
        protected: Vec::new(),
    };
    let unconfined = HostConfinement::none("unconfined");
    // An unconfined command is started with posix_spawn, which copies nothing of the parent.
    let mut variants = vec![("unconfined".to_owned(), &unconfined, None)];
    for (backend, host) in &hosts {
        for (network, name) in [(false, "no_network"), (true, "network_granted")] {
            let label = format!("{}_{name}", backend.name());
            variants.push((label, host, Some(sandbox(network))));
        }
    }
    // A server-sized process (`BATON_BENCH_BALLAST_MB` resident): the in-process backend
    // forks, so it pays for the parent's page tables where a plain spawn does not.
    let ballast_mb: usize = std::env::var("BATON_BENCH_BALLAST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let ballast = vec![1u8; ballast_mb << 20];
    black_box(&ballast);
    let argv = vec!["true".to_owned()];
    let mut group = c.benchmark_group("repo_exec_true");
    group.sample_size(60);
    group.measurement_time(Duration::from_secs(6));
    for (name, host, sandbox) in &variants {
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let outcome = runtime
                    .block_on(baton_sop::exec::run_on(
                        host,
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
