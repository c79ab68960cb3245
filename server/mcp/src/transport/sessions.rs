//! A bound on live MCP sessions over HTTP: rmcp's session manager keeps every session until it
//! is closed or idle for its keep-alive, so a client sending `initialize` in a loop would grow
//! the server without limit. Past the cap, the session idle longest is closed to make room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use futures::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::{ServerSseMessage, SessionId};
use rmcp::transport::streamable_http_server::{RestoreOutcome, SessionManager};

type Inner = LocalSessionManager;

/// rmcp's local session manager, holding at most `max` sessions.
#[derive(Debug)]
pub struct BoundedSessions {
    inner: Inner,
    max: usize,
    /// When each live session was last used.
    used: Mutex<HashMap<SessionId, Instant>>,
}

impl BoundedSessions {
    /// At most `max` sessions of `inner`.
    pub fn new(inner: Inner, max: usize) -> BoundedSessions {
        BoundedSessions {
            inner,
            max,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn touch(&self, id: &SessionId) {
        if let Ok(mut used) = self.used.lock() {
            used.insert(id.clone(), Instant::now());
        }
    }

    /// Forget sessions rmcp has ended (idle past their keep-alive), then close those idle
    /// longest until one more fits.
    async fn make_room(&self) {
        let live: Vec<SessionId> = self.inner.sessions.read().await.keys().cloned().collect();
        let evict: Vec<SessionId> = match self.used.lock() {
            Ok(mut used) => {
                used.retain(|id, _| live.contains(id));
                let mut by_age: Vec<(Instant, SessionId)> =
                    used.iter().map(|(id, at)| (*at, id.clone())).collect();
                by_age.sort();
                let over = (live.len() + 1).saturating_sub(self.max);
                by_age.into_iter().take(over).map(|(_, id)| id).collect()
            }
            Err(_) => Vec::new(),
        };
        for id in evict {
            tracing::warn!(
                session = %id,
                max = self.max,
                "closing the session idle longest: the server holds its maximum of sessions (http.max_sessions)"
            );
            let _ = self.inner.close_session(&id).await;
            if let Ok(mut used) = self.used.lock() {
                used.remove(&id);
            }
        }
    }
}

impl SessionManager for BoundedSessions {
    type Error = <Inner as SessionManager>::Error;
    type Transport = <Inner as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.make_room().await;
        let (id, transport) = self.inner.create_session().await?;
        self.touch(&id);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.touch(id);
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if let Ok(mut used) = self.used.lock() {
            used.remove(id);
        }
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touch(id);
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }
}
