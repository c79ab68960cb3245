//! The in-process backend (`landlock`): the command's own user, mount, PID and IPC namespaces,
//! no capabilities, Landlock for writes, signals and abstract sockets, and seccomp for the
//! network, all entered between `fork` and `exec` — no helper program to start, which is what
//! makes it cheap (bubblewrap's own start-up was most of its cost).
//!
//! Landlock covers what a command may write into, not metadata (`chmod`, `chown`, times,
//! extended attributes), and its rights are additive down a hierarchy, so a grant on a root
//! also covers its `.git`. The mount namespace does the rest, as bubblewrap did: the whole
//! filesystem read-only, each root bound writable again and its `.git` read-only over that,
//! Baton's own files covered, and a private `/tmp`, `/dev` and `/run`. Landlock, enforced after
//! those mounts, keeps the command from undoing them. The parent builds everything (the
//! ruleset with its rules, the seccomp program, the mount list, the C strings); the children
//! only make system calls.

mod child;

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    ABI, Access as _, AccessFs, AccessNet, CompatLevel, Compatible as _, Ruleset, RulesetAttr as _,
    RulesetCreatedAttr as _, Scope, path_beneath_rules,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

pub(crate) use child::install;
use child::{Access, ChildPlan, Mount, Stack, Strings};

use crate::confinement::Layout;
use crate::{Result, SopError};

/// The Landlock ABI this backend needs: 6, the first to scope abstract Unix sockets and
/// signals (Linux 6.12).
pub(crate) const NEEDED_ABI: ABI = ABI::V6;

/// The host's devices a command gets in its own `/dev` (under `/dev`).
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Stack size of the init, and of the command until it executes.
const STACK: usize = 128 * 1024;

/// One command's confinement: what its child enters, and its private temp folder (removed
/// when this is dropped, after the command).
#[derive(Debug)]
pub(crate) struct Plan {
    /// What the child enters.
    pub child: ChildPlan,
    /// The command's own folders (its `/tmp`, its `/dev/shm`), the only writable places
    /// outside its roots.
    pub tmp: tempfile::TempDir,
}

fn sandbox_error(what: &str, error: impl std::fmt::Display) -> SopError {
    SopError::Sandbox(format!(
        "cannot prepare the command's confinement ({what}): {error}"
    ))
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SopError::invalid("path", format!("{} holds a NUL byte", path.display())))
}

fn c_string(what: &'static str, text: &[u8]) -> Result<CString> {
    CString::new(text).map_err(|_| SopError::invalid(what, "holds a NUL byte"))
}

/// The executable `argv` names: PID 2 executes it directly, with no search, so a bare name is
/// found here, in the command's `PATH`.
fn program(argv: &[String], env: &[(String, OsString)]) -> Result<PathBuf> {
    let program = argv
        .first()
        .ok_or_else(|| SopError::invalid("argv", "is empty; give the program and its arguments"))?;
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .find(|(name, _)| name == "PATH")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    crate::confinement::find_program(program, &path)
        .ok_or_else(|| SopError::NotFound(format!("program `{program}`")))
}

/// Folders made once per process: an empty one (to cover what a command must not see), and
/// the skeleton of a command's `/dev` (mount points for the devices, `pts`, `shm`, links).
#[derive(Debug)]
struct Skeleton {
    _dir: tempfile::TempDir,
    empty: PathBuf,
    dev: PathBuf,
}

fn skeleton() -> Result<&'static Skeleton> {
    static SKELETON: OnceLock<std::result::Result<Skeleton, String>> = OnceLock::new();
    let make = || -> std::io::Result<Skeleton> {
        let dir = tempfile::Builder::new()
            .prefix("baton-skeleton-")
            .tempdir()?;
        let empty = dir.path().join("empty");
        let dev = dir.path().join("dev");
        std::fs::create_dir(&empty)?;
        std::fs::create_dir(&dev)?;
        for device in DEVICES {
            std::fs::File::create(dev.join(device))?;
        }
        for sub in ["pts", "shm"] {
            std::fs::create_dir(dev.join(sub))?;
        }
        let links = [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ];
        for (name, target) in links {
            std::os::unix::fs::symlink(target, dev.join(name))?;
        }
        Ok(Skeleton {
            _dir: dir,
            empty,
            dev,
        })
    };
    SKELETON
        .get_or_init(|| make().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| sandbox_error("the skeleton of /dev", e))
}

/// Where the mounts go before `/tmp` and `/run` are covered: a path under one of them is
/// staged inside the folder that will cover it, so it shows through the cover.
struct Stage {
    covers: Vec<(PathBuf, PathBuf)>,
}

impl Stage {
    fn at(&self, path: &Path) -> Result<PathBuf> {
        for (covered, with) in &self.covers {
            if let Ok(rest) = path.strip_prefix(covered) {
                let staged = with.join(rest);
                // The mount point must exist in the cover.
                if path.is_dir() {
                    std::fs::create_dir_all(&staged)
                } else {
                    std::fs::create_dir_all(staged.parent().unwrap_or(with))
                        .and_then(|()| std::fs::File::create(&staged).map(drop))
                }
                .map_err(|e| sandbox_error("a mount point", e))?;
                return Ok(staged);
            }
        }
        Ok(path.to_path_buf())
    }
}

/// The plan for `argv` in `cwd` with `layout`, the network cut off unless `network`, its
/// environment `env` (with `TMPDIR` set to the private `/tmp`).
pub(crate) fn plan(
    layout: &Layout,
    cwd: &Path,
    network: bool,
    argv: &[String],
    env: &mut Vec<(String, OsString)>,
) -> Result<Plan> {
    let program = program(argv, env)?;
    // Baton's private folders for commands (each one's /tmp, the /dev skeleton) live there: a
    // root over them would let one command reach another's, or what every command sees.
    let area = std::env::temp_dir();
    if let Some(root) = layout.roots.iter().find(|root| area.starts_with(root)) {
        return Err(SopError::Sandbox(format!(
            "the writable root {} holds {}, where Baton keeps commands' private folders; give \
             a narrower root (each command has a private /tmp of its own)",
            root.display(),
            area.display()
        )));
    }
    env.retain(|(name, _)| name != "TMPDIR");
    env.push(("TMPDIR".into(), "/tmp".into()));
    let skeleton = skeleton()?;
    let own = tempfile::Builder::new()
        .prefix("baton-exec-")
        .tempdir()
        .map_err(|e| sandbox_error("its private temp folder", e))?;
    let (tmp, shm, run) = (
        own.path().join("tmp"),
        own.path().join("shm"),
        own.path().join("run"),
    );
    for dir in [&tmp, &shm, &run] {
        std::fs::create_dir(dir).map_err(|e| sandbox_error("its private temp folder", e))?;
    }
    let argv = argv
        .iter()
        .map(|arg| c_string("argv", arg.as_bytes()))
        .collect::<Result<Vec<_>>>()?;
    let envp = env
        .iter()
        .map(|(name, value)| {
            let mut entry = format!("{name}=").into_bytes();
            entry.extend_from_slice(value.as_bytes());
            c_string("env", &entry)
        })
        .collect::<Result<Vec<_>>>()?;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let child = ChildPlan {
        program: c_path(&program)?,
        argv: Strings::new(argv),
        envp: Strings::new(envp),
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        mounts: mounts(layout, skeleton, &tmp, &shm, &run)?,
        cwd: c_path(cwd)?,
        ruleset: ruleset(layout, &[&tmp, &shm], network)?,
        pts_access: (AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev).bits(),
        seccomp: if network { None } else { Some(no_network()?) },
        init_stack: Stack::new(STACK),
        command_stack: Stack::new(STACK),
    };
    Ok(Plan { child, tmp: own })
}

/// The mounts, in order: the filesystem read-only; each root writable again, the folders
/// between it and a hidden path, its `.git` read-only, the hidden paths covered (all staged
/// inside the covers when under /tmp or /run); the private /dev; /run; /tmp last.
fn mounts(
    layout: &Layout,
    skeleton: &Skeleton,
    tmp: &Path,
    shm: &Path,
    run: &Path,
) -> Result<Vec<Mount>> {
    let stage = Stage {
        covers: vec![("/tmp".into(), tmp.into()), ("/run".into(), run.into())],
    };
    let bind = |from: &Path, to: &Path, access: Access| -> Result<Mount> {
        Ok(Mount::Bind {
            from: c_path(from)?,
            to: c_path(&stage.at(to)?)?,
            access,
        })
    };
    let mut mounts = vec![Mount::ReadOnlyTree(c"/".into())];
    for root in &layout.roots {
        mounts.push(bind(root, root, Access::Writable)?);
    }
    for dir in layout.between_roots_and_hidden() {
        mounts.push(bind(dir, dir, Access::Keep)?);
    }
    for git in &layout.gits {
        mounts.push(bind(git, git, Access::ReadOnly)?);
    }
    for hidden in &layout.hidden {
        let cover = if hidden.is_dir() {
            skeleton.empty.as_path()
        } else {
            Path::new("/dev/null")
        };
        mounts.push(bind(cover, hidden, Access::Keep)?);
    }
    // The covers are not staged: they are what the staging is for. A device is written
    // through its own bind mount (Landlock decides which).
    let cover = |from: &Path, to: &Path, access: Access| -> Result<Mount> {
        Ok(Mount::Bind {
            from: c_path(from)?,
            to: c_path(to)?,
            access,
        })
    };
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        mounts.push(cover(&host, &skeleton.dev.join(device), Access::Keep)?);
    }
    mounts.push(cover(&skeleton.dev, Path::new("/dev"), Access::Keep)?);
    mounts.push(cover(shm, Path::new("/dev/shm"), Access::Writable)?);
    mounts.push(Mount::Devpts(c"/dev/pts".into()));
    if Path::new("/run").is_dir() {
        // Local services' sockets (Docker's, D-Bus's, the user's agents) live under /run.
        let run_cover = if layout.roots.iter().any(|r| r.starts_with("/run")) {
            run
        } else {
            skeleton.empty.as_path()
        };
        mounts.push(cover(run_cover, Path::new("/run"), Access::Keep)?);
    }
    // Last: the folders bound above live under the host's /tmp.
    mounts.push(cover(tmp, Path::new("/tmp"), Access::Writable)?);
    Ok(mounts)
}

/// Writes only under the roots, the private temp folder and the harmless devices; without the
/// network no TCP bind or connect and no abstract Unix socket outside; never a signal to a
/// process outside. Every right must be enforced, or the plan fails (never a partial sandbox).
fn ruleset(layout: &Layout, own: &[&Path], network: bool) -> Result<OwnedFd> {
    let write = AccessFs::from_write(NEEDED_ABI);
    let error = |e| sandbox_error("Landlock", e);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(write)
        .map_err(error)?
        .scope(Scope::Signal)
        .map_err(error)?
        // Abstract sockets are local services (D-Bus, container shims), not the network: a
        // network rule does not open them.
        .scope(Scope::AbstractUnixSocket)
        .map_err(error)?;
    if !network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(NEEDED_ABI))
            .map_err(error)?;
    }
    let writable = layout
        .roots
        .iter()
        .map(|r| r.as_path())
        .chain(own.iter().copied());
    let created = ruleset
        .create()
        .map_err(error)?
        .add_rules(path_beneath_rules(writable, write))
        .map_err(error)?
        .add_rules(path_beneath_rules(
            DEVICES.map(|device| Path::new("/dev").join(device)),
            write,
        ))
        .map_err(error)?;
    Option::<OwnedFd>::from(created)
        .ok_or_else(|| sandbox_error("Landlock", "this kernel does not enforce it"))
}

/// The seccomp program for a command without the network: no socket but a Unix one, and no
/// io_uring (whose requests would go around the `socket` filter).
fn no_network() -> Result<&'static BpfProgram> {
    static FILTER: OnceLock<std::result::Result<BpfProgram, String>> = OnceLock::new();
    FILTER
        .get_or_init(|| build_filter().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| sandbox_error("seccomp", e))
}

fn build_filter() -> std::result::Result<BpfProgram, seccompiler::Error> {
    let not_unix = SeccompRule::new(vec![SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Ne,
        libc::AF_UNIX as u64,
    )?])?;
    let mut rules = BTreeMap::new();
    // x32 system calls reach the same kernel code under other numbers on x86_64.
    let numbers = |nr: i64| {
        if cfg!(target_arch = "x86_64") {
            vec![nr, nr | 0x4000_0000]
        } else {
            vec![nr]
        }
    };
    for nr in numbers(libc::SYS_socket) {
        rules.insert(nr, vec![not_unix.clone()]);
    }
    for call in [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        for nr in numbers(call) {
            rules.insert(nr, Vec::new());
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES as u32),
        std::env::consts::ARCH.try_into()?,
    )?;
    Ok(filter.try_into()?)
}

/// This kernel's Landlock ABI version, when it is at least the one the backend needs.
pub(crate) fn landlock_abi() -> std::result::Result<i64, String> {
    match child::landlock_abi() {
        0 => Err(
            "this kernel does not enforce Landlock (not built in, or not enabled at boot)".into(),
        ),
        version if version < NEEDED_ABI as i64 => Err(format!(
            "this kernel's Landlock is ABI {version}; the in-process backend needs ABI {} \
             (Linux 6.12: abstract sockets and signals scoped)",
            NEEDED_ABI as i64
        )),
        version => Ok(version),
    }
}
