//! Kernel confinement of the commands Baton starts for a tool, and the scrubbed environment
//! every one of them gets.
//!
//! Two backends give the same guarantees under `workspace-write`; the first this host can run
//! is used (`BATON_CONFINE_BACKEND=landlock|bubblewrap` picks one):
//!
//! - `landlock` ([`crate::kernel`]): entered in-process between `fork` and `exec` — user, mount,
//!   PID and IPC namespaces with the filesystem read-only but the roots, a private `/tmp`,
//!   `/dev` and `/run`, no capabilities, Landlock for writes, signals and abstract sockets,
//!   seccomp for the network. Needs Landlock ABI 6 (Linux 6.12).
//! - `bubblewrap` (`bwrap`), run as the child process: a mount namespace with the whole
//!   filesystem bound read-only, each writable root bound read-write over it and the root's
//!   `.git` bound read-only again over that; a private `/tmp` and `/dev`; a PID namespace; no
//!   capabilities; and, unless a rule grants `network`, a network namespace of its own.
//!
//! Either way: writes only under the roots (never their `.git`) and a private temp folder, no
//! network unless a rule grants it, and everything the command started dies with it (its PID
//! namespace), even after `setsid`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use baton_kit::{Exposure, Sandbox, SandboxMode};
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

/// A way of confining commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In-process: namespaces, Landlock and seccomp entered between fork and exec.
    Landlock,
    /// The `bwrap` program, run as the command's parent.
    Bubblewrap,
}

impl Backend {
    /// Its name, as `BATON_CONFINE_BACKEND` and `baton_info` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Landlock => "landlock",
            Backend::Bubblewrap => "bubblewrap",
        }
    }
}

/// What this host can enforce on the commands Baton starts (for `baton_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostConfinement {
    /// The backend that confines commands under `workspace-write`, or `None` when there is
    /// none: such commands are then refused, never run bare.
    pub backend: Option<Backend>,
    /// The backend's version, e.g. `Landlock ABI 7 + seccomp` or `bubblewrap 0.8.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where the backend's program is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<PathBuf>,
    /// Writes confined to the writable roots (their `.git` read-only) and a private temp
    /// folder.
    pub files: bool,
    /// The network cut off unless a rule grants it.
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

/// What this host can enforce, probed once (by starting `true` confined, as a command would
/// be) and then remembered for the life of the process. `BATON_CONFINE_BACKEND` picks a
/// backend; otherwise the in-process one when the kernel has it, else bubblewrap.
pub fn host_confinement() -> &'static HostConfinement {
    static HOST: OnceLock<HostConfinement> = OnceLock::new();
    HOST.get_or_init(|| match std::env::var("BATON_CONFINE_BACKEND").as_deref() {
        Ok("landlock") => probe(Backend::Landlock),
        Ok("bubblewrap") => probe(Backend::Bubblewrap),
        Ok(other) => HostConfinement::none(format!(
            "BATON_CONFINE_BACKEND is `{other}`; it takes `landlock` or `bubblewrap`"
        )),
        Err(_) => probe_landlock().unwrap_or_else(|why| {
            let mut host = probe_bubblewrap();
            if let Some(also) = &mut host.unavailable {
                *also = format!("{why}; and {also}");
            }
            host
        }),
    })
}

/// What `backend` can enforce on this host (for a benchmark comparing them; calls use
/// [`host_confinement`]).
pub fn probe(backend: Backend) -> HostConfinement {
    match backend {
        Backend::Landlock => probe_landlock().unwrap_or_else(HostConfinement::none),
        Backend::Bubblewrap => probe_bubblewrap(),
    }
}

/// A host whose commands `backend` confines completely.
fn confined(backend: Backend, version: String, program: Option<PathBuf>) -> HostConfinement {
    HostConfinement {
        backend: Some(backend),
        version: Some(version),
        program,
        files: true,
        network: true,
        process_tree: true,
        env_scrubbed: true,
        unavailable: None,
    }
}

fn probe_landlock() -> std::result::Result<HostConfinement, String> {
    let abi = crate::kernel::landlock_abi()?;
    let root = tempfile::tempdir().map_err(|e| format!("no temp folder for the trial: {e}"))?;
    let trial = (|| -> Result<std::process::ExitStatus> {
        let layout = Layout::of(&[root.path().to_path_buf()], &[]);
        let mut env = scrubbed_env(&[]);
        let plan = crate::kernel::plan(&layout, root.path(), false, &["true".into()], &mut env)?;
        let mut command = std::process::Command::new("true");
        command
            .env_clear()
            .current_dir(root.path())
            .stdin(std::process::Stdio::null());
        crate::kernel::install(&mut command, plan.child);
        command
            .status()
            .map_err(|e| SopError::Sandbox(e.to_string()))
    })();
    match trial {
        Ok(status) if status.success() => Ok(confined(
            Backend::Landlock,
            format!("Landlock ABI {abi} + seccomp, in-process namespaces"),
            None,
        )),
        Ok(status) => Err(format!("a confined `true` failed ({status})")),
        Err(e) => Err(format!(
            "the in-process backend cannot start a command here ({e}); are unprivileged user \
             namespaces allowed?"
        )),
    }
}

fn probe_bubblewrap() -> HostConfinement {
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
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "bubblewrap".into());
    let trial = std::process::Command::new(&program)
        .args(base_args(false))
        .args(["--", "true"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output();
    match trial {
        Ok(out) if out.status.success() => confined(Backend::Bubblewrap, version, Some(program)),
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
        // In memory, so bounded as the in-process backend bounds it.
        "--size",
        "2147483648",
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

/// How to start one command: the program to spawn, its arguments and environment, what its
/// child enters before it runs, and a sentence for the audit record saying how it is confined.
#[derive(Debug)]
pub(crate) struct Launch {
    /// What to spawn (bwrap, or the command itself).
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its whole environment.
    pub env: Vec<(String, OsString)>,
    /// The in-process confinement, for the `landlock` backend.
    pub kernel: Option<crate::kernel::Plan>,
    /// Whether `program` is bwrap, whose monitor exits as soon as the command does: its init,
    /// which ends what the command left running, is watched as well (see [`crate::exec`]).
    pub bwrap: bool,
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
    let bare = |env, confinement| Launch {
        program: program.into(),
        args: args.iter().map(OsString::from).collect(),
        env,
        kernel: None,
        bwrap: false,
        confinement,
    };
    let Some(sandbox) = sandbox else {
        return Ok(bare(
            env,
            format!("unconfined (no sandbox on the call); env scrubbed to {names}"),
        ));
    };
    match sandbox.mode {
        SandboxMode::DangerFullAccess => Ok(bare(
            env,
            format!("unconfined (danger-full-access); env scrubbed to {names}"),
        )),
        SandboxMode::ReadOnly => Err(SopError::Sandbox(
            "commands never run under read-only (the gate lets no exec tool through); refused"
                .into(),
        )),
        SandboxMode::WorkspaceWrite => {
            let layout = Layout::of(&sandbox.writable_roots, &sandbox.protected);
            layout.guards(sandbox)?;
            env.retain(|(name, _)| name != "TMPDIR");
            match host.backend {
                Some(Backend::Landlock) => {
                    let plan = crate::kernel::plan(&layout, cwd, sandbox.network, argv, &mut env)?;
                    let confinement = describe(
                        Backend::Landlock,
                        &layout,
                        sandbox.network,
                        &env_names(&env),
                        cwd,
                    );
                    let mut launch = bare(env, confinement);
                    launch.kernel = Some(plan);
                    Ok(launch)
                }
                Some(Backend::Bubblewrap) => {
                    let bwrap = host.program.clone().unwrap_or_else(|| "bwrap".into());
                    env.push(("TMPDIR".into(), "/tmp".into()));
                    let names = env_names(&env);
                    let mut bwrap_args = workspace_args(&layout, sandbox.network);
                    for (name, value) in &env {
                        bwrap_args.extend(["--setenv".into(), name.into(), value.clone()]);
                    }
                    bwrap_args.extend(["--chdir".into(), cwd.into(), "--".into()]);
                    bwrap_args.extend(argv.iter().map(OsString::from));
                    Ok(Launch {
                        program: bwrap.into(),
                        args: bwrap_args,
                        env: scrubbed_env(&[]),
                        kernel: None,
                        bwrap: true,
                        confinement: describe(
                            Backend::Bubblewrap,
                            &layout,
                            sandbox.network,
                            &names,
                            cwd,
                        ),
                    })
                }
                None => Err(SopError::Sandbox(format!(
                    "commands under workspace-write need kernel confinement (Landlock, or \
                     bubblewrap) and this host has none: {}; install bubblewrap (apt-get \
                     install bubblewrap), or run the call under danger-full-access",
                    host.unavailable.as_deref().unwrap_or("no backend")
                ))),
            }
        }
    }
}

fn env_names(env: &[(String, OsString)]) -> String {
    let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
    format!("[{}]", names.join(", "))
}

/// Where a `workspace-write` command may write and what it must not see, resolved once.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// The writable roots that exist, canonical.
    pub roots: Vec<PathBuf>,
    /// Roots not writable (missing, or inside a `.git`).
    pub skipped: Vec<PathBuf>,
    /// Each root's `.git`, kept read-only.
    pub gits: Vec<PathBuf>,
    /// Baton's own files and the host's secrets, hidden (canonical; those that exist).
    pub hidden: Vec<PathBuf>,
}

impl Layout {
    /// The layout for `writable_roots` and `protected` paths.
    pub(crate) fn of(writable_roots: &[PathBuf], protected: &[PathBuf]) -> Layout {
        let mut layout = Layout::default();
        for root in writable_roots {
            match root.canonicalize() {
                // A root inside a `.git` would make git's own files writable: never.
                Ok(root)
                    if root
                        .components()
                        .any(|c| c == Component::Normal(".git".as_ref())) =>
                {
                    layout.skipped.push(root);
                }
                Ok(root) => layout.roots.push(root),
                // A root that does not exist cannot be written under anyway.
                Err(_) => layout.skipped.push(root.clone()),
            }
        }
        // A link on the way to a root, inside another root, may be a command's: followed, it
        // would make its target writable (`/etc`, for a command running as root).
        let linked: BTreeSet<PathBuf> = writable_roots
            .iter()
            .filter_map(|root| {
                let canonical = root.canonicalize().ok()?;
                let inside_another = |dir: &Path| {
                    layout
                        .roots
                        .iter()
                        .any(|other| *other != canonical && dir.starts_with(other))
                };
                root.ancestors()
                    .any(|step| {
                        step.symlink_metadata()
                            .is_ok_and(|meta| meta.file_type().is_symlink())
                            && step
                                .parent()
                                .and_then(|dir| dir.canonicalize().ok())
                                .is_some_and(|dir| inside_another(&dir))
                    })
                    .then_some(canonical)
            })
            .collect();
        layout.roots.retain(|root| !linked.contains(root));
        layout.skipped.extend(linked);
        layout.gits = layout
            .roots
            .iter()
            .filter_map(|root| root.join(".git").canonicalize().ok())
            .collect();
        layout.hidden = protected
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .chain(host_secrets())
            .collect();
        layout
    }
}

/// Host files no command needs and one run as root (their owner) could otherwise read: the
/// password hashes and the SSH host keys. Hidden as Baton's own files are, where they exist.
fn host_secrets() -> Vec<PathBuf> {
    let mut secrets: Vec<PathBuf> = [
        "/etc/shadow",
        "/etc/shadow-",
        "/etc/gshadow",
        "/etc/gshadow-",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    let host_key = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("ssh_host_") && name.ends_with("_key"))
    };
    if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
        secrets.extend(
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|p| host_key(p)),
        );
    }
    secrets
        .into_iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect()
}

impl Layout {
    /// Whether Baton's own files (`sandbox.protected`) are out of a command's reach: a file
    /// can only be hidden where it exists, and a link only by its target. One missing in a
    /// writable root could be created by the command, a link there (the file's or a folder's
    /// on its way, or a folder its path leaves by `..`) replaced by the command's own, and
    /// Baton would load the command's
    /// file: its policy at once, its config or store at the next start. Such a command is
    /// refused, naming the file and how to put it out of reach.
    pub(crate) fn guards(&self, sandbox: &Sandbox) -> Result<()> {
        for (own, root, exposure) in sandbox.own_files_in(&self.roots) {
            let own = own.display();
            let root = root.display();
            match exposure {
                Exposure::Inside => {}
                Exposure::Missing => {
                    return Err(SopError::Sandbox(format!(
                        "Baton's own file {own} does not exist, and it would be in the \
                             writable root {root}: a command could create it, and Baton would \
                             load it; create it (an empty file will do for a config), or keep \
                             it outside the writable roots; refused"
                    )));
                }
                Exposure::Through(at) => {
                    return Err(SopError::Sandbox(format!(
                        "Baton's own file {own} is reached through {} in the writable root \
                             {root} (a link, or a folder its path leaves by `..`): a command \
                             could put a link or a file of its own in its place, and Baton would \
                             load it; name the file by its real path in the config, or keep it \
                             outside the writable roots; refused",
                        at.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every folder between a root and a hidden path inside it, outermost first. Each is made a
    /// mount point, which cannot be renamed: a command could otherwise move Baton's files
    /// aside and put its own in their place.
    pub(crate) fn between_roots_and_hidden(&self) -> Vec<&Path> {
        let mut dirs = Vec::new();
        for hidden in &self.hidden {
            for root in self.roots.iter().filter(|r| hidden.starts_with(r)) {
                let mut between: Vec<&Path> = hidden
                    .ancestors()
                    .skip(1)
                    .take_while(|a| a != root && a.starts_with(root))
                    .collect();
                between.reverse();
                dirs.extend(between);
            }
        }
        dirs
    }
}

/// bwrap's options for `workspace-write` with `layout` (up to `--clearenv`).
fn workspace_args(layout: &Layout, network: bool) -> Vec<OsString> {
    let mut args = base_args(network);
    // Every root first, then every `.git` over them, so no later root re-exposes one.
    for root in &layout.roots {
        args.extend(["--bind".into(), root.into(), root.into()]);
    }
    for dir in layout.between_roots_and_hidden() {
        args.extend(["--bind".into(), dir.into(), dir.into()]);
    }
    for git in &layout.gits {
        args.extend(["--ro-bind".into(), git.into(), git.into()]);
    }
    // Baton's own config, policy and data (its store socket among them) are hidden: a command
    // that could reach the store or rewrite the policy could grant itself anything.
    for hidden in &layout.hidden {
        if hidden.is_dir() {
            args.extend(["--tmpfs".into(), hidden.into()]);
        } else {
            args.extend(["--ro-bind".into(), "/dev/null".into(), hidden.into()]);
        }
    }
    args.push("--clearenv".into());
    args
}

/// How a command is confined, in words, for the audit record.
fn describe(backend: Backend, layout: &Layout, network: bool, env: &str, cwd: &Path) -> String {
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (tmp, net, rest) = match backend {
        Backend::Landlock => (
            "a private /tmp",
            "no network (seccomp: Unix sockets only; Landlock: no TCP)",
            "own user, mount, PID and IPC namespaces, a private /dev and /run, no \
             capabilities, signals and abstract sockets scoped",
        ),
        Backend::Bubblewrap => (
            "a private /tmp",
            "no network (own namespace)",
            "own PID namespace, no capabilities",
        ),
    };
    let mut confinement = format!(
        "{}: filesystem read-only except [{}] ({} .git read-only) and {tmp}; {}; {rest}; env \
         scrubbed to {env}; cwd {}",
        backend.name(),
        list(&layout.roots),
        layout.gits.len(),
        if network {
            "network granted by rule"
        } else {
            net
        },
        cwd.display()
    );
    if !layout.skipped.is_empty() {
        confinement.push_str(&format!(
            "; roots not writable: [{}]",
            list(&layout.skipped)
        ));
    }
    confinement
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
            error.contains("need kernel confinement (Landlock, or bubblewrap) and this host has none: bubblewrap (`bwrap`) is not installed"),
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
            backend: Some(Backend::Bubblewrap),
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
