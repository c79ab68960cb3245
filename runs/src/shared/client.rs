//! A borrower's side: send store operations to the owner.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::api::{Request, StoreError, StoreResult};

type Connection = (tokio::io::Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf);

/// Connections to the owner: an operation takes an idle one (or opens one) and gives it back
/// when answered, so a long wait (`changes`) never holds up the process's other operations.
pub(crate) struct Client {
    path: PathBuf,
    idle: std::sync::Mutex<Vec<Connection>>,
}

/// Idle connections kept for reuse; more are closed when returned.
const KEEP_IDLE: usize = 8;

/// The connection to the owner broke: the caller reconnects (or takes the store over).
#[derive(Debug, thiserror::Error)]
#[error("store owner unreachable: {0}")]
pub(crate) struct Lost(String);

impl Client {
    pub(crate) async fn connect(path: &Path) -> std::io::Result<Client> {
        let first = open(path).await?;
        Ok(Client {
            path: path.to_owned(),
            idle: std::sync::Mutex::new(vec![first]),
        })
    }

    fn take_idle(&self) -> Option<Connection> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP_IDLE
        {
            idle.push(connection);
        }
    }

    /// Send `request`; `Err(Lost)` when the owner is gone, else the owner's answer.
    pub(crate) async fn round_trip(&self, request: &Request) -> Result<StoreResult<Value>, Lost> {
        let mut line = serde_json::to_vec(request).map_err(|e| Lost(e.to_string()))?;
        line.push(b'\n');
        let mut connection = match self.take_idle() {
            Some(connection) => connection,
            None => open(&self.path).await.map_err(|e| Lost(e.to_string()))?,
        };
        let (lines, write) = &mut connection;
        write
            .write_all(&line)
            .await
            .map_err(|e| Lost(e.to_string()))?;
        let answer = lines
            .next_line()
            .await
            .map_err(|e| Lost(e.to_string()))?
            .ok_or_else(|| Lost("the owner closed the connection".into()))?;
        let answer: Answer =
            serde_json::from_str(&answer).map_err(|e| Lost(format!("garbled answer: {e}")))?;
        self.give_back(connection);
        Ok(match answer {
            Answer::Ok(value) => Ok(value),
            Answer::Error(error) => Err(error),
        })
    }
}

async fn open(path: &Path) -> std::io::Result<Connection> {
    let stream = UnixStream::connect(path).await?;
    let (read, write) = stream.into_split();
    Ok((BufReader::new(read).lines(), write))
}

/// One answer line: `{"ok": …}` or `{"error": {"kind": …, "message": …}}`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Answer {
    /// The operation's result.
    Ok(Value),
    /// Why it failed.
    Error(StoreError),
}
