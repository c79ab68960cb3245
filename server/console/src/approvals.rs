//! The approvals page: pending calls first (live), then the ones decided lately; deciding is
//! the `approvals_decide` tool called through the gate as the signed-in reviewer.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use baton_kit::{Invocation, Outcome, ToolContext};
use baton_runs::{Approval, ApprovalState, StoreApi as _};
use futures::Stream;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::layout::{Section, page as shell, span, when};
use crate::preview::{arguments, preview};
use crate::routes::Console;
use crate::session::Reviewer;

/// Decided approvals shown under the pending ones.
const RECENT: usize = 20;
/// Pending approvals shown at once (oldest first).
const SHOWN_PENDING: usize = 50;
/// Longest one live wait lasts before the stream checks the session again.
const LIVE_WAIT_MS: u64 = 20_000;

/// `GET /console/approvals`.
pub(crate) async fn page(State(console): State<Console>, reviewer: Reviewer) -> Response {
    let flash = console.sessions.take_flash(&reviewer.id);
    let all = match console.served.gate.store().approvals().await {
        Ok(all) => all,
        Err(error) => return crate::audit::unavailable(&error),
    };
    let now = console.served.gate.clock().now_ms();
    let waiting = pending(&console, &reviewer, all.clone(), now)
        .await
        .into_string();
    let seen = digest(&waiting);
    let recent: Vec<&Approval> = all
        .iter()
        .filter(|a| a.state_at(now) != ApprovalState::Pending)
        .take(RECENT)
        .collect();
    let body = html! {
        h1 { "Approvals" }
        p #live .live aria-live="polite" { "Reload for updates (live updates need JavaScript)." }
        section #pending data-live={ "/console/approvals/live?seen=" (seen) } aria-label="Waiting for a reviewer" {
            (maud::PreEscaped(waiting))
        }
        h2 { "Decided lately" }
        @if recent.is_empty() {
            p.muted { "Nothing decided yet." }
        } @else {
            div.scroll {
                table.table {
                    thead { tr { th { "Tool" } th { "Requester" } th { "State" } th { "By" } th.wide { "Note" } th.wide { "When" } } }
                    tbody {
                        @for approval in recent {
                            @let state = approval.state_at(now).as_str();
                            tr id=(approval.id) {
                                td { code { (approval.tool) } }
                                td { (approval.requester) }
                                td { span.state.(state) { (state) } }
                                td { (approval.decider.as_deref().unwrap_or("—")) }
                                td.wide { (approval.note.as_deref().unwrap_or("")) }
                                td.wide { (when(approval.decided_ms.unwrap_or(approval.created_ms))) }
                            }
                        }
                    }
                }
            }
        }
    };
    shell(
        "Approvals",
        Section::Approvals,
        &reviewer,
        flash.as_ref(),
        body,
    )
    .into_response()
}

/// The pending approvals, oldest first (the one waiting longest is decided first), rendered
/// on the blocking pool: a preview reads files and diffs them.
async fn pending(console: &Console, reviewer: &Reviewer, all: Vec<Approval>, now: u64) -> Markup {
    let (console, reviewer) = (console.clone(), reviewer.clone());
    let rendered = tokio::task::spawn_blocking(move || {
        let mut waiting: Vec<&Approval> = all
            .iter()
            .filter(|a| a.state_at(now) == ApprovalState::Pending)
            .collect();
        waiting.reverse();
        console.forget_previews(&waiting);
        html! {
            h2 { "Waiting for a reviewer (" (waiting.len()) ")" }
            @if waiting.is_empty() {
                p.muted { "Nothing is waiting." }
            }
            @for approval in waiting.iter().take(SHOWN_PENDING) {
                (card(&console, &reviewer, approval, now))
            }
            @if waiting.len() > SHOWN_PENDING {
                p.muted { "… and " (waiting.len() - SHOWN_PENDING) " more, shown as these are decided." }
            }
        }
    })
    .await;
    rendered.unwrap_or_else(
        |error| html! { p.flash.error { "The list could not be rendered: " (error.to_string()) } },
    )
}

fn card(console: &Console, reviewer: &Reviewer, approval: &Approval, now: u64) -> Markup {
    let id = &approval.id;
    let own = approval.requester == reviewer.session.principal.id;
    html! {
        article.card id=(id) aria-labelledby={ "t-" (id) } {
            h3 id={ "t-" (id) } { code { (approval.tool) } " requested by " (approval.requester) }
            dl.facts {
                dt { "Why" } dd { (approval.rule) ": " (approval.reason) }
                dt { "Asked" } dd { (when(approval.created_ms)) " (" (span(now.saturating_sub(approval.created_ms))) " ago)" }
                dt { "Expires" } dd { (when(approval.expires_ms)) " (in " (span(approval.expires_ms.saturating_sub(now))) ")" }
                dt { "Id" } dd { code { (id) } }
            }
            (console.preview(approval, || preview(&console.served.gate, approval)))
            details {
                summary { "All arguments (secrets redacted)" }
                (arguments(&approval.args))
            }
            @if own {
                p.muted { "You requested this call: another reviewer must decide it." }
            } @else {
                form.decide method="post" action={ "/console/approvals/" (id) } {
                    input type="hidden" name="csrf" value=(reviewer.session.csrf);
                    label for={ "note-" (id) } { "Note (required to reject; the requester reads it)" }
                    textarea id={ "note-" (id) } name="note" {}
                    div.buttons {
                        button.approve type="submit" name="decision" value="approve" { "Approve" }
                        button.reject type="submit" name="decision" value="reject" { "Reject" }
                    }
                }
            }
        }
    }
}

/// A rendering's fingerprint: the live stream sends the list only when it differs from what
/// the page already shows.
fn digest(html: &str) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    html.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// What the page shows already (`seen`: its list's fingerprint).
#[derive(Debug, Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    seen: String,
}

/// `GET /console/approvals/live`: the pending list again whenever it changes.
pub(crate) async fn live(
    State(console): State<Console>,
    reviewer: Reviewer,
    axum::extract::Query(query): axum::extract::Query<LiveQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start = (console, reviewer, 0u64, query.seen);
    let stream = futures::stream::unfold(start, |(console, reviewer, mut seen, last)| async move {
        loop {
            // A signed-out (or expired) session stops receiving.
            console.sessions.get(&reviewer.id)?;
            let store = console.served.gate.store();
            let next = match store.changes(seen, LIVE_WAIT_MS).await {
                Ok(next) => next,
                Err(error) => {
                    tracing::debug!(%error, "console live: store unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Ok(all) = store.approvals().await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            // Signed out while waiting: send nothing more.
            console.sessions.get(&reviewer.id)?;
            let now = console.served.gate.clock().now_ms();
            let html = pending(&console, &reviewer, all, now).await.into_string();
            seen = next;
            let fingerprint = digest(&html);
            if fingerprint != last {
                let event = Event::default().event("pending").data(html);
                return Some((Ok(event), (console, reviewer, seen, fingerprint)));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The decide form.
#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /console/approvals/{id}`: decide through the gate, as the signed-in reviewer.
pub(crate) async fn decide(
    State(console): State<Console>,
    reviewer: Reviewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<DecideForm>,
) -> Response {
    if let Some(refused) = reviewer.csrf_refusal(&form.csrf) {
        return refused;
    }
    let note = Some(form.note.trim()).filter(|n| !n.is_empty());
    let outcome = console
        .served
        .gate
        .call(Invocation {
            principal: reviewer.session.principal.clone(),
            tool: "approvals_decide".into(),
            args: json!({ "id": id, "decision": form.decision, "note": note }),
            approval_id: None,
            context: ToolContext::new(CancellationToken::new()),
        })
        .await;
    let (error, text) = match outcome {
        Ok(Outcome::Completed(output)) => {
            let decided = &output.structured["approval"];
            (
                false,
                format!(
                    "{} `{}` for {}.",
                    match decided["state"].as_str() {
                        Some("approved") => "Approved",
                        Some("rejected") => "Rejected",
                        _ => "Decided",
                    },
                    decided["tool"].as_str().unwrap_or("the call"),
                    decided["requester"].as_str().unwrap_or("its requester"),
                ),
            )
        }
        Ok(Outcome::PendingApproval(pending)) => (
            true,
            format!(
                "The policy makes deciding this an elevated call itself (approval {}).",
                pending.approval_id
            ),
        ),
        Err(error) => (true, format!("Not decided: {error}")),
    };
    console.sessions.flash(&reviewer.id, error, text);
    Redirect::to("/console/approvals").into_response()
}
