//! Running a command for `repo_exec`: argv without a shell unless asked, confined by the
//! kernel under `workspace-write` (see [`crate::confinement`]), a scrubbed environment always,
//! a time limit that kills everything it started, output captured up to a bound.

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use baton_kit::Sandbox;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

use crate::{Result, SopError};

/// Most output kept per stream; the rest is counted and dropped (the tail is kept).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecOutcome {
    /// The exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Whether it exited with code 0.
    pub success: bool,
    /// Standard output (its last 64 KiB when longer).
    pub stdout: String,
    /// Standard error (its last 64 KiB when longer).
    pub stderr: String,
    /// Bytes of output dropped from the front of stdout and stderr.
    pub truncated_bytes: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// How the command was confined (backend, writable roots, network, environment).
    pub confinement: String,
}

/// The host as seen by calls that need no backend (never probed for them).
static UNPROBED: crate::confinement::HostConfinement = crate::confinement::HostConfinement {
    backend: None,
    version: None,
    program: None,
    files: false,
    network: false,
    process_tree: false,
    env_scrubbed: true,
    unavailable: None,
};

async fn drain(mut from: impl tokio::io::AsyncRead + Unpin) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut dropped = 0u64;
    let mut buffer = [0u8; 8192];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > OUTPUT_LIMIT {
            let cut = kept.len() - OUTPUT_LIMIT;
            dropped += cut as u64;
            kept.drain(..cut);
        }
    }
    (kept, dropped)
}

/// The exit code the in-process backend's init reports on `status`, once nothing the command
/// started runs; `None` without one (no such pipe, or the init died before it answered).
async fn reported(status: Option<tokio::net::unix::pipe::Receiver>) -> Option<i32> {
    let mut code = [0u8; 4];
    status?.read_exact(&mut code).await.ok()?;
    Some(i32::from_ne_bytes(code)).filter(|code| (0..=255).contains(code))
}

/// Run `argv` in `cwd` under `sandbox` (`None`: a tool run as a library, outside the gate),
/// killing it and everything it started after `timeout`.
///
/// Under `workspace-write` the command runs confined (see
/// [`crate::confinement::host_confinement`]); where this host has no backend it is refused
/// with [`SopError::Sandbox`], never run bare. Under `read-only` it is refused. Under
/// `danger-full-access`, or with no sandbox, it runs unconfined. The environment is scrubbed
/// to an allowlist in every case.
pub async fn run(
    argv: &[String],
    cwd: &Path,
    timeout: Duration,
    sandbox: Option<&Sandbox>,
) -> Result<ExecOutcome> {
    let host = match sandbox.map(|s| s.mode) {
        Some(baton_kit::SandboxMode::WorkspaceWrite) => {
            tokio::task::spawn_blocking(crate::confinement::host_confinement)
                .await
                .map_err(|e| SopError::invalid("call", format!("the worker stopped: {e}")))?
        }
        _ => &UNPROBED,
    };
    run_on(host, argv, cwd, timeout, sandbox).await
}

/// The process ID of bwrap's init, from what bwrap writes on its `--info-fd` (`None` when it
/// wrote none: it failed before it made the namespaces).
async fn bwrap_init(info: tokio::net::unix::pipe::Receiver) -> Option<rustix::process::Pid> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "child-pid")]
        child_pid: i32,
    }
    let mut text = Vec::new();
    // Bounded: only bwrap holds the other end, and it writes a few lines.
    info.take(64 * 1024).read_to_end(&mut text).await.ok()?;
    let info: Info = serde_json::from_slice(&text).ok()?;
    rustix::process::Pid::from_raw(info.child_pid)
}

/// Wait until `init` (bwrap's init, watched by a pidfd) has exited: the kernel ends every
/// other process of its PID namespace before it reports its init's exit.
async fn gone(init: Option<std::os::fd::OwnedFd>) {
    let Some(init) = init else { return };
    match crate::kernel::watch(init) {
        Ok(init) => {
            let _ = init.readable().await;
        }
        Err(error) => tracing::warn!(%error, "cannot watch bwrap's init; answering without"),
    }
}

/// The process to start for `launch` of `program` in `cwd`, its output piped, in a process
/// group of its own; `info`, for bwrap, the pipe it reports its init's process ID on.
fn command(
    launch: &crate::confinement::Launch,
    program: &str,
    cwd: &Path,
    info: Option<&std::io::PipeWriter>,
) -> Result<std::process::Command> {
    use std::os::unix::process::CommandExt as _;
    // Found here, not by the spawn (bwrap would only exit 1), so a missing program reads the
    // same confined or not.
    let mut found = None;
    if !program.contains('/') {
        let path = launch
            .env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        found = Some(
            crate::confinement::find_program(program, &path)
                .ok_or_else(|| SopError::NotFound(format!("program `{program}`")))?,
        );
    }
    // An unconfined command is started by its path: by name, with a PATH other than the
    // server's, the standard library forks the whole server instead of using posix_spawn.
    let mut command = match found.filter(|_| launch.program == *program) {
        Some(path) => {
            let mut command = std::process::Command::new(path);
            command.arg0(program);
            command
        }
        None => std::process::Command::new(&launch.program),
    };
    if let Some(info) = info {
        use std::os::fd::AsRawFd as _;
        command.arg("--info-fd").arg(info.as_raw_fd().to_string());
        crate::kernel::keep_open(&mut command, info.as_raw_fd());
    }
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(name, value)| (name, value)))
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    Ok(command)
}

/// [`run`] on a host that can enforce `host` (a benchmark compares backends with it).
pub async fn run_on(
    host: &crate::confinement::HostConfinement,
    argv: &[String],
    cwd: &Path,
    timeout: Duration,
    sandbox: Option<&Sandbox>,
) -> Result<ExecOutcome> {
    let mut launch = crate::confinement::launch(argv, cwd, sandbox, host)?;
    let program = argv.first().map(String::as_str).unwrap_or_default();
    // The command line itself is a tool argument: it never reaches a log (it may hold a secret).
    tracing::debug!(confinement = %launch.confinement, "starting a command");
    let started = Instant::now();
    // bwrap's monitor exits as soon as the command does, before its init has ended what the
    // command left running (the init closes our pipes before the kernel kills the rest): the
    // answer also waits for that init, by its process ID from `--info-fd`.
    let unwatched =
        |e: std::io::Error| SopError::Sandbox(format!("cannot watch the confined command: {e}"));
    let info = launch
        .bwrap
        .then(std::io::pipe)
        .transpose()
        .map_err(unwatched)?;
    let mut command = command(&launch, program, cwd, info.as_ref().map(|(_, w)| w))?;
    let status = launch.kernel.take().map(|plan| {
        crate::kernel::install(&mut command, plan.child);
        plan.status
    });
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => SopError::NotFound(format!("program `{program}`")),
            _ => SopError::invalid("argv", format!("cannot start `{program}`: {error}")),
        })?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let status = status
        .map(tokio::net::unix::pipe::Receiver::from_owned_fd)
        .transpose()
        .map_err(unwatched)?;
    // Our copy of the writer goes now: bwrap's is then the only one, and its close ends the read.
    let init = info
        .map(|(reader, _writer)| tokio::net::unix::pipe::Receiver::from_owned_fd(reader.into()))
        .transpose()
        .map_err(unwatched)?;
    let init = async move {
        let pid = bwrap_init(init?).await?;
        // Open while the init lives: it exits only after the command does.
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK).ok()
    };
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let collect = async move {
        // Both at once: a child blocked on a full stderr pipe never closes stdout.
        let (init, out, err) = tokio::join!(
            init,
            async {
                match stdout {
                    Some(f) => f.await,
                    None => Default::default(),
                }
            },
            async {
                match stderr {
                    Some(f) => f.await,
                    None => Default::default(),
                }
            }
        );
        let status = match reported(status).await {
            // Everything the command started is gone: answer now, reap the rest (the
            // namespaces' teardown) in the background.
            Some(code) => {
                tokio::spawn(async move { child.wait().await });
                Ok(std::process::ExitStatus::from_raw(code << 8))
            }
            // bwrap's init first: its monitor, unreaped until then, keeps the process
            // group a timeout kills from being another's.
            None => {
                gone(init).await;
                child.wait().await
            }
        };
        (out, err, status)
    };
    match tokio::time::timeout(timeout, collect).await {
        Ok(((out, out_dropped), (err, err_dropped), status)) => {
            let status = status.map_err(SopError::io(cwd))?;
            Ok(ExecOutcome {
                exit_code: status.code(),
                success: status.success(),
                stdout: String::from_utf8_lossy(&out).into_owned(),
                stderr: String::from_utf8_lossy(&err).into_owned(),
                truncated_bytes: out_dropped + err_dropped,
                duration_ms: started.elapsed().as_millis() as u64,
                confinement: launch.confinement,
            })
        }
        Err(_) => {
            // The group holds bwrap, or the first child of the in-process backend and the
            // command (its PID namespace's init, whose death ends every process in it), or an
            // unconfined command and what it started.
            if let Some(group) = group {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            Err(SopError::Timeout(timeout))
        }
    }
}
