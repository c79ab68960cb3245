//! The reviewers' watch, beside every server: approvals whose time ran out are expired on
//! time (each with its closing audit record), and webhooks are told when an approval is asked
//! for and when it ends — in the background, so no call ever waits on a webhook.

use std::collections::HashMap;
use std::time::Duration;

use baton_gate::{ApprovalView, Gate};
use baton_mcp::{WebhookEntry, WebhookFormat};
use baton_runs::{Approval, ApprovalState, StoreApi as _};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{ConsoleError, Result};

/// How often expiry is checked when nothing else happens.
const TICK_MS: u64 = 1_000;
/// Notifications waiting for delivery; past it, new ones are dropped (and logged), never
/// waited for.
const QUEUE: usize = 1_000;

/// A notification for the webhooks.
#[derive(Debug, Clone)]
struct Notice {
    event: &'static str,
    body: Value,
    text: String,
}

/// Start the watch over `gate`'s store until `shutdown`: expiry every second, and
/// `webhooks` told of approvals (linking to the console at `console_url` when known).
pub fn watch(
    gate: Gate,
    webhooks: Vec<WebhookEntry>,
    console_url: Option<String>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>> {
    for hook in &webhooks {
        if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
            return Err(ConsoleError::Webhook {
                url: hook.url.clone(),
                why: "expected an http:// or https:// URL".into(),
            });
        }
    }
    let notify = if webhooks.is_empty() {
        None
    } else {
        let (notices, queue) = mpsc::channel::<Notice>(QUEUE);
        tokio::spawn(deliver(webhooks, queue, shutdown.clone()));
        Some(notices)
    };
    Ok(tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = run(gate, notify, console_url) => {}
        }
    }))
}

async fn run(gate: Gate, notices: Option<mpsc::Sender<Notice>>, console_url: Option<String>) {
    let store = gate.store().clone();
    let started_ms = gate.clock().now_ms();
    let mut known: Option<HashMap<String, ApprovalState>> = None;
    let mut seen = 0u64;
    // The store is read only when something changed or an approval's time may be up; each
    // tick in between compares the clock with the earliest deadline (no I/O).
    let mut changed = true;
    let mut next_due: Option<u64> = None;
    loop {
        let now = gate.clock().now_ms();
        let due = next_due.is_none_or(|due| now > due);
        if changed || due {
            if due && let Err(error) = store.expire_approvals(now).await {
                tracing::warn!(%error, "expiring approvals failed; trying again");
            }
            match store.approvals().await {
                Ok(all) => {
                    next_due = Some(
                        all.iter()
                            .filter(|a| {
                                matches!(a.state, ApprovalState::Pending | ApprovalState::Approved)
                            })
                            .map(|a| a.expires_ms)
                            .min()
                            .unwrap_or(u64::MAX),
                    );
                    if let Some(notices) = &notices {
                        let now = gate.clock().now_ms();
                        for (event, approval) in news(&all, &mut known, started_ms) {
                            // Every server sharing the store sees the event; one sends it.
                            let key =
                                format!("{event}:{}:{}", approval.id, approval.state.as_str());
                            match store.claim_notice(key, now).await {
                                Ok(true) => {}
                                Ok(false) => continue,
                                Err(error) => {
                                    tracing::warn!(%error, id = %approval.id, "webhook notice not claimed; not sent");
                                    continue;
                                }
                            }
                            if notices
                                .try_send(notice(event, approval, now, console_url.as_deref()))
                                .is_err()
                            {
                                tracing::warn!(id = %approval.id, "webhook queue full; notification dropped");
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "reading approvals failed; trying again");
                    next_due = None;
                }
            }
        }
        match store.changes(seen, TICK_MS).await {
            Ok(next) => {
                changed = next != seen;
                seen = next;
            }
            Err(_) => {
                changed = true;
                tokio::time::sleep(Duration::from_millis(TICK_MS)).await;
            }
        }
    }
}

/// The events since the last look (`known`): approvals asked for, and approvals that ended.
/// The first look takes what existed before this watch started (`started_ms`) as told, so a
/// restart announces nothing twice, and announces what was asked for since — a call made the
/// moment the server came up is not missed.
fn news<'a>(
    all: &'a [Approval],
    known: &mut Option<HashMap<String, ApprovalState>>,
    started_ms: u64,
) -> Vec<(&'static str, &'a Approval)> {
    let before = known.take().unwrap_or_else(|| {
        all.iter()
            .filter(|a| a.created_ms < started_ms)
            .map(|a| (a.id.clone(), a.state))
            .collect()
    });
    let mut events = Vec::new();
    for approval in all {
        let event = match (before.get(&approval.id), approval.state) {
            (None, ApprovalState::Pending) => "approval.created",
            (Some(old), new) if *old != new && new != ApprovalState::Consumed => "approval.decided",
            _ => continue,
        };
        events.push((event, approval));
    }
    *known = Some(all.iter().map(|a| (a.id.clone(), a.state)).collect());
    events
}

fn notice(event: &'static str, approval: &Approval, now: u64, console: Option<&str>) -> Notice {
    let view = ApprovalView::of(approval, now);
    let link = console.map(|base| {
        format!(
            "{}/console/approvals#{}",
            base.trim_end_matches('/'),
            approval.id
        )
    });
    let text = match event {
        "approval.created" => format!(
            "Approval needed: `{}` requested by {} ({}){}",
            view.tool,
            view.requester,
            view.reason,
            link.as_deref()
                .map(|l| format!(" — {l}"))
                .unwrap_or_default()
        ),
        _ => format!(
            "Approval {} for `{}` (requested by {}): {}{}{}",
            view.id,
            view.tool,
            view.requester,
            view.state,
            view.decider
                .as_deref()
                .map(|d| format!(" by {d}"))
                .unwrap_or_default(),
            view.note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default()
        ),
    };
    let mut body = json!({ "event": event, "approval": view });
    if let Some(link) = link {
        body["console"] = Value::String(link);
    }
    Notice { event, body, text }
}

async fn deliver(
    webhooks: Vec<WebhookEntry>,
    mut queue: mpsc::Receiver<Notice>,
    shutdown: CancellationToken,
) {
    let client = reqwest::Client::new();
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            notice = queue.recv() => match notice { Some(n) => n, None => return },
        };
        for hook in &webhooks {
            // Each delivery on its own task: a slow webhook delays nobody, not even another.
            tokio::spawn(post(client.clone(), hook.clone(), notice.clone()));
        }
    }
}

async fn post(client: reqwest::Client, hook: WebhookEntry, notice: Notice) {
    let body = match hook.format {
        WebhookFormat::Json => notice.body.clone(),
        WebhookFormat::Slack => json!({ "text": notice.text }),
    };
    let mut delay = Duration::from_secs(1);
    for attempt in 0..=hook.retries {
        let sent = client
            .post(&hook.url)
            .timeout(Duration::from_secs(hook.timeout_s))
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(url = %hook.url, status = %response.status(), attempt, event = notice.event, "webhook refused")
            }
            Err(error) => {
                tracing::warn!(url = %hook.url, %error, attempt, event = notice.event, "webhook failed")
            }
        }
        if attempt < hook.retries {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    tracing::error!(url = %hook.url, event = notice.event, "webhook gave up after its retries");
}
