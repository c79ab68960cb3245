//! The work queue on sled: one machine's workers, served by the process that owns the store.
//! A mutex makes each claim, heartbeat, finish and cancel one step; the decisions are
//! [`crate::work`]'s, shared with PostgreSQL.

use std::collections::HashMap;

use crate::error::{corrupt, encode};
use crate::store::by_prefix;
use crate::work::{OpenItem, pick};
use crate::{
    Heartbeat, Result, RunsError, Store, WorkDraft, WorkItem, WorkKind, WorkState, WorkerInfo,
    new_id,
};

impl Store {
    fn put_work(&self, item: &WorkItem) -> Result<()> {
        let bytes = serde_json::to_vec(item).map_err(|e| encode("work item", e))?;
        self.inner.work.insert(item.id.as_bytes(), bytes)?;
        Ok(())
    }

    fn all_work(&self) -> Result<Vec<WorkItem>> {
        self.inner
            .work
            .iter()
            .map(|entry| {
                let (_, bytes) = entry?;
                serde_json::from_slice(&bytes).map_err(|e| corrupt("work item", e))
            })
            .collect()
    }

    fn locked_queue(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.inner.queue_lock.lock().map_err(|_| RunsError::Closed)
    }

    /// The turn in which a worker last claimed an item of each requester.
    fn served(&self) -> Result<HashMap<String, u64>> {
        self.inner
            .served
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let at = <[u8; 8]>::try_from(value.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("work served turn", "not 8 bytes"))?;
                Ok((String::from_utf8_lossy(&key).into_owned(), at))
            })
            .collect()
    }

    /// Queue `drafts`; the items, in order.
    pub fn enqueue_work(&self, drafts: Vec<WorkDraft>, now_ms: u64) -> Result<Vec<WorkItem>> {
        let items: Vec<WorkItem> = drafts
            .into_iter()
            .map(|draft| WorkItem::new(new_id(), draft, now_ms))
            .collect();
        for item in &items {
            self.put_work(item)?;
        }
        self.inner.work.flush()?;
        self.changed();
        Ok(items)
    }

    /// Claim up to `max` items of `kinds` for `worker`, leased for `lease_ms`.
    pub fn claim_work(
        &self,
        worker: &str,
        kinds: &[WorkKind],
        max: u32,
        lease_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<WorkItem>> {
        let _guard = self.locked_queue()?;
        let all = self.all_work()?;
        let open: Vec<OpenItem> = all
            .iter()
            .filter(|item| !item.state.is_final())
            .map(|item| OpenItem {
                id: item.id.clone(),
                requester: item.requester.clone(),
                claimable: item.claimable(kinds, now_ms),
                running: item.running_at(now_ms),
            })
            .collect();
        let served = self.served()?;
        let mut claimed = Vec::new();
        let mut passed = Vec::new();
        let mut wanted = max as usize;
        // An item given up (too many attempts) takes no slot: pick again for the slot.
        while wanted > 0 {
            let ids = pick(&open_without(&open, &passed), &served, wanted);
            if ids.is_empty() {
                break;
            }
            for id in ids {
                if let Some(item) = all.iter().find(|item| item.id == id) {
                    let next = item.claimed(worker, lease_ms, now_ms);
                    self.put_work(&next)?;
                    if next.state == WorkState::Leased {
                        wanted -= 1;
                        claimed.push(next);
                    }
                }
                passed.push(id);
            }
        }
        let last = served.values().copied().max().unwrap_or(0);
        for (turn, item) in (last + 1..).zip(&claimed) {
            self.inner
                .served
                .insert(item.requester.as_bytes(), &turn.to_be_bytes())?;
        }
        self.inner.work.flush()?;
        if !passed.is_empty() {
            self.changed();
        }
        Ok(claimed)
    }

    /// Record `worker`'s heartbeat and renew the leases it still holds.
    pub fn heartbeat(&self, worker: &WorkerInfo, lease_ms: u64, now_ms: u64) -> Result<Heartbeat> {
        let _guard = self.locked_queue()?;
        let mut beat = Heartbeat::default();
        for id in &worker.running {
            let item = match self.inner.work.get(id.as_bytes())? {
                Some(bytes) => serde_json::from_slice::<WorkItem>(&bytes)
                    .map_err(|e| corrupt("work item", e))?,
                None => {
                    beat.lost.push(id.clone());
                    continue;
                }
            };
            match item.renewed(&worker.name, lease_ms, now_ms) {
                Some(renewed) => {
                    if renewed.cancel_requested {
                        beat.cancel.push(id.clone());
                    }
                    self.put_work(&renewed)?;
                }
                None => beat.lost.push(id.clone()),
            }
        }
        let mut info = worker.clone();
        info.heartbeat_ms = now_ms;
        let bytes = serde_json::to_vec(&info).map_err(|e| encode("worker", e))?;
        self.inner.workers.insert(info.name.as_bytes(), bytes)?;
        self.inner.db.flush()?;
        Ok(beat)
    }

    /// Finish item `id` as `worker` (or hand it back with [`WorkState::Queued`]).
    pub fn finish_work(
        &self,
        id: &str,
        worker: &str,
        state: WorkState,
        result: Option<serde_json::Value>,
        now_ms: u64,
    ) -> Result<WorkItem> {
        let _guard = self.locked_queue()?;
        let item = self
            .work_item(id)?
            .finished(worker, state, result, now_ms)?;
        self.put_work(&item)?;
        self.inner.work.flush()?;
        self.changed();
        Ok(item)
    }

    /// Cancel item `selector` or every item of group `selector`, as `by`; the items changed.
    pub fn cancel_work(&self, selector: &str, by: &str, now_ms: u64) -> Result<Vec<WorkItem>> {
        let _guard = self.locked_queue()?;
        let all = self.all_work()?;
        let chosen: Vec<&WorkItem> = match all.iter().find(|item| item.id == selector) {
            Some(item) => vec![item],
            None => all
                .iter()
                .filter(|item| item.group.as_deref() == Some(selector))
                .collect(),
        };
        if chosen.is_empty() {
            return Err(RunsError::NotFound {
                what: "work item or group",
                id: selector.to_owned(),
            });
        }
        let mut changed = Vec::new();
        for item in chosen {
            if let Some(next) = item.cancelled(by, now_ms) {
                self.put_work(&next)?;
                changed.push(next);
            }
        }
        self.inner.work.flush()?;
        self.changed();
        Ok(changed)
    }

    /// Work item `id` (or unique id prefix).
    pub fn work_item(&self, id: &str) -> Result<WorkItem> {
        let (_, bytes) = by_prefix(&self.inner.work, "work item", id)?;
        serde_json::from_slice(&bytes).map_err(|e| corrupt("work item", e))
    }

    /// Every work item, or those of `group`, oldest first.
    pub fn work_items(&self, group: Option<&str>) -> Result<Vec<WorkItem>> {
        Ok(self
            .all_work()?
            .into_iter()
            .filter(|item| group.is_none_or(|g| item.group.as_deref() == Some(g)))
            .collect())
    }

    /// Every worker that reported, by name.
    pub fn workers(&self) -> Result<Vec<WorkerInfo>> {
        self.inner
            .workers
            .iter()
            .map(|entry| {
                let (_, bytes) = entry?;
                serde_json::from_slice(&bytes).map_err(|e| corrupt("worker", e))
            })
            .collect()
    }
}

/// `open` without the items already looked at in this round (`passed`, by id).
pub(crate) fn open_without(open: &[OpenItem], passed: &[String]) -> Vec<OpenItem> {
    open.iter()
        .filter(|item| !passed.contains(&item.id))
        .cloned()
        .collect()
}
