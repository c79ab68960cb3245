//! The store on PostgreSQL: what a team runs when several Baton processes, on any machines,
//! share one gate state. Every operation of [`StoreApi`](crate::StoreApi) is a statement or a
//! short transaction on a pooled connection; the rules (approval transitions, how a record is
//! linked and hashed, how the chain is checked) are the ones the sled backend uses.
//!
//! The key design choice: one audit chain, many writers, without a coordinator. Each process
//! group-commits its waiting records as one transaction that locks the chain's head row, links
//! and inserts the records, moves the head and commits — so the chain stays one line whatever
//! the number of writers, and a caller is answered only once its record is committed. Changes
//! to approvals and runs are announced with `NOTIFY`, so a waiter on one server wakes when a
//! reviewer decides on another.

mod api;
mod audit;
mod copy;
mod listen;
mod schema;
mod stats;
mod work;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::{Host, SslMode};

pub use copy::CopyReport;

use crate::{Result, RunsError, StoreOptions};

/// The channel that carries "approvals or runs changed" between processes.
const CHANNEL: &str = "baton_changes";
/// Connections a process keeps at most.
const POOL_SIZE: usize = 16;

/// The store in a PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Where the database is (no password), for messages.
    target: String,
    audit: audit::PgAudit,
    /// Bumped on every change to approvals and runs seen here or announced by another process.
    changes: tokio::sync::watch::Sender<u64>,
    max_artifact_bytes: u64,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.inner.target)
            .finish()
    }
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user@host:port/db`, or key=value form),
    /// create or migrate its schema, and start the audit writer and the change listener. A
    /// damaged chain head does not fail the connect — `verify_audit` must still name it — but
    /// the log refuses records (see [`PgStore::audit_refusal`]).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<PgStore> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|error| RunsError::StoreUrl {
                url: redact_url(url),
                reason: format!("not a PostgreSQL connection string ({error})"),
            })?;
        match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => {}
            _ => {
                return Err(RunsError::StoreUrl {
                    url: redact_url(url),
                    reason: "this build connects without TLS: use `sslmode=disable` over a private network or a Unix socket".into(),
                });
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // A database that vanishes without a reset (a failover, a partition) is noticed in
        // seconds, not after the kernel's two hours: the listener and the audit writer wait on
        // these connections.
        config.keepalives(true);
        if config.get_keepalives_idle() > Duration::from_secs(10) {
            config.keepalives_idle(Duration::from_secs(10));
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(20));
        }
        if config.get_application_name().is_none() {
            config.application_name("baton");
        }
        let target = describe_target(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(crate::WAIT))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|error| RunsError::StoreUrl {
                url: redact_url(url),
                reason: format!("no connection pool ({error})"),
            })?;
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        let refusal = audit::check_head(&client).await?;
        drop(client);
        if let Some(problem) = &refusal {
            tracing::error!(%problem, target, "the audit log refuses new records until an operator recovers it");
        }
        let changes = tokio::sync::watch::Sender::new(crate::now_millis());
        let listener = tokio::spawn(listen::listen(config, changes.clone()));
        let audit = audit::PgAudit::start(pool.clone(), options.checkpoints.clone(), refusal);
        let max_artifact_bytes = match options.max_artifact_bytes {
            0 => crate::audit::DEFAULT_MAX_ARTIFACT_BYTES,
            limit => limit,
        };
        tracing::debug!(target, "store on PostgreSQL");
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                target,
                audit,
                changes,
                max_artifact_bytes,
                listener,
            }),
        })
    }

    /// `url` without its password, for messages.
    pub fn redacted(url: &str) -> String {
        redact_url(url)
    }

    /// Where the database is (host, port, database; never the password).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Why the audit log refuses new records (found at connect), if it does.
    pub fn audit_refusal(&self) -> Option<crate::Problem> {
        self.inner.audit.refusal()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Tell this process's waiters at once (other processes hear the `NOTIFY`).
    fn changed(&self) {
        self.inner
            .changes
            .send_modify(|generation| *generation += 1);
    }
}

/// `url` without its passwords — in the user information (`user:secret@`) or as a parameter
/// (`?password=secret`, `password=secret` in the key=value form) — for messages.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let (Some(scheme), Some(at)) = (out.find("://"), out.rfind('@'))
        && at > scheme
        && let Some(colon) = out[scheme + 3..at].find(':')
    {
        out.replace_range(scheme + 3 + colon + 1..at, "***");
    }
    let mut from = 0;
    while let Some(found) = out[from..].to_ascii_lowercase().find("password") {
        let start = from + found + "password".len();
        let value = out[start..].trim_start_matches([' ', '=']);
        let value_at = out.len() - value.len();
        if value_at == start || !out[start..value_at].contains('=') {
            from = start;
            continue;
        }
        let end = out[value_at..]
            .find(['&', ' '])
            .map_or(out.len(), |n| value_at + n);
        out.replace_range(value_at..end, "***");
        from = value_at + 3;
    }
    out
}

fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{database}")
}

/// A PostgreSQL error in words: the server's message and code when it sent one, else what
/// failed on the way (connection refused, closed).
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// [`describe`] for the pool's errors.
pub(crate) fn describe_pool(error: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match error {
        PoolError::Backend(error) => format!("cannot connect: {}", describe(error)),
        PoolError::Timeout(_) => "timed out waiting for a database connection".into(),
        other => other.to_string(),
    }
}

/// A read-only transaction on one snapshot: what it reads is the database at one moment,
/// whatever other processes commit meanwhile.
async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> std::result::Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}
