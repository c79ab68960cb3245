//! Durable file writes: atomic replacement and append-only sections, through a [`Confined`]
//! handle, so that no symlink is followed on the way to any file the SOP writes.

use std::io::Write as _;
use std::path::Path;

use baton_kit::{ConfineError, Confined};

use crate::{Result, SopError};

fn refused(path: &Path) -> impl Fn(ConfineError) -> SopError + '_ {
    move |error| match error {
        ConfineError::Io { path, source } => SopError::Io { path, source },
        other => SopError::PathRefused {
            path: path.display().to_string(),
            reason: other.to_string(),
        },
    }
}

/// Replace `path` with `bytes` atomically: a temporary file beside it, fsynced, renamed over
/// it, so a reader sees the old file or the new one, never half. Folders are created.
pub fn write_atomic(files: &Confined, path: &Path, bytes: &[u8]) -> Result<()> {
    files.write(path, bytes).map_err(refused(path))
}

/// Append `text` to `path` (created if missing) and fsync it. Earlier bytes are never touched.
pub fn append(files: &Confined, path: &Path, text: &str) -> Result<()> {
    let mut file = files.append(path).map_err(refused(path))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(SopError::io(path))
}

/// Hold an exclusive advisory lock on `path` (created if missing) until the guard drops.
/// `flock` locks exclude other processes and other open files in this one alike.
pub fn lock(files: &Confined, path: &Path) -> Result<std::fs::File> {
    let file = files
        .open_writable(path, rustix::fs::OFlags::WRONLY)
        .map_err(refused(path))?;
    file.lock().map_err(SopError::io(path))?;
    Ok(file)
}
