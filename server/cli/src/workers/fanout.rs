//! Batch items on workers: a batch call's items queued in the store as single calls, for the
//! batch's caller, and waited for — progress as they finish, cancel passed on to the workers
//! running them.

use std::time::Duration;

use baton_kit::{FannedOut, Fanout, ItemResult, ToolContext, ToolError};
use baton_runs::{
    StoreApi as _, StoreHandle, WorkDraft, WorkItem, WorkKind, WorkState, new_id, now_millis,
};
use futures::future::BoxFuture;
use serde_json::{Value, json};

/// Least time between two reads of a batch's items: a large batch is many rows, and each
/// item that finishes announces a change.
const READ_EVERY: Duration = Duration::from_millis(250);

/// Runs batch items on the workers of `store` (`[workers] batches = true`).
#[derive(Debug, Clone)]
pub struct StoreFanout(pub StoreHandle);

fn unavailable(error: baton_runs::StoreError) -> ToolError {
    ToolError::unavailable(format!("the work queue: {error}"))
}

/// Each item's answer, in order, once every item is over; `None` while some are not.
fn answers(items: &[WorkItem]) -> Option<Vec<ItemResult>> {
    items
        .iter()
        .map(|item| match item.state {
            WorkState::Done => Some(Ok(item.result.clone().unwrap_or(Value::Null))),
            WorkState::Failed | WorkState::Cancelled => Some(Err(item
                .result
                .as_ref()
                .and_then(|r| r["error"].as_str())
                .unwrap_or(item.state.as_str())
                .to_owned())),
            WorkState::Queued | WorkState::Leased => None,
        })
        .collect()
}

impl Fanout for StoreFanout {
    fn fan_out<'a>(
        &'a self,
        tool: &'a str,
        items: Vec<Value>,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, baton_kit::Result<FannedOut>> {
        Box::pin(async move {
            let Some(principal) = ctx.principal() else {
                return Err(ToolError::failed("a batch on workers needs its caller"));
            };
            let group = format!("batch-{}", new_id());
            let total = items.len();
            // The workers decide each item as the caller (its roles), on their machines.
            let drafts = items
                .into_iter()
                .map(|args| WorkDraft {
                    kind: WorkKind::Call,
                    requester: principal.id.clone(),
                    group: Some(group.clone()),
                    payload: json!({"tool": tool, "args": args, "principal": principal}),
                })
                .collect();
            self.0
                .enqueue_work(drafts, now_millis())
                .await
                .map_err(unavailable)?;
            let mut seen = 0;
            let mut told = usize::MAX;
            loop {
                // In id order, which is the order queued (ids made in one process are
                // monotonic).
                let items = self
                    .0
                    .work_items(Some(group.clone()))
                    .await
                    .map_err(unavailable)?;
                let done = items.iter().filter(|i| i.state.is_final()).count();
                if done != told {
                    ctx.progress(
                        done as f64,
                        Some(total as f64),
                        format!("{done} of {total} on workers"),
                    );
                    told = done;
                }
                if let Some(answers) = answers(&items) {
                    let mut workers: Vec<&str> =
                        items.iter().filter_map(|i| i.worker.as_deref()).collect();
                    workers.sort_unstable();
                    workers.dedup();
                    return Ok(FannedOut {
                        items: answers,
                        workers: workers.len(),
                    });
                }
                tokio::select! {
                    changed = self.0.changes(seen, 5_000) => {
                        seen = changed.map_err(unavailable)?;
                        tokio::time::sleep(READ_EVERY).await;
                    }
                    () = ctx.cancellation().cancelled() => {
                        self.0
                            .cancel_work(group.clone(), principal.id.clone(), now_millis())
                            .await
                            .map_err(unavailable)?;
                        return Err(ToolError::Cancelled);
                    }
                }
            }
        })
    }
}
