//! [`crate::StoreApi::stats`] on PostgreSQL: counted by the database, one snapshot.

use std::collections::BTreeMap;

use super::PgStore;
use crate::{Approval, ApprovalState, Result, StoreStats};

impl PgStore {
    pub(super) async fn stats_now(&self) -> Result<StoreStats> {
        let mut client = self.client().await?;
        let tx = super::snapshot(&mut client).await?;
        // The state is read from the record's text, as migration 2 reads an approval's.
        let rows = tx
            .query(
                r#"SELECT substring(record from '"state":"([a-z_]+)"'), count(*)
                   FROM baton_runs GROUP BY 1"#,
                &[],
            )
            .await?;
        let mut runs = BTreeMap::new();
        for row in rows {
            let state: Option<String> = row.get(0);
            let count: i64 = row.get(1);
            runs.insert(
                state.unwrap_or_else(|| "unknown".to_owned()),
                count.max(0) as u64,
            );
        }
        let now = crate::now_millis();
        let mut pending = Vec::new();
        for row in tx
            .query(
                "SELECT record FROM baton_approvals WHERE state = 'pending'",
                &[],
            )
            .await?
        {
            let approval: Approval = super::api::decode("approval", row.get(0))?;
            if approval.state_at(now) == ApprovalState::Pending {
                pending.push(approval.created_ms);
            }
        }
        let size: i64 = tx
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind = 'r' AND c.relname LIKE 'baton\\_%'
                   AND n.nspname = current_schema()",
                &[],
            )
            .await?
            .get(0);
        let head: i64 = tx
            .query_one("SELECT seq FROM baton_audit_head WHERE id = 1", &[])
            .await?
            .get(0);
        tx.commit().await?;
        let (audit_batch_records, audit_sync_seconds) = self.inner.audit.stats.snapshot();
        Ok(StoreStats {
            backend: "postgres".to_owned(),
            size_bytes: size.max(0) as u64,
            runs,
            approvals_pending: pending.len() as u64,
            oldest_pending_ms: pending.iter().min().copied(),
            audit_head: head.max(0) as u64,
            audit_batch_records,
            audit_sync_seconds,
        })
    }
}
