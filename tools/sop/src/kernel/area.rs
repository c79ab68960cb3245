//! Baton's folder for confined commands, one area per process under the temp folder: the
//! skeleton of a command's `/dev`, an empty folder to cover with, and the two folders on which
//! a command's own `/tmp` and `/run` are put together before they are moved into place.
//!
//! Nothing of a command's is ever written here: its `/tmp` and `/dev/shm` are file systems of
//! its own (tmpfs), made in its mount namespace and gone with it. An area outlives its process
//! (statics are never dropped), so each one is locked (`flock` on the folder itself, which
//! `systemd-tmpfiles` also honours) for its process's life, and the first command of a later
//! process removes the areas whose lock nobody holds.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::sandbox_error;
use crate::Result;

/// The host's devices a command gets in its own `/dev` (under `/dev`).
pub(crate) const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The start of an area's name in the temp folder.
const PREFIX: &str = "baton-confine-";

/// How old an unlocked area must be to be taken for a dead process's: one is locked right
/// after it is made.
const GRACE: Duration = Duration::from_secs(60);

/// This process's area.
#[derive(Debug)]
pub(crate) struct Area {
    /// The area itself, canonical: no root may hold it or be inside it.
    pub dir: PathBuf,
    /// An empty folder, to cover what a command must not see.
    pub empty: PathBuf,
    /// The skeleton of a command's `/dev`: mount points for the devices, `pts`, `shm`, links.
    pub dev: PathBuf,
    /// Where a command's `/tmp` is put together (a root under the host's `/tmp` bound inside
    /// it) before it is moved over `/tmp`.
    pub stage_tmp: PathBuf,
    /// The same for `/run`, when a root is under the host's `/run`.
    pub stage_run: PathBuf,
    /// The area, open and locked while this process lives.
    _lock: File,
}

/// This process's area, made (and the areas of dead processes removed) on first use; a
/// failure is not kept: the next command tries again.
pub(crate) fn area() -> Result<&'static Area> {
    static AREA: OnceLock<Area> = OnceLock::new();
    static MAKING: Mutex<()> = Mutex::new(());
    if let Some(area) = AREA.get() {
        return Ok(area);
    }
    let _making = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(area) = AREA.get() {
        return Ok(area);
    }
    let area = make_in(&std::env::temp_dir())
        .map_err(|e| sandbox_error("Baton's folder for commands", e))?;
    Ok(AREA.get_or_init(|| area))
}

/// A new area in `parent`, the areas of dead processes there removed first. Made under a new
/// name (`mkdir` fails on one that exists, and another is drawn), then locked.
fn make_in(parent: &Path) -> std::io::Result<Area> {
    use std::os::unix::fs::PermissionsExt as _;
    // Once per process, before its first command: a short-lived process (a CLI call, a test)
    // would not finish a sweep in the background.
    sweep(parent);
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)?
        .keep();
    let lock = open_nofollow(&dir)?;
    lock.try_lock()?;
    let dir = dir.canonicalize()?;
    let [empty, dev, stage_tmp, stage_run] =
        ["empty", "dev", "stage-tmp", "stage-run"].map(|sub| dir.join(sub));
    for sub in [&empty, &dev, &stage_tmp, &stage_run] {
        std::fs::create_dir(sub)?;
    }
    for device in DEVICES {
        File::create(dev.join(device))?;
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
    Ok(Area {
        dir,
        empty,
        dev,
        stage_tmp,
        stage_run,
        _lock: lock,
    })
}

/// Remove the areas of this user whose process is gone: unlocked, and older than [`GRACE`].
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let ours = name.to_str().is_some_and(|name| name.starts_with(PREFIX));
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if !ours || !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let old = meta
            .modified()
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > GRACE);
        // Held until the folder is removed: its process cannot come back, but another sweep
        // must not remove a new area that took the name meanwhile.
        let lock = open_nofollow(&path)
            .ok()
            .filter(|lock| lock.try_lock().is_ok());
        if old
            && lock.is_some()
            && let Err(error) = std::fs::remove_dir_all(&path)
        {
            tracing::debug!(%error, area = %path.display(), "cannot remove a dead process's area");
        }
    }
}

fn open_nofollow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use pretty_assertions::assert_eq;

    use super::*;

    /// An area is removed by a later process once nobody holds its lock and it is older than
    /// the grace; one still locked, one just made (not locked yet), a link and others'
    /// folders are left alone.
    #[test]
    fn areas_of_dead_processes_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let aged = |name: &str| {
            File::open(p.join(name))
                .unwrap()
                .set_modified(std::time::SystemTime::now() - GRACE * 10)
                .unwrap();
        };
        std::fs::create_dir_all(p.join("baton-confine-dead/dev/pts")).unwrap();
        aged("baton-confine-dead");
        std::fs::create_dir(p.join("baton-confine-alive")).unwrap();
        aged("baton-confine-alive");
        let alive = File::open(p.join("baton-confine-alive")).unwrap();
        alive.try_lock().unwrap();
        std::fs::create_dir(p.join("baton-confine-just-made")).unwrap();
        std::fs::create_dir(p.join("someone-else")).unwrap();
        aged("someone-else");
        let kept_outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(kept_outside.path(), p.join("baton-confine-link")).unwrap();

        let made = make_in(p).unwrap();
        let own = made.dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut left: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().to_owned())
            .filter(|name| *name != own)
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "baton-confine-alive",
                "baton-confine-just-made",
                "baton-confine-link",
                "someone-else"
            ]
        );
        assert!(own.starts_with(PREFIX), "{own}");
        let mode = std::fs::metadata(&made.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only this user reads the area");
        assert!(
            File::open(&made.dir).unwrap().try_lock().is_err(),
            "the new area is locked"
        );
        assert!(kept_outside.path().exists());
    }
}
