//! Baton's folder for confined commands, one area per process under the temp folder: the
//! skeleton of a command's `/dev`, an empty folder to cover with, and the two folders on which
//! a command's own `/tmp` and `/run` are put together before they are moved into place.
//!
//! Nothing of a command's is ever written here: its `/tmp` and `/dev/shm` are file systems of
//! its own (tmpfs), made in its mount namespace and gone with it. An area outlives its process
//! (statics are never dropped), so each one holds a lock for its process's life, and the first
//! command of a later process removes the areas whose lock nobody holds.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::sandbox_error;
use crate::Result;

/// The host's devices a command gets in its own `/dev` (under `/dev`).
pub(crate) const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The start of an area's name in the temp folder.
const PREFIX: &str = "baton-confine-";

/// The lock file in an area, held by its process.
const LOCK: &str = ".lock";

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
    /// Holds the lock while this process lives.
    _lock: File,
}

/// This process's area, made (and the areas of dead processes removed) on first use.
pub(crate) fn area() -> Result<&'static Area> {
    static AREA: OnceLock<std::result::Result<Area, String>> = OnceLock::new();
    AREA.get_or_init(|| make_in(&std::env::temp_dir()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| sandbox_error("Baton's folder for commands", e))
}

/// A new area in `parent`, the areas of dead processes there removed first. It is made under a
/// name the sweep ignores, locked, then renamed: a sweep never sees it unlocked.
fn make_in(parent: &Path) -> std::io::Result<Area> {
    use std::os::unix::fs::PermissionsExt as _;
    // Once per process, before its first command: a short-lived process (a CLI call, a test)
    // would not finish a sweep in the background.
    sweep(parent);
    let dir = tempfile::Builder::new()
        .prefix(&format!(".{PREFIX}"))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)?
        .keep();
    let lock = File::create(dir.join(LOCK))?;
    lock.try_lock()?;
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|name| name.strip_prefix('.'))
        .unwrap_or(PREFIX)
        .to_owned();
    let final_dir = dir.with_file_name(name);
    std::fs::rename(&dir, &final_dir)?;
    let dir = final_dir.canonicalize()?;
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

/// Remove the areas of this user whose process is gone (their lock is free), and those left
/// without a lock by a process that died making one (older than a minute).
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
        let gone = match open_nofollow(&path.join(LOCK)) {
            Ok(lock) => lock.try_lock().is_ok(),
            Err(_) => meta
                .modified()
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(60)),
        };
        if gone && let Err(error) = std::fs::remove_dir_all(&path) {
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

    /// Every path under `dir`, relative, sorted, a `/` after folders.
    fn tree(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().display().to_string();
            if path.symlink_metadata().unwrap().is_dir() {
                found.push(format!("{name}/"));
                found.extend(tree(&path).into_iter().map(|sub| format!("{name}/{sub}")));
            } else {
                found.push(name);
            }
        }
        found.sort();
        found
    }

    /// An area is removed by a later process once the lock of the process that made it is
    /// free; one still locked, one being made (no lock yet, fresh), a link and others' folders
    /// are left alone.
    #[test]
    fn areas_of_dead_processes_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let p = parent.path();
        let area = |name: &str| {
            std::fs::create_dir(p.join(name)).unwrap();
            File::create(p.join(name).join(LOCK)).unwrap()
        };
        drop(area("baton-confine-dead"));
        let alive = area("baton-confine-alive");
        alive.try_lock().unwrap();
        std::fs::create_dir(p.join("baton-confine-being-made")).unwrap();
        std::fs::create_dir(p.join("baton-confine-crashed")).unwrap();
        File::open(p.join("baton-confine-crashed"))
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(600))
            .unwrap();
        std::fs::create_dir(p.join("someone-else")).unwrap();
        let kept_outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(kept_outside.path(), p.join("baton-confine-link")).unwrap();
        std::fs::create_dir_all(p.join("baton-confine-dead/dev/pts")).unwrap();

        let made = make_in(p).unwrap();
        let mut left: Vec<String> = tree(p)
            .into_iter()
            .filter(|path| {
                !path.contains('/') || path.ends_with('/') && path.matches('/').count() == 1
            })
            .collect();
        let own = format!("{}/", made.dir.file_name().unwrap().to_str().unwrap());
        left.retain(|path| *path != own);
        assert_eq!(
            left,
            [
                "baton-confine-alive/",
                "baton-confine-being-made/",
                "baton-confine-link",
                "someone-else/"
            ]
        );
        assert!(own.starts_with(PREFIX), "{own}");
        let mode = std::fs::metadata(&made.dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only this user reads the area");
        assert!(kept_outside.path().exists());
    }
}
