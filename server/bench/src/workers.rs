//! `baton-bench workers`: one `vision_batch` of many photos run by 1, 2, 3… `baton worker`
//! processes sharing a PostgreSQL store, against the same batch run in the calling process
//! (every core, no queue), in the same run. Each worker's CPU time is read from `/proc`, so
//! the figure per worker-core holds on machines with more cores than this one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// `baton-bench workers`
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// The PostgreSQL database the workers share.
    #[arg(long, value_name = "URL")]
    pub store_url: String,
    /// Photos in the batch (copies of the vision fixtures' shots).
    #[arg(long, default_value_t = 2_000)]
    pub images: usize,
    /// Numbers of worker processes to measure, one batch each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub workers: Vec<usize>,
    /// Items each worker runs at once.
    #[arg(long, default_value_t = 1)]
    pub capacity: u32,
    /// The `baton` binary [default: the one beside this binary].
    #[arg(long)]
    pub baton: Option<PathBuf>,
    /// Write the results into this Markdown file's `workers` section.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
}

/// One batch's figures.
#[derive(Debug)]
struct Batch {
    workers: usize,
    images_per_second: f64,
    wall: Duration,
    /// CPU seconds the workers used (user + system), all of them.
    worker_cpu: f64,
}

/// `n` photos in `dir`, copied round-robin from the vision fixtures under unique names; how
/// many distinct shots they are copies of.
fn photos(dir: &Path, n: usize) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/vision/shots");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&shots)
        .with_context(|| shots.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.ends_with(".png") && !name.ends_with(".mask.png")
        })
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("no shots in {}", shots.display());
    }
    for i in 0..n {
        std::fs::copy(
            &sources[i % sources.len()],
            dir.join(format!("photo-{i:05}.png")),
        )?;
    }
    Ok(sources.len().min(n))
}

/// The home of the run: configs (with and without workers), a policy, the photos; and how
/// many distinct shots the photos are.
fn home(args: &WorkersArgs) -> anyhow::Result<(tempfile::TempDir, usize)> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let knowledge = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let common = format!(
        "[knowledge]\nroot = \"{}\"\n[store]\nurl = \"{}\"\n",
        knowledge.display(),
        args.store_url
    );
    std::fs::write(root.join("local.toml"), &common)?;
    std::fs::write(
        root.join("workers.toml"),
        format!("{common}[workers]\nbatches = true\n"),
    )?;
    std::fs::write(
        root.join("policy.toml"),
        format!(
            "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"{}\"]\n",
            root.display()
        ),
    )?;
    let shots = photos(&root.join("photos"), args.images)?;
    Ok((dir, shots))
}

fn baton(args: &WorkersArgs, root: &Path, config: &str, data: &str) -> anyhow::Result<Command> {
    let exe = match &args.baton {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .join("baton"),
    };
    let mut command = Command::new(exe);
    command
        .env("BATON_CONFIG", root.join(config))
        .env("BATON_HOME", root.join(data))
        .env("BATON_LOG", "warn")
        .current_dir(root)
        .kill_on_drop(true);
    Ok(command)
}

/// `vision_batch` of the photos with `config`; its answer.
async fn batch(args: &WorkersArgs, root: &Path, config: &str, out: &str) -> anyhow::Result<Value> {
    let call = json!({"dir": root.join("photos"), "out_dir": root.join(out)}).to_string();
    let output = baton(args, root, config, "data-caller")?
        .args(["tools", "call", "vision_batch", "--args", &call])
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !output.status.success() {
        bail!("vision_batch failed");
    }
    let answer: Value = serde_json::from_slice(&output.stdout)?;
    if answer["processed"] != json!(args.images) {
        bail!(
            "vision_batch processed {} of {}",
            answer["processed"],
            args.images
        );
    }
    Ok(answer)
}

/// Start `n` workers and wait until each has reported.
async fn start_workers(args: &WorkersArgs, root: &Path, n: usize) -> anyhow::Result<Vec<Child>> {
    let stamp = baton_runs::new_id();
    let mut children = Vec::new();
    for i in 0..n {
        let name = format!("bench-{stamp}-{i}");
        children.push(
            baton(args, root, "workers.toml", &format!("data-{name}"))?
                .args(["worker", "--name", &name, "--kinds", "call"])
                .args([
                    "--capacity",
                    &args.capacity.to_string(),
                    "--lease-secs",
                    "30",
                ])
                .stderr(Stdio::null())
                .spawn()?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = baton(args, root, "workers.toml", "data-caller")?
            .args(["workers", "--json"])
            .output()
            .await?;
        let workers: Value = serde_json::from_slice(&listed.stdout).unwrap_or(json!([]));
        let up = workers.as_array().map_or(0, |all| {
            all.iter()
                .filter(|w| w["name"].as_str().is_some_and(|n| n.contains(&stamp)))
                .count()
        });
        if up == n {
            return Ok(children);
        }
        if Instant::now() > deadline {
            bail!("{up} of {n} workers reported");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Run the benchmark.
pub async fn run(args: WorkersArgs) -> anyhow::Result<()> {
    let (dir, shots) = home(&args)?;
    let root = dir.path();
    let started = Instant::now();
    let local = batch(&args, root, "local.toml", "out-local").await?;
    let local_wall = started.elapsed();
    let mut batches = Vec::new();
    for &n in &args.workers {
        let mut children = start_workers(&args, root, n).await?;
        let pids: Vec<u32> = children.iter().filter_map(Child::id).collect();
        let before: f64 = pids
            .iter()
            .map(|p| crate::stats::cpu_seconds(*p).unwrap_or(0.0))
            .sum();
        let started = Instant::now();
        let answer = batch(&args, root, "workers.toml", &format!("out-{n}")).await?;
        let wall = started.elapsed();
        let after: f64 = pids
            .iter()
            .map(|p| crate::stats::cpu_seconds(*p).unwrap_or(0.0))
            .sum();
        for child in &mut children {
            child.start_kill()?;
        }
        batches.push(Batch {
            workers: n,
            images_per_second: answer["images_per_second"].as_f64().unwrap_or(0.0),
            wall,
            worker_cpu: after - before,
        });
    }
    let table = render(&args, shots, &local, local_wall, &batches);
    {
        use std::io::Write as _;
        std::io::stdout().lock().write_all(table.as_bytes())?;
    }
    if let Some(path) = &args.write {
        super::write_section(path, "workers", &table)?;
    }
    Ok(())
}

fn render(
    args: &WorkersArgs,
    shots: usize,
    local: &Value,
    local_wall: Duration,
    batches: &[Batch],
) -> String {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let one = batches
        .iter()
        .find(|b| b.workers == 1)
        .map_or(0.0, |b| b.images_per_second);
    let mut out = format!(
        "`vision_batch` of {} photos ({} shots of the vision fixtures, copied), worker \
         capacity {}, on {cores} cores; the batch run in the calling process (every core, no \
         queue) is the same run's reference.\n\n\
         | run | images/s | vs 1 worker | vs in-process | wall | images per worker CPU-second |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
        args.images, shots, args.capacity
    );
    let local_rate = local["images_per_second"].as_f64().unwrap_or(0.0);
    out.push_str(&format!(
        "| in-process ({} threads) | {local_rate:.1} | | 1.00 | {:.1} s | |\n",
        local["workers"],
        local_wall.as_secs_f64()
    ));
    for b in batches {
        out.push_str(&format!(
            "| {} worker{} | {:.1} | {:.2} | {:.2} | {:.1} s | {:.1} |\n",
            b.workers,
            if b.workers == 1 { "" } else { "s" },
            b.images_per_second,
            b.images_per_second / one.max(1e-9),
            b.images_per_second / local_rate.max(1e-9),
            b.wall.as_secs_f64(),
            args.images as f64 / b.worker_cpu.max(1e-9),
        ));
    }
    out
}
