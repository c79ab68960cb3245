//! The audit page: records newest first with filters, the chain's verification, and the
//! export as JSON lines.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use baton_runs::{AuditQuery, AuditRecord, OutcomeStatus, StoreApi as _, StoreError, VerifyReport};
use http::{StatusCode, header};
use maud::{Markup, html};
use serde::Deserialize;

use crate::layout::{Section, clip, page as shell, span};
use crate::routes::Console;
use crate::session::{CsrfOnly, Reviewer};

/// Records per page.
const PAGE: usize = 100;
/// Records one page looks at, at most, for a filter that matches little.
const SCAN: usize = 20_000;
/// How old a verification may be before a page load starts another.
const STALE_MS: u64 = 60_000;
/// The outcomes a record can have, for the filter.
const OUTCOMES: [&str; 8] = [
    "ok",
    "error",
    "denied",
    "pending_approval",
    "rejected",
    "declined",
    "cancelled",
    "expired",
];

/// The chain's last verification.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    report: VerifyReport,
    at_ms: u64,
    took_ms: u64,
}

/// A page that could not read the store.
pub(crate) fn unavailable(error: &StoreError) -> Response {
    let status = match error {
        StoreError::NotFound { .. } | StoreError::Ambiguous { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, format!("The store could not answer: {error}")).into_response()
}

/// The audit page's filters, as the form sends them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: Option<u64>,
}

impl Filters {
    fn query(&self) -> Result<AuditQuery, String> {
        let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let outcome = match given(&self.outcome) {
            Some(name) => Some(
                serde_json::from_value::<OutcomeStatus>(serde_json::Value::String(name.clone()))
                    .map_err(|_| {
                        format!("outcome `{name}` is not one of {}", OUTCOMES.join(", "))
                    })?,
            ),
            None => None,
        };
        for (field, value) in [("since", &self.since), ("until", &self.until)] {
            let value = value.trim();
            let shape = value
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-:T.Z ".contains(&b));
            if !value.is_empty() && (!shape || !value.starts_with(|c: char| c.is_ascii_digit())) {
                return Err(format!(
                    "{field} `{value}` is not a UTC time like 2026-12-05T14:30"
                ));
            }
        }
        Ok(AuditQuery {
            before: self.before,
            principal: given(&self.principal),
            tool: given(&self.tool),
            outcome,
            since: given(&self.since).map(|s| s.replace(' ', "T")),
            until: given(&self.until).map(|s| s.replace(' ', "T")),
            limit: PAGE,
            scan: SCAN,
        })
    }

    /// The filters as a query string (for the export link and the next page).
    fn encoded(&self) -> String {
        let pairs = [
            ("principal", &self.principal),
            ("tool", &self.tool),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `GET /console/audit`.
pub(crate) async fn page(
    State(console): State<Console>,
    reviewer: Reviewer,
    Query(filters): Query<Filters>,
) -> Response {
    let flash = console.sessions.take_flash(&reviewer.id);
    let (slice, problem) = match filters.query() {
        Ok(query) => match console.served.gate.store().query_audit(query).await {
            Ok(slice) => (Some(slice), None),
            Err(error) => return unavailable(&error),
        },
        Err(problem) => (None, Some(problem)),
    };
    let verified = verification(&console).await;
    let encoded = filters.encoded();
    let body = html! {
        h1 { "Audit log" }
        (chain(verified.as_ref(), &reviewer))
        (filter_form(&filters))
        @if let Some(problem) = problem { p.flash.error role="alert" { (problem) } }
        p { a href={ "/console/audit/export?" (encoded) } download="baton-audit.jsonl" { "Export these records as JSON lines" } }
        @if let Some(slice) = slice {
            @if slice.records.is_empty() {
                p.muted { "No records match" @if slice.next_before.is_some() { " among the " (SCAN) " looked at" } "." }
            } @else {
                (records(&slice.records))
            }
            @if let Some(before) = slice.next_before {
                p { a href={ "/console/audit?" (encoded) "&before=" (before) } { "Older records →" } }
            }
        }
    };
    shell("Audit", Section::Audit, &reviewer, flash.as_ref(), body).into_response()
}

fn filter_form(filters: &Filters) -> Markup {
    html! {
        form.filters method="get" action="/console/audit" {
            label { "Principal" input name="principal" value=(filters.principal); }
            label { "Tool" input name="tool" value=(filters.tool); }
            label { "Outcome"
                select name="outcome" {
                    option value="" { "any" }
                    @for name in OUTCOMES {
                        option value=(name) selected[filters.outcome == name] { (name) }
                    }
                }
            }
            label { "Since (UTC)" input name="since" placeholder="2026-12-05T14:00" value=(filters.since); }
            label { "Until (UTC)" input name="until" placeholder="2026-12-06" value=(filters.until); }
            button type="submit" { "Filter" }
        }
    }
}

fn records(records: &[AuditRecord]) -> Markup {
    html! {
        div.scroll {
            table.table {
                thead { tr { th { "#" } th { "Time" } th { "Principal" } th { "Tool" } th { "Outcome" } th.wide { "Decision" } th.wide { "Took" } } }
                tbody {
                    @for record in records {
                        @let outcome = record.outcome.status.as_str();
                        tr {
                            td { (record.seq) }
                            td { (record.time.get(..19).unwrap_or(&record.time).replace('T', " ")) }
                            td { (record.principal) }
                            td { code { (record.tool) } }
                            td {
                                span.state.(outcome) { (outcome) }
                                @if let Some(message) = &record.outcome.message { br; span.muted { (clip(message, 300)) } }
                                @else if let Some(by) = &record.decided_by { " by " (by) }
                            }
                            td.wide {
                                (record.decision.rule)
                                @if let Some(id) = &record.approval_id { br; span.muted { "approval " (id) } }
                            }
                            td.wide { (span(record.duration_us / 1000)) }
                        }
                    }
                }
            }
        }
    }
}

fn chain(verified: Option<&Verified>, reviewer: &Reviewer) -> Markup {
    html! {
        section.card aria-label="Chain verification" {
            @match verified {
                None => p { "The chain is being verified; reload in a moment." },
                Some(v) => {
                    @match &v.report.problem {
                        None => p { span.state.ok { "verified" } " All " (v.report.verified) " records chain correctly (checked "
                            (crate::layout::when(v.at_ms)) " UTC, in " (span(v.took_ms)) "). Head " code { (clip(&v.report.head_hash, 16)) } },
                        Some(problem) => p role="alert" { span.state.failed { "BROKEN" } " Record " (problem.seq) ": " (problem) " ("
                            (v.report.verified) " records verified before it; checked " (crate::layout::when(v.at_ms)) " UTC)" },
                    }
                }
            }
            form method="post" action="/console/audit/verify" {
                input type="hidden" name="csrf" value=(reviewer.session.csrf);
                button type="submit" { "Verify the whole chain now" }
            }
        }
    }
}

/// The last verification; a new one is started in the background when there is none or it
/// is older than [`STALE_MS`] (a page never waits for a walk of the whole chain).
async fn verification(console: &Console) -> Option<Verified> {
    let now = console.served.gate.clock().now_ms();
    let cached = console.verified.lock().await.clone();
    let stale = cached
        .as_ref()
        .is_none_or(|v| now.saturating_sub(v.at_ms) > STALE_MS);
    if stale {
        let console = console.clone();
        tokio::spawn(async move {
            let _ = verify_now(&console).await;
        });
    }
    cached
}

pub(crate) async fn verify_now(console: &Console) -> Result<Verified, StoreError> {
    let started = Instant::now();
    let report = console.served.gate.store().verify_audit().await?;
    let verified = Verified {
        report,
        at_ms: console.served.gate.clock().now_ms(),
        took_ms: started.elapsed().as_millis() as u64,
    };
    *console.verified.lock().await = Some(verified.clone());
    Ok(verified)
}

/// `POST /console/audit/verify`: walk the whole chain now.
pub(crate) async fn verify(
    State(console): State<Console>,
    reviewer: Reviewer,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if let Some(refused) = reviewer.csrf_refusal(form.csrf()) {
        return refused;
    }
    let (error, text) = match verify_now(&console).await {
        Ok(v) => match &v.report.problem {
            None => (
                false,
                format!("The chain verifies: {} records.", v.report.verified),
            ),
            Some(problem) => (
                true,
                format!("The chain is broken at record {}: {problem}", problem.seq),
            ),
        },
        Err(error) => (true, format!("Could not verify: {error}")),
    };
    console.sessions.flash(&reviewer.id, error, text);
    Redirect::to("/console/audit").into_response()
}

/// `GET /console/audit/export`: the matching records, oldest first, as JSON lines (the same
/// lines `baton audit export` prints), streamed.
pub(crate) async fn export(
    State(console): State<Console>,
    _reviewer: Reviewer,
    Query(filters): Query<Filters>,
) -> Response {
    let query = match filters.query() {
        Ok(query) => query,
        Err(problem) => return (StatusCode::BAD_REQUEST, problem).into_response(),
    };
    let store = console.served.gate.store().clone();
    let stream = futures::stream::unfold(Some(0u64), move |after| {
        let store = store.clone();
        let query = query.clone();
        async move {
            let after = after?;
            match store.audit_records(after, 1000).await {
                Ok(records) if records.is_empty() => None,
                Ok(records) => {
                    let next = records.last().map(|r| r.seq);
                    let mut lines = Vec::new();
                    for record in records.iter().filter(|r| query.matches(r)) {
                        if serde_json::to_writer(&mut lines, record).is_ok() {
                            lines.push(b'\n');
                        }
                    }
                    Some((Ok::<_, std::io::Error>(lines), next))
                }
                Err(error) => Some((Err(std::io::Error::other(error.to_string())), None)),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"baton-audit.jsonl\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
