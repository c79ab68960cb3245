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

mod area;
mod child;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsString};
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

use area::{Area, DEVICES};
use child::{Access, ChildPlan, Mount, Stack, Strings};
pub(crate) use child::{install, keep_open, watch};

use crate::confinement::Layout;
use crate::{Result, SopError};

/// The Landlock ABI this backend needs: 6, the first to scope abstract Unix sockets and
/// signals (Linux 6.12).
pub(crate) const NEEDED_ABI: ABI = ABI::V6;

/// A command's own `/tmp`: in memory (charged to the server's memory, not the command's),
/// so bounded. A command that needs more writes under its root.
const TMP: &CStr = c"mode=1777,size=2g,nr_inodes=1048576";

/// A command's own `/dev/shm`, bounded the same way.
const SHM: &CStr = c"mode=1777,size=512m,nr_inodes=65536";

/// Stack size of the init, and of the command until it executes.
const STACK: usize = 128 * 1024;

/// One command's confinement: what its child enters, and where it answers.
#[derive(Debug)]
pub(crate) struct Plan {
    /// What the child enters.
    pub child: ChildPlan,
    /// The read end of the status pipe: four bytes, the command's exit code, once nothing it
    /// started runs (end of file without them: the init died first).
    pub status: OwnedFd,
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
    let area = area::area()?;
    // The skeleton every command's /dev is bound from lives there: a root holding it, or
    // inside it, would let one command change what the next one sees.
    if let Some(root) = layout
        .roots
        .iter()
        .find(|root| area.dir.starts_with(root) || root.starts_with(&area.dir))
    {
        return Err(SopError::Sandbox(format!(
            "the writable root {} holds or is inside {}, where Baton keeps what commands' \
             /dev and /tmp are made from; give a narrower root (each command has a private \
             /tmp of its own)",
            root.display(),
            area.dir.display()
        )));
    }
    // What is bound from there is bound after /dev and /run are covered.
    if let Some(covered) = ["/dev", "/proc", "/run"]
        .into_iter()
        .find(|covered| area.dir.starts_with(covered))
    {
        return Err(SopError::Sandbox(format!(
            "Baton keeps what commands' /dev and /tmp are made from in the temp folder \
             ({}), which a command's own {covered} covers; set TMPDIR to a folder outside \
             /dev, /proc and /run",
            area.dir.display()
        )));
    }
    env.retain(|(name, _)| name != "TMPDIR");
    env.push(("TMPDIR".into(), "/tmp".into()));
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
    let (status, status_write) =
        std::io::pipe().map_err(|e| sandbox_error("the status pipe", e))?;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let child = ChildPlan {
        program: c_path(&program)?,
        argv: Strings::new(argv),
        envp: Strings::new(envp),
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        mounts: mounts(layout, area)?,
        cwd: c_path(cwd)?,
        ruleset: ruleset(layout, network)?,
        own: vec![
            (
                c"/dev/pts".into(),
                (AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev).bits(),
            ),
            (c"/tmp".into(), AccessFs::from_write(NEEDED_ABI).bits()),
            (c"/dev/shm".into(), AccessFs::from_write(NEEDED_ABI).bits()),
        ],
        seccomp: if network { None } else { Some(no_network()?) },
        init_stack: Stack::new(STACK),
        command_stack: Stack::new(STACK),
        status: status_write.into(),
    };
    Ok(Plan {
        child,
        status: status.into(),
    })
}

/// The mounts, in order: the filesystem read-only; the command's own `/tmp` (and `/run`, when
/// a root is under the host's) made on a stage of the area, so that a root under the host's
/// shows through; each root writable again, the folders between it and a hidden path, its
/// `.git` read-only, the hidden paths covered; the private /dev; /run; /tmp moved into place.
fn mounts(layout: &Layout, area: &Area) -> Result<Vec<Mount>> {
    let stages = [
        (Path::new("/tmp"), area.stage_tmp.as_path()),
        (Path::new("/run"), area.stage_run.as_path()),
    ];
    let staged = |path: &Path| {
        stages
            .iter()
            .find_map(|(covered, stage)| Some(stage.join(path.strip_prefix(covered).ok()?)))
    };
    let mut roots: Vec<&PathBuf> = layout.roots.iter().collect();
    // An enclosing root first: one inside it is then bound over it, never hidden by it.
    roots.sort_by_key(|root| root.components().count());
    let run_staged = roots.iter().any(|root| root.starts_with("/run"));
    let mut mounts = vec![
        Mount::ReadOnlyTree(c"/".into()),
        Mount::Tmpfs {
            at: c_path(&area.stage_tmp)?,
            options: TMP,
        },
    ];
    if run_staged {
        mounts.push(Mount::Tmpfs {
            at: c_path(&area.stage_run)?,
            options: c"mode=755",
        });
    }
    let bind = |from: &Path, to: &Path, access: Access| -> Result<Mount> {
        Ok(Mount::Bind {
            from: c_path(from)?,
            to: c_path(to)?,
            access,
        })
    };
    for (i, root) in roots.iter().enumerate() {
        let Some(at) = staged(root) else {
            mounts.push(bind(root, root, Access::Writable)?);
            continue;
        };
        // Its mount point is made in the stage's tmpfs, unless an enclosing root bound there
        // already shows it (then it must not be made: that would write in the root).
        if !roots[..i].iter().any(|outer| root.starts_with(outer)) {
            let (covered, stage) = stages
                .iter()
                .find(|(covered, _)| root.starts_with(covered))
                .map_or((Path::new("/"), Path::new("/")), |(c, s)| (*c, *s));
            let mut level = stage.to_path_buf();
            for part in root.strip_prefix(covered).unwrap_or(root).components() {
                level.push(part);
                mounts.push(Mount::MakeDir(c_path(&level)?));
            }
        }
        mounts.push(bind(root, &at, Access::Writable)?);
    }
    // Inside a root: where the root is bound. Under /tmp or /run outside every root: not
    // visible through the command's own, nothing to do.
    let target = |path: &Path| -> Option<PathBuf> {
        match staged(path) {
            None => Some(path.to_path_buf()),
            Some(at) => roots
                .iter()
                .any(|root| path.starts_with(root))
                .then_some(at),
        }
    };
    // Bound onto themselves where the root shows them (a staged one through the stage: the
    // host's path is read-only), so they keep the root's access.
    for dir in layout.between_roots_and_hidden() {
        if let Some(at) = target(dir) {
            mounts.push(bind(&at, &at, Access::Keep)?);
        }
    }
    for git in &layout.gits {
        if let Some(at) = target(git) {
            mounts.push(bind(git, &at, Access::ReadOnly)?);
        }
    }
    for hidden in &layout.hidden {
        let cover = if hidden.is_dir() {
            area.empty.as_path()
        } else {
            Path::new("/dev/null")
        };
        if let Some(at) = target(hidden) {
            mounts.push(bind(cover, &at, Access::Keep)?);
        }
    }
    let run_root = roots.iter().any(|root| root.as_path() == Path::new("/run"));
    mounts.extend(private_dev_run_tmp(area, run_staged, run_root)?);
    Ok(mounts)
}

/// The command's own `/dev` (the host's harmless devices, a tmpfs `/dev/shm`, its ptys), its
/// `/run` (empty, or the stage where roots under the host's are bound) and its `/tmp`, moved
/// into place last: the area they are bound from is usually under the host's `/tmp`.
fn private_dev_run_tmp(area: &Area, run_staged: bool, run_root: bool) -> Result<Vec<Mount>> {
    let bind = |from: &Path, to: &Path| -> Result<Mount> {
        Ok(Mount::Bind {
            from: c_path(from)?,
            to: c_path(to)?,
            access: Access::Keep,
        })
    };
    let mut mounts = Vec::new();
    // A device is written through its own bind mount (Landlock decides which).
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        mounts.push(bind(&host, &area.dev.join(device))?);
    }
    mounts.push(bind(&area.dev, Path::new("/dev"))?);
    mounts.push(Mount::Tmpfs {
        at: c"/dev/shm".into(),
        options: SHM,
    });
    mounts.push(Mount::Devpts(c"/dev/pts".into()));
    // Local services' sockets (Docker's, D-Bus's, the user's agents) live under /run.
    if run_staged {
        mounts.push(Mount::Move {
            from: c_path(&area.stage_run)?,
            to: c"/run".into(),
        });
        if !run_root {
            mounts.push(Mount::ReadOnly(c"/run".into()));
        }
    } else if Path::new("/run").is_dir() {
        mounts.push(bind(&area.empty, Path::new("/run"))?);
    }
    mounts.push(Mount::Move {
        from: c_path(&area.stage_tmp)?,
        to: c"/tmp".into(),
    });
    Ok(mounts)
}

/// Writes only under the roots, the private temp folder and the harmless devices; without the
/// network no TCP bind or connect and no abstract Unix socket outside; never a signal to a
/// process outside. Every right must be enforced, or the plan fails (never a partial sandbox).
fn ruleset(layout: &Layout, network: bool) -> Result<OwnedFd> {
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
    let created = ruleset
        .create()
        .map_err(error)?
        .add_rules(path_beneath_rules(&layout.roots, write))
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
