//! A borrower's side: send store operations to the owner.

use std::path::Path;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

use crate::api::{Request, StoreError, StoreResult};

/// One connection to the owner; operations take turns on it.
pub(crate) struct Client {
    connection: Mutex<(tokio::io::Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf)>,
}

/// The connection to the owner broke: the caller reconnects (or takes the store over).
#[derive(Debug, thiserror::Error)]
#[error("store owner unreachable: {0}")]
pub(crate) struct Lost(String);

impl Client {
    pub(crate) async fn connect(path: &Path) -> std::io::Result<Client> {
        let stream = UnixStream::connect(path).await?;
        let (read, write) = stream.into_split();
        Ok(Client {
            connection: Mutex::new((BufReader::new(read).lines(), write)),
        })
    }

    /// Send `request`; `Err(Lost)` when the owner is gone, else the owner's answer.
    pub(crate) async fn round_trip(&self, request: &Request) -> Result<StoreResult<Value>, Lost> {
        let mut line = serde_json::to_vec(request).map_err(|e| Lost(e.to_string()))?;
        line.push(b'\n');
        let mut connection = self.connection.lock().await;
        let (lines, write) = &mut *connection;
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
        Ok(match answer {
            Answer::Ok(value) => Ok(value),
            Answer::Error(error) => Err(error),
        })
    }
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
