//! The schema, created and migrated by Baton: numbered migrations applied in order, each once,
//! under an advisory lock so two servers starting together do not both apply one. A database
//! whose schema is newer than this binary's is refused: an older binary must not write rows it
//! does not understand.
//!
//! JSON values (runs, steps, approvals, tasks, audit records) are kept as `text`, byte for
//! byte as serialized: an audit record's hash covers its exact bytes, and `jsonb` would
//! reorder them.

use crate::{Result, RunsError};

/// Migration `n` is `MIGRATIONS[n - 1]`. Append only: a migration that shipped never changes.
const MIGRATIONS: &[&str] = &[
    // 1: everything the store keeps.
    r"
    CREATE TABLE baton_audit (
        seq BIGINT PRIMARY KEY,
        line TEXT NOT NULL
    );
    CREATE TABLE baton_audit_head (
        id INT PRIMARY KEY CHECK (id = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO baton_audit_head VALUES
        (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
    CREATE TABLE baton_runs (id TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE baton_journal (
        run_id TEXT NOT NULL REFERENCES baton_runs (id),
        seq BIGINT NOT NULL,
        step TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );
    CREATE TABLE baton_approvals (id TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE baton_tasks (id TEXT PRIMARY KEY, record TEXT NOT NULL);
    CREATE TABLE baton_artifacts (
        sha256 TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        size BIGINT NOT NULL,
        kept_ms BIGINT NOT NULL,
        uploaders TEXT[] NOT NULL DEFAULT '{}',
        bytes BYTEA NOT NULL
    );
    CREATE TABLE baton_uploads (principal TEXT PRIMARY KEY, bytes BIGINT NOT NULL);
    ",
    // 2: an approval's state beside its record, written with it, so the expiry sweep (every
    // server, every second) reads only open approvals. Taken from the text as serialized,
    // not through `jsonb` (which refuses the `\u0000` a caller's arguments may hold).
    r#"
    ALTER TABLE baton_approvals ADD COLUMN state TEXT;
    UPDATE baton_approvals SET state = substring(record from '"state":"([a-z_]+)"');
    ALTER TABLE baton_approvals ALTER COLUMN state SET NOT NULL;
    CREATE INDEX baton_approvals_open ON baton_approvals (state)
        WHERE state IN ('pending', 'approved');
    "#,
    // 3: notices claimed for the webhooks, so servers sharing the store send each one once.
    r"
    CREATE TABLE baton_notices (key TEXT PRIMARY KEY, claimed_ms BIGINT NOT NULL);
    ",
    // 4: the work queue and its workers. `state` is written beside the record, so a claim
    // reads only open items.
    r"
    CREATE TABLE baton_work (
        id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        grp TEXT,
        state TEXT NOT NULL,
        record TEXT NOT NULL
    );
    CREATE INDEX baton_work_open ON baton_work (state) WHERE state IN ('queued', 'leased');
    CREATE INDEX baton_work_group ON baton_work (grp);
    CREATE TABLE baton_workers (name TEXT PRIMARY KEY, record TEXT NOT NULL);
    ",
    // 5: the turn (counting up across claims) in which a worker last claimed an item of each
    // requester, for fair claims.
    r"
    CREATE TABLE baton_work_served (requester TEXT PRIMARY KEY, turn BIGINT NOT NULL);
    ",
];

/// The newest schema this binary knows.
pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;

/// Any number, fixed: the advisory lock migrations take.
const LOCK: i64 = 0x6261_746f_6e00_0001;

/// Bring the database's schema to [`VERSION`], or refuse one that is newer.
pub(crate) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS baton_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = match tx
        .query_opt("SELECT version FROM baton_schema", &[])
        .await?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO baton_schema VALUES (0)", &[])
                .await?;
            0
        }
    };
    if found > VERSION {
        return Err(RunsError::SchemaTooNew {
            found,
            known: VERSION,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(migration).await?;
        tracing::info!(version = index + 1, "store schema migrated");
    }
    tx.execute("UPDATE baton_schema SET version = $1", &[&VERSION])
        .await?;
    tx.commit().await?;
    Ok(())
}
