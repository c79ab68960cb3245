//! Files opened beneath a root, without following a symlink out and without a gap between
//! check and use.
//!
//! Every path is resolved by the kernel (`openat2`) relative to a directory handle opened once:
//! `RESOLVE_BENEATH` keeps reads inside the root, and writes also refuse every symlink on the
//! way (`RESOLVE_NO_SYMLINKS`). A process that swaps a folder for a symlink while a tool writes
//! makes the write fail; it never lands elsewhere.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::{Sandbox, SandboxMode};

/// Why a confined file operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    /// The sandbox lets nothing be written.
    #[error("`{}`: the sandbox is `read-only`; nothing may be written", path.display())]
    ReadOnly {
        /// The path asked for.
        path: PathBuf,
    },
    /// The path is in no writable root.
    #[error("`{}` is outside the writable roots {roots}", path.display())]
    OutsideRoots {
        /// The path asked for.
        path: PathBuf,
        /// The roots, for the message.
        roots: String,
    },
    /// The path names `.git`, or a file Baton itself depends on.
    #[error("`{}` is read-only: {why}", path.display())]
    Protected {
        /// The path asked for.
        path: PathBuf,
        /// What it is.
        why: &'static str,
    },
    /// A folder on the way (or the file itself) is a symlink, or leads out of the root.
    #[error("`{}` goes through a symlink or out of its root; confined writes follow none", path.display())]
    Symlink {
        /// The path asked for.
        path: PathBuf,
    },
    /// The operating system refused.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The path asked for.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// `Result` of confined file operations.
pub type ConfineResult<T> = std::result::Result<T, ConfineError>;

/// A directory opened once, beneath which files are opened by the kernel's resolution.
#[derive(Debug)]
pub struct Confined {
    dir: OwnedFd,
    root: PathBuf,
    /// How paths beneath are resolved: never through a symlink, or (full access only) as the
    /// OS would.
    resolve: ResolveFlags,
}

/// Writes beneath a root: never leaving it, never through a symlink.
const CONFINED: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// Distinguishes temporary files made by one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Confined {
    /// Open `root` itself (following symlinks: the root is configuration, not an argument).
    pub fn open(root: &Path) -> ConfineResult<Confined> {
        let dir = rustix::fs::openat2(
            rustix::fs::CWD,
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::empty(),
        )
        .map_err(|errno| io_error(root, errno))?;
        Ok(Confined {
            dir,
            root: root.to_owned(),
            resolve: CONFINED,
        })
    }

    /// The whole file system, resolved as the OS would (symlinks followed): only for a call
    /// under `danger-full-access`, which may write anywhere the OS user may.
    pub fn anywhere() -> ConfineResult<Confined> {
        let mut root = Confined::open(Path::new("/"))?;
        root.resolve = ResolveFlags::empty();
        Ok(root)
    }

    /// The whole file system as a root: absolute paths, and no symlink followed anywhere on
    /// them. For paths already made canonical (a repository's), so that a symlink swapped in
    /// later is refused rather than followed.
    pub fn filesystem() -> ConfineResult<Confined> {
        Confined::open(Path::new("/"))
    }

    /// The folder this handle is confined to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` relative to the root (an absolute one must lie under it), lexically normalised;
    /// `..` is refused.
    fn relative(&self, path: &Path) -> ConfineResult<PathBuf> {
        let inside = if path.is_absolute() {
            path.strip_prefix(&self.root)
                .map_err(|_| ConfineError::Symlink {
                    path: path.to_owned(),
                })?
        } else {
            path
        };
        let mut out = PathBuf::new();
        for component in inside.components() {
            match component {
                Component::Normal(name) => out.push(name),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(ConfineError::Symlink {
                        path: path.to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Open `path` for reading, beneath the root (symlinks that stay inside are followed).
    pub fn read(&self, path: &Path) -> ConfineResult<File> {
        let rel = self.relative(path)?;
        let fd = rustix::fs::openat2(
            &self.dir,
            dot_if_empty(&rel),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|errno| refusal(path, errno))?;
        Ok(File::from(fd))
    }

    /// The folder `path` beneath the root, created (with its parents) when missing; no
    /// symlink is followed on the way.
    pub fn create_dirs(&self, path: &Path) -> ConfineResult<Confined> {
        let rel = self.relative(path)?;
        let mut current = self.reopen(path)?;
        let mut at = self.root.clone();
        for name in rel.iter() {
            at.push(name);
            let next = match open_dir(&current, name, self.resolve) {
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(io_error(&at, errno)),
                    }
                    open_dir(&current, name, self.resolve)
                }
                other => other,
            }
            .map_err(|errno| refusal(&at, errno))?;
            current = next;
        }
        Ok(Confined {
            dir: current,
            root: at,
            resolve: self.resolve,
        })
    }

    fn reopen(&self, path: &Path) -> ConfineResult<OwnedFd> {
        rustix::fs::openat2(
            &self.dir,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH,
        )
        .map_err(|errno| io_error(path, errno))
    }

    /// Create or replace the file `path` with what `write` puts in it, atomically: a new
    /// file beside it, renamed over it. A symlink at `path` is replaced, never followed.
    pub fn write_with(
        &self,
        path: &Path,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> ConfineResult<()> {
        let (dir, name) = self.parent_of(path)?;
        let temp = format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let fd = rustix::fs::openat2(
            &dir.dir,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
            self.resolve,
        )
        .map_err(|errno| refusal(path, errno))?;
        let mut file = File::from(fd);
        let written = write(&mut file).and_then(|()| file.sync_all());
        drop(file);
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&dir.dir, temp.as_str(), &dir.dir, name.as_os_str())
                .map_err(io::Error::from)
        });
        if let Err(source) = renamed {
            let _ = rustix::fs::unlinkat(&dir.dir, temp.as_str(), rustix::fs::AtFlags::empty());
            return Err(ConfineError::Io {
                path: path.to_owned(),
                source,
            });
        }
        Ok(())
    }

    /// [`Confined::write_with`] of `bytes`.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> ConfineResult<()> {
        self.write_with(path, |file| io::Write::write_all(file, bytes))
    }

    /// Open `path` to append to it (created if missing), following no symlink.
    pub fn append(&self, path: &Path) -> ConfineResult<File> {
        self.open_writable(path, OFlags::WRONLY | OFlags::APPEND)
    }

    /// Open `path` for writing in place (created if missing, never truncated), following no
    /// symlink: for lock files.
    pub fn open_writable(&self, path: &Path, flags: OFlags) -> ConfineResult<File> {
        let (dir, name) = self.parent_of(path)?;
        let fd = rustix::fs::openat2(
            &dir.dir,
            name.as_os_str(),
            flags | OFlags::CREATE | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
            self.resolve,
        )
        .map_err(|errno| refusal(path, errno))?;
        Ok(File::from(fd))
    }

    /// The folder holding `path` (created when missing) and the file's name.
    fn parent_of(&self, path: &Path) -> ConfineResult<(Confined, std::ffi::OsString)> {
        let rel = self.relative(path)?;
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return Err(ConfineError::Io {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "names no file"),
            });
        };
        Ok((self.create_dirs(parent)?, name.to_owned()))
    }
}

fn dot_if_empty(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

fn open_dir(
    dir: &impl AsFd,
    name: &std::ffi::OsStr,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat2(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        resolve,
    )
}

fn io_error(path: &Path, errno: Errno) -> ConfineError {
    ConfineError::Io {
        path: path.to_owned(),
        source: io::Error::from(errno),
    }
}

/// `ELOOP` and `EXDEV` are how the kernel says a resolution met a symlink or left the root.
fn refusal(path: &Path, errno: Errno) -> ConfineError {
    match errno {
        Errno::LOOP | Errno::XDEV => ConfineError::Symlink {
            path: path.to_owned(),
        },
        other => io_error(path, other),
    }
}

impl Sandbox {
    /// Where a call may write `path`: the writable root holding it, opened, and the path
    /// relative to it. Relative paths are relative to the working directory. Refuses a
    /// read-only sandbox, a path in no writable root, `.git`, and Baton's own files.
    pub fn writable(&self, path: &Path) -> ConfineResult<(Confined, PathBuf)> {
        let absolute = absolute(path)?;
        if self.protected.iter().any(|p| absolute.starts_with(p)) {
            return Err(ConfineError::Protected {
                path: absolute,
                why: "Baton's own configuration, policy and data are never written by tools",
            });
        }
        match self.mode {
            SandboxMode::ReadOnly => Err(ConfineError::ReadOnly { path: absolute }),
            SandboxMode::DangerFullAccess => {
                let rel = absolute.strip_prefix("/").unwrap_or(&absolute).to_owned();
                Ok((Confined::anywhere()?, rel))
            }
            SandboxMode::WorkspaceWrite => {
                let root = self
                    .writable_roots
                    .iter()
                    .filter(|root| absolute.starts_with(root))
                    .max_by_key(|root| root.as_os_str().len())
                    .ok_or_else(|| ConfineError::OutsideRoots {
                        path: absolute.clone(),
                        roots: self
                            .writable_roots
                            .iter()
                            .map(|r| r.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                let rel = absolute.strip_prefix(root).unwrap_or(&absolute).to_owned();
                if rel.components().any(|c| c.as_os_str() == ".git") {
                    return Err(ConfineError::Protected {
                        path: absolute,
                        why: "`.git` is read-only in every sandbox but full access",
                    });
                }
                // A configured root that does not exist yet is made (the root is configuration,
                // as trusted as the policy that names it); everything beneath is confined.
                let opened = match Confined::open(root) {
                    Err(ConfineError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        std::fs::create_dir_all(root).map_err(|source| ConfineError::Io {
                            path: root.clone(),
                            source,
                        })?;
                        Confined::open(root)?
                    }
                    other => other?,
                };
                Ok((opened, rel))
            }
        }
    }

    /// Create or replace the file `path` with what `write` puts in it, confined to this
    /// sandbox: the tools' output files.
    pub fn write_file(
        &self,
        path: &Path,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> ConfineResult<()> {
        let (root, rel) = self.writable(path)?;
        root.write_with(&rel, write)
    }

    /// The folder `path`, created when missing, confined to this sandbox: a tool's output
    /// folder, to write files into with [`Confined::write_with`].
    pub fn create_dir(&self, path: &Path) -> ConfineResult<Confined> {
        let (root, rel) = self.writable(path)?;
        root.create_dirs(&rel)
    }
}

/// `path` made absolute against the working directory and normalised lexically (`..` taken
/// away with the name before it; symlinks are the kernel's business, above).
fn absolute(path: &Path) -> ConfineResult<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|source| ConfineError::Io {
                path: path.to_owned(),
                source,
            })?
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

impl From<ConfineError> for crate::ToolError {
    fn from(error: ConfineError) -> Self {
        match error {
            ConfineError::Io { .. } => crate::ToolError::failed(error.to_string()),
            ConfineError::ReadOnly { .. }
            | ConfineError::OutsideRoots { .. }
            | ConfineError::Protected { .. }
            | ConfineError::Symlink { .. } => crate::ToolError::Denied {
                rule: "sandbox.confine".into(),
                reason: error.to_string(),
            },
        }
    }
}
