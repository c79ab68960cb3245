//! The work queue on PostgreSQL: workers on any machine claim rows `FOR UPDATE SKIP LOCKED`,
//! so two claiming at once never get the same item and neither waits for the other; every
//! change that frees or adds work is announced with `NOTIFY`, so idle workers wake at once.
//! What a claim, heartbeat, finish or cancel does to an item is [`crate::work`]'s, as on sled.

use std::collections::HashMap;

use deadpool_postgres::Transaction;

use super::PgStore;
use super::api::{Keyed, by_prefix, decode, notify, text};
use super::audit::{to_i64, to_u64};
use crate::queue::open_without;
use crate::work::{OpenItem, pick};
use crate::{
    Heartbeat, Result, RunsError, WorkDraft, WorkItem, WorkKind, WorkState, WorkerInfo, new_id,
};

async fn put(tx: &Transaction<'_>, item: &WorkItem) -> Result<()> {
    tx.execute(
        "UPDATE baton_work SET record = $2, state = $3 WHERE id = $1",
        &[&item.id, &text("work item", item)?, &item.state.as_str()],
    )
    .await?;
    Ok(())
}

/// The items with these ids that no other transaction holds, locked until `tx` ends.
async fn lock_free(tx: &Transaction<'_>, ids: &[String]) -> Result<Vec<WorkItem>> {
    let rows = tx
        .query(
            "SELECT record FROM baton_work WHERE id = ANY($1) FOR UPDATE SKIP LOCKED",
            &[&ids],
        )
        .await?;
    rows.iter()
        .map(|row| decode("work item", row.get(0)))
        .collect()
}

impl PgStore {
    pub(super) async fn enqueue(
        &self,
        drafts: Vec<WorkDraft>,
        now_ms: u64,
    ) -> Result<Vec<WorkItem>> {
        let items: Vec<WorkItem> = drafts
            .into_iter()
            .map(|draft| WorkItem::new(new_id(), draft, now_ms))
            .collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let insert = tx
            .prepare("INSERT INTO baton_work (id, requester, grp, state, record) VALUES ($1, $2, $3, $4, $5)")
            .await?;
        for item in &items {
            tx.execute(
                &insert,
                &[
                    &item.id,
                    &item.requester,
                    &item.group,
                    &item.state.as_str(),
                    &text("work item", item)?,
                ],
            )
            .await?;
        }
        notify(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(items)
    }

    pub(super) async fn claim(
        &self,
        worker: &str,
        kinds: &[WorkKind],
        max: u32,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<WorkItem>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT record FROM baton_work WHERE state IN ('queued', 'leased')",
                &[],
            )
            .await?;
        let open: Vec<OpenItem> = rows
            .iter()
            .map(|row| {
                let item: WorkItem = decode("work item", row.get(0))?;
                Ok(OpenItem {
                    claimable: item.claimable(kinds, now_ms),
                    running: item.running_at(now_ms),
                    id: item.id,
                    requester: item.requester,
                })
            })
            .collect::<Result<_>>()?;
        let served: HashMap<String, u64> = tx
            .query("SELECT requester, turn FROM baton_work_served", &[])
            .await?
            .iter()
            .map(|row| (row.get(0), to_u64(row.get(1))))
            .collect();
        let mut claimed: Vec<WorkItem> = Vec::new();
        // Ids looked at this round: claimed, given up, or held by another claimant.
        let mut passed: Vec<String> = Vec::new();
        let mut changed = false;
        let mut wanted = max as usize;
        while wanted > 0 {
            // Ask for more than wanted: another worker may hold some of them right now.
            let ids = pick(
                &open_without(&open, &passed),
                &served,
                wanted.saturating_mul(2),
            );
            if ids.is_empty() {
                break;
            }
            let locked = lock_free(&tx, &ids).await?;
            for id in ids {
                if wanted == 0 {
                    break;
                }
                // Not among the locked: another claimant holds it, or took it since the list
                // was read.
                if let Some(item) = locked.iter().find(|item| item.id == id)
                    && item.claimable(kinds, now_ms)
                {
                    let next = item.claimed(worker, lease_ms, now_ms);
                    put(&tx, &next).await?;
                    changed = true;
                    if next.state == WorkState::Leased {
                        wanted -= 1;
                        claimed.push(next);
                    }
                }
                passed.push(id);
            }
        }
        // Rows are locked in requester order, so two claimers cannot deadlock on them.
        let mut turns: Vec<(&str, u64)> = Vec::new();
        let last = served.values().copied().max().unwrap_or(0);
        for (turn, item) in (last + 1..).zip(&claimed) {
            match turns.iter_mut().find(|(who, _)| *who == item.requester) {
                Some(entry) => entry.1 = turn,
                None => turns.push((&item.requester, turn)),
            }
        }
        turns.sort_unstable();
        for (requester, turn) in turns {
            tx.execute(
                "INSERT INTO baton_work_served VALUES ($1, $2)
                 ON CONFLICT (requester) DO UPDATE SET turn = EXCLUDED.turn",
                &[&requester, &to_i64(turn)],
            )
            .await?;
        }
        if changed {
            notify(&tx).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    pub(super) async fn beat(
        &self,
        worker: &WorkerInfo,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Heartbeat> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT record FROM baton_work WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&worker.running],
            )
            .await?;
        let mut beat = Heartbeat::default();
        let mut seen = Vec::new();
        for row in &rows {
            let item: WorkItem = decode("work item", row.get(0))?;
            seen.push(item.id.clone());
            match item.renewed(&worker.name, lease_ms, now_ms) {
                Some(renewed) => {
                    if renewed.cancel_requested {
                        beat.cancel.push(renewed.id.clone());
                    }
                    put(&tx, &renewed).await?;
                }
                None => beat.lost.push(item.id),
            }
        }
        beat.lost.extend(
            worker
                .running
                .iter()
                .filter(|id| !seen.contains(id))
                .cloned(),
        );
        let mut info = worker.clone();
        info.heartbeat_ms = now_ms;
        tx.execute(
            "INSERT INTO baton_workers VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            &[&info.name, &text("worker", &info)?],
        )
        .await?;
        tx.commit().await?;
        Ok(beat)
    }

    pub(super) async fn finish(
        &self,
        id: &str,
        worker: &str,
        state: WorkState,
        result: Option<serde_json::Value>,
        now_ms: u64,
    ) -> Result<WorkItem> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                "SELECT record FROM baton_work WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?
            .ok_or_else(|| RunsError::NotFound {
                what: "work item",
                id: id.to_owned(),
            })?;
        let item: WorkItem = decode("work item", row.get(0))?;
        let item = item.finished(worker, state, result, now_ms)?;
        put(&tx, &item).await?;
        notify(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(item)
    }

    pub(super) async fn cancel(
        &self,
        selector: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<Vec<WorkItem>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT record FROM baton_work WHERE id = $1 OR grp = $1 ORDER BY id FOR UPDATE",
                &[&selector],
            )
            .await?;
        if rows.is_empty() {
            return Err(RunsError::NotFound {
                what: "work item or group",
                id: selector.to_owned(),
            });
        }
        let mut changed = Vec::new();
        for row in &rows {
            let item: WorkItem = decode("work item", row.get(0))?;
            if let Some(next) = item.cancelled(by, now_ms) {
                put(&tx, &next).await?;
                changed.push(next);
            }
        }
        notify(&tx).await?;
        tx.commit().await?;
        self.changed();
        Ok(changed)
    }

    pub(super) async fn item(&self, id: &str) -> Result<WorkItem> {
        let client = self.client().await?;
        let (_, record) = by_prefix(&client, Keyed::Work, id).await?;
        decode("work item", &record)
    }

    pub(super) async fn items(&self, group: Option<&str>) -> Result<Vec<WorkItem>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT record FROM baton_work WHERE $1::TEXT IS NULL OR grp = $1 ORDER BY id",
                &[&group],
            )
            .await?;
        rows.iter()
            .map(|row| decode("work item", row.get(0)))
            .collect()
    }

    pub(super) async fn worker_list(&self) -> Result<Vec<WorkerInfo>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT record FROM baton_workers ORDER BY name", &[])
            .await?;
        rows.iter()
            .map(|row| decode("worker", row.get(0)))
            .collect()
    }
}
