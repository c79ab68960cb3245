use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::{client, service};
use crate::api::{Request, StoreError, StoreResult};
use crate::{RunsError, Store, StoreOptions};

/// How long an operation waits for the store before giving up.
pub const WAIT: Duration = Duration::from_secs(30);

/// Whether this process may become the owner that serves the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// A server: owns the store if nobody does, and serves it to others.
    Serve,
    /// A short-lived command: uses the owner if there is one, else opens the store itself
    /// without serving it.
    Borrow,
}

enum Backend {
    Local {
        store: Store,
        _service: Option<service::Service>,
    },
    Remote(client::Client),
    /// The store on PostgreSQL: every process connects to the database itself.
    Postgres(crate::PgStore),
}

/// A backend this process calls directly rather than over the owner's socket.
pub(crate) enum Direct {
    /// The sled store, opened here.
    Sled(Store),
    /// The PostgreSQL store.
    Postgres(crate::PgStore),
}

/// The store, local or through its owner.
#[derive(Clone)]
pub struct StoreHandle {
    data_dir: PathBuf,
    ownership: Ownership,
    options: StoreOptions,
    backend: Arc<RwLock<Option<Arc<Backend>>>>,
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("data_dir", &self.data_dir)
            .field("ownership", &self.ownership)
            .finish()
    }
}

fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("baton.sock")
}

impl StoreHandle {
    /// A handle on the store in `data_dir`; nothing is opened until the first operation.
    pub fn new(data_dir: PathBuf, ownership: Ownership) -> StoreHandle {
        StoreHandle {
            data_dir,
            ownership,
            options: StoreOptions::default(),
            backend: Arc::new(RwLock::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The data folder this handle's store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Open the store, when this process opens it, with `options` (checkpoint signing).
    pub fn with_options(mut self, options: StoreOptions) -> StoreHandle {
        self.options = options;
        self
    }

    /// Open (or reach) the store now rather than on first use.
    pub async fn connect(&self) -> StoreResult<()> {
        self.backend().await.map(drop)
    }

    /// Where the store is, for people: the data folder's store, or the PostgreSQL database
    /// (never its password).
    pub fn location(&self) -> String {
        match &self.options.url {
            Some(url) => crate::postgres::redact_url(url),
            None => self.data_dir.join("store").display().to_string(),
        }
    }

    /// Whether this process owns the store.
    pub fn is_owner(&self) -> bool {
        self.current()
            .is_some_and(|backend| matches!(*backend, Backend::Local { .. }))
    }

    fn current(&self) -> Option<Arc<Backend>> {
        self.backend.read().ok().and_then(|slot| slot.clone())
    }

    async fn backend(&self) -> StoreResult<Arc<Backend>> {
        if let Some(backend) = self.current() {
            return Ok(backend);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(backend) = self.current() {
            return Ok(backend);
        }
        let backend = Arc::new(self.establish().await?);
        if let Ok(mut slot) = self.backend.write() {
            *slot = Some(backend.clone());
        }
        Ok(backend)
    }

    /// Reach the owner, or become it, waiting with back-off while another process holds the
    /// store without serving it.
    async fn establish(&self) -> StoreResult<Backend> {
        if let Some(url) = &self.options.url {
            let store = crate::PgStore::connect(url, &self.options).await?;
            if self.ownership == Ownership::Serve
                && let Some(problem) = store.audit_refusal()
            {
                return Err(RunsError::AuditRefused(Box::new(problem)).into());
            }
            return Ok(Backend::Postgres(store));
        }
        let socket = socket_path(&self.data_dir);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut delay = Duration::from_millis(5);
        loop {
            if let Ok(client) = client::Client::connect(&socket).await {
                tracing::debug!(socket = %socket.display(), "using the store's owner");
                return Ok(Backend::Remote(client));
            }
            let data_dir = self.data_dir.clone();
            let options = self.options.clone();
            let opened = tokio::task::spawn_blocking(move || Store::open_with(&data_dir, options))
                .await
                .map_err(|e| StoreError::storage(format!("opening the store: {e}")))?;
            match opened {
                Ok(store) => {
                    // A server never starts on an audit log that would refuse its records.
                    if self.ownership == Ownership::Serve
                        && let Some(problem) = store.audit_refusal()
                    {
                        return Err(RunsError::AuditRefused(Box::new(problem)).into());
                    }
                    let service = match self.ownership {
                        Ownership::Serve => Some(service::Service::start(store.clone(), &socket)?),
                        Ownership::Borrow => None,
                    };
                    return Ok(Backend::Local {
                        store,
                        _service: service,
                    });
                }
                Err(RunsError::Locked(_)) => {}
                Err(error) => return Err(error.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::busy(format!(
                    "the store in `{}` has been held by another process for {} s without being served; is a `baton` command stuck?",
                    self.data_dir.display(),
                    WAIT.as_secs()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// The store itself, when this process calls it directly.
    pub(crate) async fn direct(&self) -> StoreResult<Option<Direct>> {
        Ok(match &*self.backend().await? {
            Backend::Local { store, .. } => Some(Direct::Sled(store.clone())),
            Backend::Postgres(store) => Some(Direct::Postgres(store.clone())),
            Backend::Remote(_) => None,
        })
    }

    /// Hand `request` to the owner. A lost owner is replaced once, transparently — by a new
    /// owner, or by this process opening the store itself.
    pub(crate) async fn remote(&self, request: Request) -> StoreResult<Value> {
        for attempt in 0..2 {
            let backend = self.backend().await?;
            match &*backend {
                Backend::Local { store, .. } => return request.apply(store).await,
                Backend::Postgres(store) => return request.apply(store).await,
                Backend::Remote(client) => match client.round_trip(&request).await {
                    Ok(answer) => return answer,
                    Err(lost) if attempt == 0 => {
                        tracing::info!(%lost, "lost the store's owner; reconnecting");
                        self.forget(&backend);
                    }
                    Err(lost) => return Err(StoreError::busy(lost.to_string())),
                },
            }
        }
        Err(StoreError::busy("the store's owner keeps going away"))
    }

    fn forget(&self, failed: &Arc<Backend>) {
        if let Ok(mut slot) = self.backend.write()
            && slot.as_ref().is_some_and(|b| Arc::ptr_eq(b, failed))
        {
            *slot = None;
        }
    }
}
