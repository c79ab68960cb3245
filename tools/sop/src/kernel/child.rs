//! What runs in the forked child between `fork` and `exec`: new user, mount, PID and IPC
//! namespaces, the mounts of the plan, no capabilities, then Landlock and seccomp.
//!
//! Between `fork` and `exec` in a multi-threaded program only async-signal-safe calls are
//! allowed: everything here is a raw system call on data prepared by the parent (no allocation,
//! no lock). That is also why this is the one place in the crate with `unsafe`: `pre_exec`
//! itself is unsafe, and so is every libc call.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};

/// A mount made inside the command's mount namespace before it runs.
#[derive(Debug)]
pub(crate) enum Mount {
    /// The path bound over itself read-only (a root's `.git`).
    ReadOnly(CString),
    /// An empty read-only tmpfs over a folder (Baton's own data, hidden).
    HideDir(CString),
    /// `/dev/null` bound read-only over a file (Baton's own config, hidden).
    HideFile(CString),
    /// An empty folder bound read-only over another (`/run` without the network: local
    /// services' sockets).
    Cover {
        /// The empty folder.
        from: CString,
        /// What it covers.
        to: CString,
    },
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    /// The program to execute: a path (resolved by the parent when the command named only a
    /// program, since PID 1 executes it itself, with no search).
    pub program: CString,
    /// Its arguments, the program first.
    pub argv: Strings,
    /// Its environment, `NAME=value`.
    pub envp: Strings,
    /// `/proc/self/uid_map` content: the caller's own uid mapped to itself.
    pub uid_map: Vec<u8>,
    /// `/proc/self/gid_map` content.
    pub gid_map: Vec<u8>,
    /// Mounts, in order.
    pub mounts: Vec<Mount>,
    /// The working folder, entered again after the mounts so it resolves through them.
    pub cwd: CString,
    /// The Landlock ruleset to enforce.
    pub ruleset: OwnedFd,
    /// The seccomp filter, when there is one (none when the network is granted).
    pub seccomp: Option<&'static seccompiler::BpfProgram>,
    /// The stack PID 1 runs on until it executes the command.
    pub stack: Vec<u8>,
}

/// `mount_setattr(2)`'s argument (not in the libc crate).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Arrange for `command` to enter `plan` between its fork and its exec.
/// (The standard library's own exec after this closure never happens: this process either
/// reports an error or waits for PID 1 and exits.)
pub(crate) fn install(command: &mut std::process::Command, plan: ChildPlan) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure only makes raw system calls on memory it owns (see `enter`).
    unsafe {
        command.pre_exec(move || enter(&plan));
    }
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn write_file(path: &CStr, content: &[u8]) -> io::Result<()> {
    // SAFETY: a valid C string and a buffer of the given length.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd.into())?;
        let written = libc::write(fd, content.as_ptr().cast(), content.len());
        libc::close(fd);
        check(written as libc::c_long)
    }
}

/// Stack of the namespace's PID 1 until it executes the command.
pub(crate) const STACK: usize = 256 * 1024;

/// What PID 1 is handed.
struct Start<'a> {
    plan: &'a ChildPlan,
    /// The write end of the pipe on which PID 1 reports why it could not start.
    report: libc::c_int,
}

/// C strings and the NUL-terminated array of pointers to them that `execve` takes.
#[derive(Debug)]
pub(crate) struct Strings {
    /// Owns the bytes the pointers point into (a `CString`'s buffer never moves).
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into the heap buffers of the `CString`s beside them, which are
// never changed, moved or dropped while the pointers live; they are only read.
unsafe impl Send for Strings {}
// SAFETY: as above; nothing writes through them.
unsafe impl Sync for Strings {}

impl Strings {
    /// `strings`, with the array of pointers to them.
    pub(crate) fn new(strings: Vec<CString>) -> Strings {
        let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Strings {
            _strings: strings,
            pointers,
        }
    }
}

/// In the forked child: the namespaces, then PID 1 of the new PID namespace, which becomes
/// the command; this process stays outside it and only waits, so everything the command
/// starts (even after `setsid`) dies with it. PID 1 shares this process's memory until it
/// executes the command (`CLONE_VM | CLONE_VFORK`, as `posix_spawn` does), so starting it
/// copies no page table — a second fork of a large server would cost milliseconds.
fn enter(plan: &ChildPlan) -> io::Result<()> {
    // SAFETY: raw system calls with valid arguments; see each comment.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0).into())?;
        check(
            libc::unshare(
                libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC,
            )
            .into(),
        )?;
        write_file(c"/proc/self/uid_map", &plan.uid_map)?;
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/gid_map", &plan.gid_map)?;
        let mut pipe = [0; 2];
        check(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC).into())?;
        let start = Start {
            plan,
            report: pipe[1],
        };
        let top = plan.stack.as_ptr().add(plan.stack.len()) as usize & !15;
        let pid = libc::clone(
            pid_one,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&start as *const Start).cast_mut().cast(),
        );
        check(pid.into())?;
        libc::close(pipe[1]);
        // PID 1 has executed the command (the pipe closed with it) or failed (said why).
        let mut errno = 0i32;
        let read = libc::read(pipe[0], (&mut errno as *mut i32).cast(), 4);
        if read == 4 {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            return Err(io::Error::from_raw_os_error(errno));
        }
        wait_and_exit(pid)
    }
}

/// PID 1, on its own stack in the forked child's memory: confine itself, execute the command;
/// on failure report the error number and exit.
extern "C" fn pid_one(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Start` of `enter`, alive while this runs (the parent is
    // suspended until this executes or exits).
    let start = unsafe { &*arg.cast::<Start>() };
    // Killed with the first child (a call dropped kills only that one, directly).
    // SAFETY: prctl with integer arguments.
    let dies = check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) }.into());
    let result: io::Result<()> = dies.and_then(|()| confine(start.plan)).and_then(|()| {
        // SAFETY: NUL-terminated arrays of C strings that outlive the call.
        unsafe {
            libc::execve(
                start.plan.program.as_ptr(),
                start.plan.argv.pointers.as_ptr(),
                start.plan.envp.pointers.as_ptr(),
            );
        }
        Err(io::Error::last_os_error())
    });
    let errno = result
        .err()
        .and_then(|e| e.raw_os_error())
        .unwrap_or(libc::EIO);
    // SAFETY: a write of 4 bytes from a local, then exit without unwinding.
    unsafe {
        libc::write(start.report, (&errno as *const i32).cast(), 4);
        libc::_exit(127)
    }
}

/// The first child: hold nothing (the spawn's error pipe above all, or the parent would wait
/// for the whole command), wait for PID 1, and end the way it ended.
fn wait_and_exit(pid: libc::pid_t) -> ! {
    // SAFETY: raw system calls; `status` is a valid out-pointer.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let rc = libc::waitpid(pid, &mut status, 0);
            if rc == pid {
                break;
            }
            if rc < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status));
    }
}

/// PID 1 of the new namespace: the mounts, a fresh `/proc`, the working folder again, no
/// capabilities, then Landlock and seccomp. Landlock comes after the mounts because a
/// Landlock-restricted process may not mount anything (which is also what keeps the command
/// from undoing them).
fn confine(plan: &ChildPlan) -> io::Result<()> {
    // SAFETY: raw system calls on C strings and structs owned by `plan` or this frame.
    unsafe {
        check(
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
            .into(),
        )?;
        for mount in &plan.mounts {
            apply(mount)?;
        }
        check(
            libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )
            .into(),
        )?;
        check(libc::chdir(plan.cwd.as_ptr()).into())?;
        drop_capabilities()?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
        check(libc::syscall(
            libc::SYS_landlock_restrict_self,
            plan.ruleset.as_raw_fd(),
            0u32,
        ))?;
    }
    if let Some(filter) = plan.seccomp {
        seccompiler::apply_filter(filter).map_err(|_| io::Error::last_os_error())?;
    }
    Ok(())
}

unsafe fn apply(mount: &Mount) -> io::Result<()> {
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY (for the caller): C strings owned by `mount`.
    unsafe {
        match mount {
            Mount::ReadOnly(path) => {
                check(
                    libc::mount(
                        path.as_ptr(),
                        path.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REC,
                        null.cast(),
                    )
                    .into(),
                )?;
                read_only(path)
            }
            Mount::HideDir(path) => check(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    path.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                    c"mode=0555".as_ptr().cast(),
                )
                .into(),
            ),
            Mount::HideFile(path) => {
                check(
                    libc::mount(
                        c"/dev/null".as_ptr(),
                        path.as_ptr(),
                        null,
                        libc::MS_BIND,
                        null.cast(),
                    )
                    .into(),
                )?;
                read_only(path)
            }
            Mount::Cover { from, to } => {
                check(
                    libc::mount(from.as_ptr(), to.as_ptr(), null, libc::MS_BIND, null.cast())
                        .into(),
                )?;
                read_only(to)
            }
        }
    }
}

/// Make the mount at `path` (and those under it) read-only. `mount_setattr` sets only that
/// flag, where a remount would have to repeat the locked ones (nosuid, nodev…) to be allowed.
unsafe fn read_only(path: &CStr) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY (for the caller): a valid C string and struct of the size given.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
}

/// No capability survives the exec, even as uid 0: the bounding, ambient and inheritable sets
/// emptied, then the rest. (Inside its own user namespace the process held them all.)
fn drop_capabilities() -> io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl with integer arguments; capset with a valid header and two data entries.
    unsafe {
        for capability in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 {
                // EINVAL past the kernel's last capability: nothing left to drop.
                if *libc::__errno_location() == libc::EINVAL {
                    break;
                }
                return Err(io::Error::last_os_error());
            }
        }
        check(
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            )
            .into(),
        )?;
        let header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let data = [
            Data {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
            Data {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
        ];
        check(libc::syscall(
            libc::SYS_capset,
            &header as *const Header,
            data.as_ptr(),
        ))
    }
}

/// The running kernel's Landlock ABI version; 0 when it has none.
pub(crate) fn landlock_abi() -> i64 {
    const VERSION: u32 = 1;
    // SAFETY: the documented version query: a null attribute, size 0.
    let version = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            VERSION,
        )
    };
    version.max(0)
}
