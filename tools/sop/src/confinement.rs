//! Kernel confinement of the commands Baton starts for a tool, and the scrubbed environment
//! every one of them gets.
//!
//! The backend is bubblewrap (`bwrap`), run as the child process: a mount namespace with the
//! whole filesystem bound read-only, each writable root bound read-write over it and the
//! root's `.git` bound read-only again over that (Landlock alone cannot do the last step: its
//! rights are additive down a hierarchy, so a grant on `R` covers `R/.git`); a private `/tmp`
//! and `/dev`; a PID namespace, so killing bwrap kills every process the command started, even
//! ones that called `setsid`; no capabilities (as root bwrap keeps them unless told, and a
//! capable root would simply remount `/` read-write); and, unless a rule grants `network`, a
//! network namespace of its own (only a down loopback: 127.0.0.1 included, nothing answers).
//! Running bwrap as a child needs no `unsafe` in Baton.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use baton_kit::{Sandbox, SandboxMode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Result, SopError};

/// Variables a command keeps from the server's environment (besides those the policy names in
/// [`Sandbox::env`]). Everything else — API keys, bearer tokens, `GIT_DIR`, `LD_PRELOAD` — is
/// dropped, whatever the sandbox mode.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL",
    "TMPDIR",
];

/// `PATH` for a command when the server itself has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What this host can enforce on the commands Baton starts (for `baton_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostConfinement {
    /// The backend that confines commands under `workspace-write` (`bubblewrap`), or `None`
    /// when there is none: such commands are then refused, never run bare.
    pub backend: Option<String>,
    /// The backend's version line, e.g. `bubblewrap 0.8.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the backend's program is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<PathBuf>,
    /// Writes confined to the writable roots (their `.git` read-only) and a private `/tmp`.
    pub files: bool,
    /// The network cut off (a network namespace of the command's own) unless a rule grants it.
    pub network: bool,
    /// Every command's process tree killed with it (a PID namespace).
    pub process_tree: bool,
    /// The environment reduced to an allowlist: always, whatever the backend.
    pub env_scrubbed: bool,
    /// Why there is no backend, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

impl HostConfinement {
    /// A host with no backend, for `reason`.
    pub fn none(reason: impl Into<String>) -> HostConfinement {
        HostConfinement {
            backend: None,
            version: None,
            program: None,
            files: false,
            network: false,
            process_tree: false,
            env_scrubbed: true,
            unavailable: Some(reason.into()),
        }
    }
}

/// What this host can enforce, probed once (by starting `bwrap` with the namespaces Baton
/// uses, on `true`) and then remembered for the life of the process.
pub fn host_confinement() -> &'static HostConfinement {
    static HOST: OnceLock<HostConfinement> = OnceLock::new();
    HOST.get_or_init(probe)
}

fn probe() -> HostConfinement {
    let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
    let Some(program) = find_program("bwrap", &path) else {
        return HostConfinement::none(
            "bubblewrap (`bwrap`) is not installed (Debian/Ubuntu: apt-get install bubblewrap)",
        );
    };
    let version = std::process::Command::new(&program)
        .arg("--version")
        .env_clear()
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|v| !v.is_empty());
    let trial = std::process::Command::new(&program)
        .args(base_args(false))
        .args(["--", "true"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output();
    match trial {
        Ok(out) if out.status.success() => HostConfinement {
            backend: Some("bubblewrap".into()),
            version,
            program: Some(program),
            files: true,
            network: true,
            process_tree: true,
            env_scrubbed: true,
            unavailable: None,
        },
        Ok(out) => HostConfinement::none(format!(
            "`{}` cannot create the namespaces it needs ({}): {}",
            program.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(error) => {
            HostConfinement::none(format!("`{}` does not start: {error}", program.display()))
        }
    }
}

/// An executable file named `name` in the folders of `path` (a `PATH` value).
pub(crate) fn find_program(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// bwrap's options that do not depend on the call: the namespaces, no capabilities, the
/// filesystem read-only with private `/dev`, `/proc` (its `sys` read-only: bwrap leaves
/// `/proc/sys` writable when it unshares the network, and uid 0 may write most sysctls by file
/// mode alone) and `/tmp`.
fn base_args(network: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-ipc",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--ro-bind",
        "/proc/sys",
        "/proc/sys",
        "--tmpfs",
        "/tmp",
    ]
    .map(OsString::from)
    .into();
    if !network {
        args.push("--unshare-net".into());
        // Local services' sockets (D-Bus, Docker) live under /run; without the network a
        // command has no business with them either.
        if Path::new("/run").is_dir() {
            args.extend(["--tmpfs", "/run"].map(OsString::from));
        }
    }
    args
}

/// How to start one command: the program to spawn, its arguments and environment, and a
/// sentence for the audit record saying how it is confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// What to spawn (bwrap, or the command itself).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its whole environment.
    pub env: Vec<(String, OsString)>,
    /// How the command is confined, in words.
    pub confinement: String,
}

/// The allowlisted part of the server's environment, plus the variables `extra` names.
pub(crate) fn scrubbed_env(extra: &[String]) -> Vec<(String, OsString)> {
    let names: BTreeSet<&str> = ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .collect();
    let mut env: Vec<(String, OsString)> = names
        .into_iter()
        .filter_map(|name| std::env::var_os(name).map(|value| (name.to_owned(), value)))
        .collect();
    if !env.iter().any(|(name, _)| name == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

/// How to start `argv` in `cwd` under `sandbox` (`None`: a tool run as a library, outside
/// the gate) on a host that can enforce `host`.
pub(crate) fn launch(
    argv: &[String],
    cwd: &Path,
    sandbox: Option<&Sandbox>,
    host: &HostConfinement,
) -> Result<Launch> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| SopError::invalid("argv", "is empty; give the program and its arguments"))?;
    let extra = sandbox.map(|s| s.env.as_slice()).unwrap_or_default();
    let mut env = scrubbed_env(extra);
    let names = env_names(&env);
    match sandbox.map(|s| s.mode) {
        None | Some(SandboxMode::DangerFullAccess) => {
            let why = match sandbox {
                None => "no sandbox on the call",
                Some(_) => "danger-full-access",
            };
            Ok(Launch {
                program: program.into(),
                args: args.iter().map(OsString::from).collect(),
                env,
                confinement: format!("unconfined ({why}); env scrubbed to {names}"),
            })
        }
        Some(SandboxMode::ReadOnly) => Err(SopError::Sandbox(
            "commands never run under read-only (the gate lets no exec tool through); refused"
                .into(),
        )),
        Some(SandboxMode::WorkspaceWrite) => {
            let sandbox = sandbox.ok_or_else(|| SopError::Sandbox("no sandbox".into()))?;
            let bwrap = host.program.as_ref().ok_or_else(|| {
                SopError::Sandbox(format!(
                    "commands under workspace-write need kernel confinement (bubblewrap) and \
                     this host has none: {}; install bubblewrap (apt-get install bubblewrap), \
                     or run the call under danger-full-access",
                    host.unavailable.as_deref().unwrap_or("no backend")
                ))
            })?;
            env.retain(|(name, _)| name != "TMPDIR");
            env.push(("TMPDIR".into(), "/tmp".into()));
            let (mut bwrap_args, confinement) = workspace_args(sandbox, cwd, &env_names(&env));
            for (name, value) in &env {
                bwrap_args.extend(["--setenv".into(), name.into(), value.clone()]);
            }
            bwrap_args.extend(["--chdir".into(), cwd.into(), "--".into()]);
            bwrap_args.extend(argv.iter().map(OsString::from));
            Ok(Launch {
                program: bwrap.into(),
                args: bwrap_args,
                env: scrubbed_env(&[]),
                confinement,
            })
        }
    }
}

fn env_names(env: &[(String, OsString)]) -> String {
    let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
    format!("[{}]", names.join(", "))
}

/// bwrap's options for `workspace-write` (up to `--clearenv`), and their description.
fn workspace_args(sandbox: &Sandbox, cwd: &Path, env: &str) -> (Vec<OsString>, String) {
    let mut args = base_args(sandbox.network);
    let mut roots = Vec::new();
    let mut skipped = Vec::new();
    for root in &sandbox.writable_roots {
        match root.canonicalize() {
            // A root inside a `.git` would make git's own files writable: never.
            Ok(root)
                if root
                    .components()
                    .any(|c| c == Component::Normal(".git".as_ref())) =>
            {
                skipped.push(root);
            }
            Ok(root) => roots.push(root),
            // A root that does not exist cannot be written under anyway.
            Err(_) => skipped.push(root.clone()),
        }
    }
    // Every root first, then every `.git` over them, so no later root re-exposes one.
    let mut protected = Vec::new();
    for root in &roots {
        args.extend(["--bind".into(), root.into(), root.into()]);
        if let Ok(git) = root.join(".git").canonicalize() {
            protected.push(git);
        }
    }
    for git in &protected {
        args.extend(["--ro-bind".into(), git.into(), git.into()]);
    }
    // Baton's own config, policy and data (its store socket among them) are hidden: a command
    // that could reach the store or rewrite the policy could grant itself anything.
    for hidden in sandbox
        .protected
        .iter()
        .filter_map(|p| p.canonicalize().ok())
    {
        if hidden.is_dir() {
            args.extend(["--tmpfs".into(), hidden.into()]);
        } else {
            args.extend(["--ro-bind".into(), "/dev/null".into(), hidden.into()]);
        }
    }
    args.push("--clearenv".into());
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut confinement = format!(
        "bubblewrap: filesystem read-only except [{}] ({} .git read-only) and a private /tmp; \
         {}; own PID namespace, no capabilities; env scrubbed to {env}; cwd {}",
        list(&roots),
        protected.len(),
        if sandbox.network {
            "network granted by rule"
        } else {
            "no network (own namespace)"
        },
        cwd.display()
    );
    if !skipped.is_empty() {
        confinement.push_str(&format!("; roots not writable: [{}]", list(&skipped)));
    }
    (args, confinement)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn workspace(root: &Path) -> Sandbox {
        Sandbox {
            mode: SandboxMode::WorkspaceWrite,
            writable_roots: vec![root.to_path_buf()],
            network: false,
            env: Vec::new(),
            protected: Vec::new(),
        }
    }

    #[test]
    fn workspace_write_without_a_backend_is_refused_not_run_bare() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostConfinement::none("bubblewrap (`bwrap`) is not installed");
        let error = launch(
            &["true".into()],
            dir.path(),
            Some(&workspace(dir.path())),
            &host,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("need kernel confinement (bubblewrap) and this host has none: bubblewrap (`bwrap`) is not installed"),
            "{error}"
        );
    }

    #[test]
    fn read_only_never_runs_a_command() {
        let dir = tempfile::tempdir().unwrap();
        let mut sandbox = workspace(dir.path());
        sandbox.mode = SandboxMode::ReadOnly;
        let host = HostConfinement::none("test");
        assert!(launch(&["true".into()], dir.path(), Some(&sandbox), &host).is_err());
    }

    #[test]
    fn git_is_read_only_over_its_root_and_roots_inside_git_are_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        let mut sandbox = workspace(&root);
        sandbox.writable_roots.push(root.join(".git/hooks"));
        let host = HostConfinement {
            program: Some("/usr/bin/bwrap".into()),
            ..HostConfinement::none("")
        };
        let plan = launch(&["true".into()], &root, Some(&sandbox), &host).unwrap();
        let args: Vec<String> = plan
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let git = root.join(".git").display().to_string();
        let at = |needle: &[&str]| args.windows(needle.len()).position(|w| w == needle);
        assert!(at(&["--ro-bind", &git, &git]).is_some(), "{args:?}");
        let hooks = root.join(".git/hooks").display().to_string();
        assert!(at(&["--bind", &hooks, &hooks]).is_none(), "{args:?}");
        assert!(
            plan.confinement.contains("roots not writable"),
            "{}",
            plan.confinement
        );
        assert!(at(&["--unshare-net"]).is_some());
        assert!(at(&["--cap-drop", "ALL"]).is_some());
    }
}
