//! The in-process backend (`landlock`): the command's own user, mount, PID and IPC namespaces,
//! no capabilities, Landlock for files, signals and abstract sockets, and seccomp for the
//! network, all entered between `fork` and `exec` — no helper program to start, which is what
//! makes it cheap (bubblewrap's own start-up was most of its cost).
//!
//! Landlock rights are additive down a hierarchy, so a grant on a root also covers its `.git`;
//! the mount namespace is what keeps `.git` read-only (bound over itself read-only) and hides
//! Baton's own files, and Landlock, enforced after those mounts, keeps the command from undoing
//! them. The parent builds everything (the ruleset with its rules, the seccomp program, the
//! C strings); the child only makes system calls.

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
use child::{ChildPlan, Mount, Strings};

use crate::confinement::Layout;
use crate::{Result, SopError};

/// The Landlock ABI this backend needs: 6, the first to scope abstract Unix sockets and
/// signals (Linux 6.12).
pub(crate) const NEEDED_ABI: ABI = ABI::V6;

/// Devices every command may write to.
const DEVICES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/full"];

/// One command's confinement: what its child enters, and its private temp folder (removed
/// when this is dropped, after the command).
#[derive(Debug)]
pub(crate) struct Plan {
    /// What the child enters.
    pub child: ChildPlan,
    /// The command's `TMPDIR`, the one writable place outside its roots.
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

/// The plan for `argv` in `cwd` with `layout`, the network cut off unless `network`, its
/// environment `env` plus `TMPDIR` (added here: the private folder is made here).
pub(crate) fn plan(
    layout: &Layout,
    cwd: &Path,
    network: bool,
    argv: &[String],
    env: &mut Vec<(String, OsString)>,
) -> Result<Plan> {
    let program = argv
        .first()
        .ok_or_else(|| SopError::invalid("argv", "is empty; give the program and its arguments"))?;
    // PID 1 executes the program itself, with no search: find it here, in the command's PATH.
    let program = if program.contains('/') {
        PathBuf::from(program)
    } else {
        let path = env
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        crate::confinement::find_program(program, &path)
            .ok_or_else(|| SopError::NotFound(format!("program `{program}`")))?
    };
    let tmp = tempfile::Builder::new()
        .prefix("baton-exec-")
        .tempdir()
        .map_err(|e| sandbox_error("its private temp folder", e))?;
    env.push(("TMPDIR".into(), tmp.path().into()));
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
    let ruleset = ruleset(layout, tmp.path(), network)?;
    let mut mounts = Vec::new();
    for git in &layout.gits {
        mounts.push(Mount::ReadOnly(c_path(git)?));
    }
    for hidden in &layout.hidden {
        mounts.push(if hidden.is_dir() {
            Mount::HideDir(c_path(hidden)?)
        } else {
            Mount::HideFile(c_path(hidden)?)
        });
    }
    // Local services' sockets (D-Bus, Docker) live under /run; without the network a command
    // has no business with them either — unless it works there.
    let run = Path::new("/run");
    let under_run = layout.roots.iter().any(|r| r.starts_with(run)) || cwd.starts_with(run);
    if !network && run.is_dir() && !under_run {
        // An empty folder bound read-only: a bind mount costs far less than a new tmpfs.
        let empty = tmp.path().join(".run");
        std::fs::create_dir(&empty).map_err(|e| sandbox_error("an empty /run", e))?;
        mounts.push(Mount::Cover {
            from: c_path(&empty)?,
            to: c_path(run)?,
        });
    }
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let child = ChildPlan {
        program: c_path(&program)?,
        argv: Strings::new(argv),
        envp: Strings::new(envp),
        stack: vec![0; child::STACK],
        uid_map: format!("{uid} {uid} 1\n").into_bytes(),
        gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        mounts,
        cwd: c_path(cwd)?,
        ruleset,
        seccomp: if network { None } else { Some(no_network()?) },
    };
    Ok(Plan { child, tmp })
}

/// Writes only under the roots, the private temp folder and the harmless devices; without the
/// network no TCP bind or connect and no abstract Unix socket outside; never a signal to a
/// process outside. Every right must be enforced, or the plan fails (never a partial sandbox).
fn ruleset(layout: &Layout, tmp: &Path, network: bool) -> Result<OwnedFd> {
    let write = AccessFs::from_write(NEEDED_ABI);
    let error = |e| sandbox_error("Landlock", e);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(write)
        .map_err(error)?
        .scope(Scope::Signal)
        .map_err(error)?;
    if !network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(NEEDED_ABI))
            .map_err(error)?
            .scope(Scope::AbstractUnixSocket)
            .map_err(error)?;
    }
    let writable = layout.roots.iter().map(|r| r.as_path()).chain([tmp]);
    let created = ruleset
        .create()
        .map_err(error)?
        .add_rules(path_beneath_rules(writable, write))
        .map_err(error)?
        .add_rules(path_beneath_rules(DEVICES, write))
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
