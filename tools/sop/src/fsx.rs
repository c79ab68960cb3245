//! Durable file writes: atomic replacement and append-only sections.

use std::io::Write as _;
use std::path::Path;

use crate::{Result, SopError};

/// Replace `path` with `bytes` atomically: a temporary file beside it, fsynced, renamed over
/// it, and the directory fsynced, so a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| SopError::invalid("path", format!("`{}` has no folder", path.display())))?;
    std::fs::create_dir_all(dir).map_err(SopError::io(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        ulid::Ulid::new()
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(SopError::Io { path: temp, source });
    }
    std::fs::rename(&temp, path).map_err(SopError::io(path))?;
    sync_dir(dir)
}

/// Append `text` to `path` (created if missing) and fsync it. Earlier bytes are never touched.
pub fn append(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(SopError::io(dir))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(SopError::io(path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(SopError::io(path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(SopError::io(dir))
}

/// Hold an exclusive advisory lock on `path` (created if missing) until the guard drops.
/// `flock` locks exclude other processes and other open files in this one alike.
pub fn lock(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(SopError::io(dir))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(SopError::io(path))?;
    file.lock().map_err(SopError::io(path))?;
    Ok(file)
}
