//! What runs in the forked child between `fork` and `exec`: new user, mount, PID and IPC
//! namespaces, an init of Baton's own as the namespace's PID 1, the mounts of the plan, then
//! the command as PID 2 with no capabilities, under Landlock and seccomp.
//!
//! Between `fork` and `exec` in a multi-threaded program only async-signal-safe calls are
//! allowed: everything here is a raw system call on data prepared by the parent (no allocation,
//! no lock). That is also why this is the one place in the crate with `unsafe`: `pre_exec`
//! itself is unsafe, and so is every libc call. (The bwrap backend's two unsafe calls, a
//! descriptor kept across its exec and its init's pidfd registered with tokio, live here too.)
//!
//! Three processes: the forked child (outside the new PID namespace: it waits, and is what the
//! server kills), the namespace's init (never executes anything, dies with the forked child,
//! reaps orphans, and its death ends every process in the namespace), and the command. The
//! init and the command are started with `CLONE_VM` on stacks of their own (the command with
//! `CLONE_VFORK` too, as `posix_spawn` does): no page table is copied, so a large server pays
//! for one fork, as it would for any command. A command cannot outlive its call by clearing
//! its parent-death signal or calling `setsid`: the init, which it can neither signal nor
//! trace (Landlock scopes both), holds the namespace.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// A mount made inside the command's mount namespace before it runs, in order.
#[derive(Debug)]
pub(crate) enum Mount {
    /// Every mount under the path made read-only (the whole filesystem, first).
    ReadOnlyTree(CString),
    /// `from` bound at `to` (with what is mounted under it).
    Bind {
        /// What is bound.
        from: CString,
        /// Where.
        to: CString,
        /// Whether writes are allowed through it (Landlock decides what else may be written).
        access: Access,
    },
    /// A new instance of devpts (ptys of the command's own).
    Devpts(CString),
    /// A new tmpfs (a file system of the command's own, gone with it), with these options.
    Tmpfs {
        /// Where.
        at: CString,
        /// Its options (`mode=…`).
        options: &'static CStr,
    },
    /// A folder made (a mount point inside a tmpfs of the command's own; one that exists
    /// already is fine).
    MakeDir(CString),
    /// The mount at `from`, with everything mounted under it, moved to `to`.
    Move {
        /// What is moved.
        from: CString,
        /// Where.
        to: CString,
    },
    /// This mount only made read-only (those under it keep their own flag).
    ReadOnly(CString),
}

/// What a bind mount lets through.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Access {
    /// As the mount it was bound from (read-only everywhere once the whole tree is; device
    /// files are written whatever the mount says).
    Keep,
    /// Read-only, with every mount under it.
    ReadOnly,
    /// Writable, this mount only: one staged under it keeps its own read-only flag.
    Writable,
}

/// A stack for a process started with `CLONE_VM`, written only by that process.
#[derive(Debug)]
pub(crate) struct Stack {
    bytes: UnsafeCell<Box<[u8]>>,
    len: usize,
}

// SAFETY: the bytes are only touched by the process that runs on them, never through `&self`
// in Rust code.
unsafe impl Sync for Stack {}

impl Stack {
    /// A stack of `size` bytes.
    pub(crate) fn new(size: usize) -> Stack {
        Stack {
            bytes: UnsafeCell::new(vec![0u8; size].into_boxed_slice()),
            len: size,
        }
    }

    /// Its top, 16-byte aligned (stacks grow down).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: the box is never moved or reborrowed elsewhere; the result is one past the
        // end of its allocation and is not dereferenced here.
        let end = unsafe { (&mut *self.bytes.get()).as_mut_ptr().add(self.len) };
        (end as usize & !15) as *mut libc::c_void
    }
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    /// The program to execute: a path (resolved by the parent when the command named only a
    /// program, since it is executed directly, with no search).
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
    /// The working folder, entered after the mounts so it resolves through them.
    pub cwd: CString,
    /// The Landlock ruleset to enforce (the rules for the command's own folders are added
    /// once they exist).
    pub ruleset: OwnedFd,
    /// The command's own folders (made in its namespace: its ptys, `/tmp`, `/dev/shm`), with
    /// the rights granted beneath each.
    pub own: Vec<(CString, u64)>,
    /// The seccomp filter, when there is one (none when the network is granted).
    pub seccomp: Option<&'static seccompiler::BpfProgram>,
    /// The init's stack.
    pub init_stack: Stack,
    /// The command's stack until it executes.
    pub command_stack: Stack,
    /// The write end of the pipe on which the init gives the command's exit code, once
    /// nothing of the command's runs any more: the server answers from it, without waiting
    /// for the namespaces to be torn down.
    pub status: OwnedFd,
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

/// `landlock_add_rule(2)`'s path rule (packed, as the kernel declares it).
#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// Arrange for `command` to enter `plan` between its fork and its exec.
/// (The standard library's own exec after this closure never happens: the forked child
/// either reports an error or waits for the init and exits.)
pub(crate) fn install(command: &mut std::process::Command, plan: ChildPlan) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure only makes raw system calls on memory it owns (see `enter`).
    unsafe {
        command.pre_exec(move || enter(&plan));
    }
}

/// Keep `fd` open across `command`'s exec (bwrap's `--info-fd`), without leaking it into any
/// other process the server starts meanwhile, as clearing close-on-exec in the parent would.
pub(crate) fn keep_open(command: &mut std::process::Command, fd: std::os::fd::RawFd) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: fcntl is async-signal-safe; `fd` is open in the parent until the spawn returns.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `pidfd`, registered with tokio's reactor to wait for its process's exit.
pub(crate) fn watch(
    pidfd: std::os::fd::OwnedFd,
) -> io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: the `AsyncFd` owns the descriptor, so it stays open and the same for its life.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE)
    }
    .map_err(|error| error.into_parts().1)
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

/// What the init and the command are handed (on the forked child's stack, which both share).
struct Start<'a> {
    plan: &'a ChildPlan,
    /// The write end of the pipe on which the init reports: 0 once the command runs, else the
    /// error number of what failed.
    report: libc::c_int,
    /// A pidfd of the forked child.
    parent: libc::c_int,
    /// The command's error number when it could not start (0: it executed).
    failed: AtomicI32,
}

/// In the forked child: no core dump (this is a copy of the server, its secrets included), the
/// namespaces, then the init; wait for its report, and then for its end.
fn enter(plan: &ChildPlan) -> io::Result<()> {
    // SAFETY: raw system calls with valid arguments; see each comment.
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        check(libc::setrlimit(libc::RLIMIT_CORE, &no_core).into())?;
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
        // Only now: a process that is not dumpable may not write its own maps (its /proc
        // files belong to root).
        check(libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0).into())?;
        // The server's signal handlers must not run in these copies of it; the command
        // unblocks signals before it executes.
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        // The init watches this process through a pidfd: should it die before the init's own
        // parent-death signal is set, the init sees it and ends.
        let me = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0u32);
        check(me)?;
        let mut pipe = [0; 2];
        check(libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC).into())?;
        let start = Start {
            plan,
            report: pipe[1],
            parent: me as libc::c_int,
            failed: AtomicI32::new(0),
        };
        let init = libc::clone(
            init_main,
            plan.init_stack.top(),
            libc::CLONE_VM | libc::SIGCHLD,
            (&start as *const Start).cast_mut().cast(),
        );
        check(init.into())?;
        libc::close(pipe[1]);
        let mut errno = libc::EIO;
        let mut read = libc::read(pipe[0], (&mut errno as *mut i32).cast(), 4);
        while read < 0 && *libc::__errno_location() == libc::EINTR {
            read = libc::read(pipe[0], (&mut errno as *mut i32).cast(), 4);
        }
        if read != 4 || errno != 0 {
            let mut status = 0;
            libc::waitpid(init, &mut status, 0);
            return Err(io::Error::from_raw_os_error(if read == 4 {
                errno
            } else {
                libc::EIO
            }));
        }
        wait_and_exit(init)
    }
}

/// The forked child once the command runs: hold nothing (the spawn's error pipe above all, or
/// the parent would wait for the whole command; the status pipe, or its end would wait for
/// this process), wait for the init, exit as it did.
fn wait_and_exit(init: libc::pid_t) -> ! {
    // SAFETY: raw system calls; `status` is a valid out-pointer.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        let mut status = 0;
        while libc::waitpid(init, &mut status, 0) != init {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        libc::_exit(exit_code(status))
    }
}

/// The exit code a shell would show for `status`: the code, or 128 + the signal.
fn exit_code(status: libc::c_int) -> libc::c_int {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// The init, PID 1 of the new namespace: dies with the forked child, makes the mounts, starts
/// the command, reports, then reaps until the command ends and exits as it did — which ends
/// every other process in the namespace.
extern "C" fn init_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Start` of `enter`, alive while the forked child waits.
    let start = unsafe { &*arg.cast::<Start>() };
    let command = set_up(start.plan, start.parent).and_then(|()| {
        // SAFETY: the command's own stack; `start` outlives it (this process is suspended
        // until the command executes or exits).
        let pid = unsafe {
            libc::clone(
                command_main,
                start.plan.command_stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (start as *const Start).cast_mut().cast(),
            )
        };
        check(pid.into())?;
        match start.failed.load(Ordering::SeqCst) {
            0 => Ok(pid),
            errno => Err(io::Error::from_raw_os_error(errno)),
        }
    });
    let errno = match &command {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(libc::EIO),
    };
    let status_fd = start.plan.status.as_raw_fd();
    // SAFETY: raw system calls; `status` is a valid out-pointer.
    unsafe {
        libc::write(start.report, (&errno as *const i32).cast(), 4);
        if status_fd > 0 {
            libc::syscall(libc::SYS_close_range, 0u32, status_fd as u32 - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, status_fd as u32 + 1, u32::MAX, 0u32);
        let Ok(command) = command else {
            libc::_exit(127)
        };
        let mut status = 0;
        let code = loop {
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == command {
                break exit_code(status);
            }
            if pid < 0 && *libc::__errno_location() != libc::EINTR {
                break 127;
            }
        };
        // Nothing the command started may outlive the answer: end every other process of the
        // namespace (a fork racing this is cancelled by the kernel) and reap them all, then
        // answer. Tearing the namespaces down, which is slow, happens after.
        libc::kill(-1, libc::SIGKILL);
        while libc::waitpid(-1, std::ptr::null_mut(), 0) > 0
            || *libc::__errno_location() == libc::EINTR
        {}
        libc::write(status_fd, (&code as *const i32).cast(), 4);
        libc::_exit(code)
    }
}

/// The command: confine itself, execute; on failure leave the error number and exit.
extern "C" fn command_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Start` of `enter` (see `init_main`).
    let start = unsafe { &*arg.cast::<Start>() };
    let result: io::Result<()> = confine(start.plan).and_then(|()| {
        // SAFETY: an empty signal set of this frame; NUL-terminated arrays of C strings that
        // outlive the call.
        unsafe {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
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
    start.failed.store(errno, Ordering::SeqCst);
    // SAFETY: exit without unwinding.
    unsafe { libc::_exit(127) }
}

/// In the init: the mounts (before Landlock, which forbids mounting), a fresh `/proc` for the
/// new PID namespace, the working folder through them.
fn set_up(plan: &ChildPlan, parent: libc::c_int) -> io::Result<()> {
    // SAFETY: raw system calls on C strings owned by `plan`, and a pollfd of this frame.
    unsafe {
        check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0).into())?;
        let mut gone = libc::pollfd {
            fd: parent,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut gone, 1, 0) != 0 {
            // Died before the signal was set: nobody would ever end this namespace.
            libc::_exit(127);
        }
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
        check(libc::chdir(plan.cwd.as_ptr()).into())
    }
}

/// In the command, before it executes: no capabilities, no new privileges, the command's own
/// folders added to the ruleset, Landlock, seccomp.
fn confine(plan: &ChildPlan) -> io::Result<()> {
    drop_capabilities()?;
    // SAFETY: raw system calls on a descriptor and structs owned by `plan` or this frame.
    unsafe {
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
        for (path, access) in &plan.own {
            let dir = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            check(dir.into())?;
            let rule = PathBeneath {
                allowed_access: *access,
                parent_fd: dir,
            };
            let added = libc::syscall(
                libc::SYS_landlock_add_rule,
                plan.ruleset.as_raw_fd(),
                LANDLOCK_RULE_PATH_BENEATH,
                &rule as *const PathBeneath,
                0u32,
            );
            libc::close(dir);
            check(added)?;
        }
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
            Mount::ReadOnlyTree(path) => set_attr(path, MOUNT_ATTR_RDONLY, 0, libc::AT_RECURSIVE),
            Mount::Bind { from, to, access } => {
                check(
                    libc::mount(
                        from.as_ptr(),
                        to.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REC,
                        null.cast(),
                    )
                    .into(),
                )?;
                match access {
                    Access::Keep => Ok(()),
                    Access::ReadOnly => set_attr(to, MOUNT_ATTR_RDONLY, 0, libc::AT_RECURSIVE),
                    Access::Writable => set_attr(to, 0, MOUNT_ATTR_RDONLY, 0),
                }
            }
            Mount::Tmpfs { at, options } => check(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    at.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    options.as_ptr().cast(),
                )
                .into(),
            ),
            Mount::MakeDir(path) => {
                if libc::mkdir(path.as_ptr(), 0o755) == 0
                    || *libc::__errno_location() == libc::EEXIST
                {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
            Mount::Move { from, to } => check(
                libc::mount(from.as_ptr(), to.as_ptr(), null, libc::MS_MOVE, null.cast()).into(),
            ),
            Mount::ReadOnly(path) => set_attr(path, MOUNT_ATTR_RDONLY, 0, 0),
            Mount::Devpts(path) => check(
                libc::mount(
                    c"devpts".as_ptr(),
                    path.as_ptr(),
                    c"devpts".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NOEXEC,
                    c"newinstance,ptmxmode=0666,mode=620".as_ptr().cast(),
                )
                .into(),
            ),
        }
    }
}

/// `mount_setattr` on `path`: `set` and `clear` those attributes, `flags` (`AT_RECURSIVE`).
unsafe fn set_attr(path: &CStr, set: u64, clear: u64, flags: libc::c_int) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY (for the caller): a valid C string and struct of the size given.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
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
