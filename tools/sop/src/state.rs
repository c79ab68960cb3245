//! `tasks/index.json`: read without a lock (writes are atomic renames), changed only under
//! an exclusive lock with a fresh read inside it, never overwritten when it does not validate.

use std::path::{Path, PathBuf};

use crate::fsx::{lock, write_atomic};
use crate::model::Index;
use crate::{Repo, Result, SopError};

/// The index, relative to the state home.
pub const INDEX: &str = "tasks/index.json";
const LOCK: &str = "tasks/.index.lock";

impl Repo {
    /// The index as it is now (an empty one if the repository has none yet). Reading never
    /// writes: a corrupt index is refused and left where it is (read tools run under the
    /// read-only sandbox, anywhere `repo` points); a write tool's [`Repo::update`] sets it
    /// aside.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.state(INDEX);
        match load(&path)? {
            Loaded::Valid(index) => Ok(index),
            Loaded::Missing => {
                refuse_after_corruption(&path)?;
                Ok(Index::default())
            }
            Loaded::Invalid(detail) => Err(SopError::Corrupt {
                file: path,
                detail: format!(
                    "{detail}. Nothing was changed: repair it (the next write through the SOP \
                     moves it aside and starts over)"
                ),
            }),
        }
    }

    /// Re-render `tasks/tasks-<feature>.md` from `index` (called under the index lock, so the
    /// list matches the index written with it); the list's path under the state home.
    pub(crate) fn write_task_list(&self, index: &Index, feature: &str) -> Result<String> {
        let list = format!("tasks/tasks-{feature}.md");
        write_atomic(
            self.files()?,
            &self.state(&list),
            crate::render::tasks(index, feature).as_bytes(),
        )?;
        Ok(list)
    }

    /// Change the index: lock, read it afresh, apply `change`, validate, replace atomically.
    /// `change` runs under the lock, so files it writes beside the index stay consistent
    /// with it; when it fails, nothing is written.
    pub fn update<T>(&self, change: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let path = self.state(INDEX);
        let _guard = lock(self.files()?, &self.state(LOCK))?;
        let mut index = match load(&path)? {
            Loaded::Valid(index) => index,
            Loaded::Missing => {
                refuse_after_corruption(&path)?;
                Index::default()
            }
            Loaded::Invalid(detail) => return Err(set_aside(&path, &detail)),
        };
        let result = change(&mut index)?;
        index.validate().map_err(|detail| SopError::Corrupt {
            file: path.clone(),
            detail: format!("the change would make it invalid ({detail}); nothing was written"),
        })?;
        let mut bytes = serde_json::to_vec_pretty(&index).map_err(|e| SopError::Corrupt {
            file: path.clone(),
            detail: format!("does not serialize: {e}"),
        })?;
        bytes.push(b'\n');
        write_atomic(self.files()?, &path, &bytes)?;
        Ok(result)
    }
}

enum Loaded {
    Valid(Index),
    Missing,
    Invalid(String),
}

fn load(path: &Path) -> Result<Loaded> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(source) => {
            return Err(SopError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let index: Index = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(index) => index,
        Err(error) => {
            let at = error.path().to_string();
            return Ok(Loaded::Invalid(format!(
                "at `{at}`: {}",
                error.into_inner()
            )));
        }
    };
    Ok(match index.validate() {
        Ok(()) => Loaded::Valid(index),
        Err(detail) => Loaded::Invalid(detail),
    })
}

/// Move the bad file aside (never overwrite it) and say so.
fn set_aside(path: &Path, detail: &str) -> SopError {
    let aside = corrupt_name(path);
    let moved = match std::fs::rename(path, &aside) {
        Ok(()) => format!("it was moved to `{}`", aside.display()),
        Err(error) => format!("it could not be moved aside ({error}) and was left as it is"),
    };
    tracing::error!(file = %path.display(), %detail, %moved, "SOP index refused");
    SopError::Corrupt {
        file: path.to_owned(),
        detail: format!(
            "{detail}; {moved}. Nothing was changed: repair it and move it back (or delete the copy to start over)"
        ),
    }
}

fn corrupt_name(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().as_millisecond();
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{stamp}"));
    PathBuf::from(name)
}

/// With no index but a copy set aside as corrupt, starting over would silently lose every
/// task: refuse until someone repairs or deletes the copy.
fn refuse_after_corruption(path: &Path) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let prefix = format!("{}.corrupt-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            return Err(SopError::Corrupt {
                file: path.to_owned(),
                detail: format!(
                    "it is missing and `{}` holds a copy set aside as corrupt; repair it and move it back, or delete the copy to start over",
                    entry.path().display()
                ),
            });
        }
    }
    Ok(())
}
