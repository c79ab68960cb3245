//! The owner's side: serve the store on a Unix socket.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::client::Answer;
use crate::Store;
use crate::api::{StoreError, StoreResult};

/// The requests this process's store services have read and not yet answered, and the
/// signal to read no more: a client whose request was applied must get its answer, or it
/// retries it against the next owner (an approval rejected twice: "already rejected").
static TAKEN: LazyLock<(TaskTracker, CancellationToken)> =
    LazyLock::new(|| (TaskTracker::new(), CancellationToken::new()));

/// Before this process exits: take no more requests from other `baton` processes and answer
/// those already taken, waiting up to `limit`. Whether every one was answered.
pub async fn answer_taken(limit: Duration) -> bool {
    let (taken, stop) = &*TAKEN;
    stop.cancel();
    taken.close();
    tokio::time::timeout(limit, taken.wait()).await.is_ok()
}

/// Cancelled once this process is exiting (see [`answer_taken`]): a `changes` wait ends then
/// rather than hold the exit up.
pub(crate) fn stopping() -> &'static CancellationToken {
    &TAKEN.1
}

/// The running socket service; dropping it stops serving and removes the socket.
pub(crate) struct Service {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Service {
    /// Serve `store` at `path`. The caller holds the store's lock, so a file already there is
    /// a previous owner's leftover.
    pub(crate) fn start(store: Store, path: &Path) -> StoreResult<Service> {
        let failed = |e: std::io::Error| {
            StoreError::storage(format!(
                "cannot serve the store at `{}`: {e}",
                path.display()
            ))
        };
        if path.exists() {
            std::fs::remove_file(path).map_err(failed)?;
        }
        let listener = UnixListener::bind(path).map_err(failed)?;
        // The socket hands out the whole store: only this user may connect.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        tracing::info!(socket = %path.display(), "serving the store to other baton processes");
        let socket = path.to_owned();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    biased;
                    () = stopping().cancelled() => {
                        // Exiting: the socket goes now, so a client turns to the store itself
                        // (and waits for its lock) instead of reaching a server that answers
                        // nothing more.
                        drop(listener);
                        let _ = std::fs::remove_file(&socket);
                        return;
                    }
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(store.clone(), stream));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "store socket accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Ok(Service {
            path: path.to_owned(),
            task,
        })
    }
}

async fn serve_connection(store: Store, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let (taken, stop) = &*TAKEN;
    loop {
        // Held from before the read, so an exit that begins as a line arrives still waits for
        // its answer; an idle connection lets go as soon as the exit begins.
        let _taken = taken.token();
        // A request not read is not applied: the client may send it to the next owner.
        let line = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            line = lines.next_line() => line,
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "store client went away");
                return;
            }
        };
        let answer = match crate::local::answer(&store, &line).await {
            Ok(value) => Answer::Ok(value),
            Err(error) => Answer::Error(error),
        };
        let Ok(mut bytes) = serde_json::to_vec(&answer) else {
            return;
        };
        bytes.push(b'\n');
        if write.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
