//! The runs pages: every run with its state and times, and one run as a timeline a person
//! reads — agents, model turns, tool calls and their outcomes, approvals and who decided,
//! handoffs, the final output.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use baton_runs::{Approval, ApprovalState, Run, RunState, Step, StoreApi as _};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::layout::{Section, clip, page as shell, span, when};
use crate::routes::Console;
use crate::session::Reviewer;

/// Runs per page of the list.
const PAGE: usize = 50;

/// Which page of the list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    page: usize,
}

/// `GET /console/runs`.
pub(crate) async fn list(
    State(console): State<Console>,
    reviewer: Reviewer,
    Query(query): Query<ListQuery>,
) -> Response {
    let runs = match console.served.gate.store().runs().await {
        Ok(runs) => runs,
        Err(error) => return crate::audit::unavailable(&error),
    };
    let now = console.served.gate.clock().now_ms();
    let shown: Vec<&Run> = runs.iter().skip(query.page * PAGE).take(PAGE).collect();
    let more = runs.len() > (query.page + 1) * PAGE;
    let body = html! {
        h1 { "Runs" }
        p.muted { (runs.len()) " runs, newest first." }
        div.scroll {
            table.table {
                thead { tr { th { "Goal" } th { "Agent" } th { "State" } th { "Duration" } th { "Waiting" } th.wide { "Started" } } }
                tbody {
                    @for run in &shown {
                        @let end = if matches!(run.state, RunState::Done | RunState::DoneWithDenials | RunState::Failed | RunState::Cancelled | RunState::OverBudget) { run.updated_ms } else { now };
                        @let waited = run.waited_ms + if run.state == RunState::WaitingApproval { now.saturating_sub(run.updated_ms) } else { 0 };
                        tr {
                            td { a href={ "/console/runs/" (run.id) } { (clip(&run.goal, 120)) } }
                            td { (run.agent) }
                            td { span.state.(run.state.as_str()) { (run.state.as_str()) } }
                            td { (span(end.saturating_sub(run.created_ms))) }
                            td { (span(waited)) }
                            td.wide { (when(run.created_ms)) }
                        }
                    }
                }
            }
        }
        nav aria-label="Pages" {
            @if query.page > 0 { a href={ "/console/runs?page=" (query.page - 1) } { "← Newer" } " " }
            @if more { a href={ "/console/runs?page=" (query.page + 1) } { "Older →" } }
        }
    };
    shell("Runs", Section::Runs, &reviewer, None, body).into_response()
}

/// `GET /console/runs/{id}`.
pub(crate) async fn show(
    State(console): State<Console>,
    reviewer: Reviewer,
    Path(id): Path<String>,
) -> Response {
    let store = console.served.gate.store();
    let run = match store.run(id).await {
        Ok(run) => run,
        Err(error) => return crate::audit::unavailable(&error),
    };
    let steps = match store.steps(run.id.clone()).await {
        Ok(steps) => steps,
        Err(error) => return crate::audit::unavailable(&error),
    };
    let approvals: HashMap<String, Approval> = match store.approvals().await {
        Ok(all) => all.into_iter().map(|a| (a.id.clone(), a)).collect(),
        Err(error) => return crate::audit::unavailable(&error),
    };
    let now = console.served.gate.clock().now_ms();
    let body = html! {
        h1 { "Run: " (clip(&run.goal, 200)) }
        dl.facts {
            dt { "State" } dd { span.state.(run.state.as_str()) { (run.state.as_str()) } }
            dt { "Agent" } dd { span.agent { (run.agent) } }
            dt { "Started" } dd { (when(run.created_ms)) }
            dt { "Waited for reviewers" } dd { (span(waited(&run, &steps))) }
            @let usage = baton_runs::TokenUsage::of(&steps);
            dt { "Tokens" } dd {
                (usage.total) " (agents " (usage.model_input) " in, " (usage.model_output) " out; tools " (usage.tools_input) " in, " (usage.tools_output) " out)"
                @for (agent, tokens) in &usage.agents {
                    br; span.agent { (agent) } " " (tokens.turns) " turns, " (tokens.input) " in, " (tokens.output) " out"
                }
            }
            dt { "Id" } dd { code { (run.id) } }
            @if let Some(repo) = run.meta.get("repo").and_then(Value::as_str) {
                dt { "Repository" } dd { code { (repo) } }
            }
        }
        (files(&run, &steps))
        h2 { "Timeline" }
        (timeline(&run, &steps, &approvals, now))
    };
    shell("Run", Section::Runs, &reviewer, None, body).into_response()
}

/// How long the run waited for reviewers: its own pauses, and the requests its tools' helpers
/// (Codex) waited on inside a call.
fn waited(run: &Run, steps: &[Step]) -> u64 {
    steps
        .iter()
        .filter(|s| s.kind == "tool_event")
        .filter_map(|s| s.data["value"]["waited_ms"].as_u64())
        .fold(run.waited_ms, u64::saturating_add)
}

/// Where the run's work can be read: the `.runs/<id>/` folders its tools reported (task,
/// diff, test verdicts), as paths in its repository.
fn files(run: &Run, steps: &[Step]) -> Markup {
    let repo = run.meta.get("repo").and_then(Value::as_str);
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for step in steps.iter().filter(|s| s.kind == "tool_result") {
        let content = step.data["value"]["content"].as_str().unwrap_or_default();
        let Ok(result) = serde_json::from_str::<Value>(content) else {
            continue;
        };
        let run_id = result.get("run_id").and_then(Value::as_str);
        let task = result.get("task").and_then(Value::as_str);
        if let Some(run_id) = run_id
            && seen.insert(run_id.to_owned())
        {
            found.push((run_id.to_owned(), task.map(str::to_owned)));
        }
    }
    html! {
        @if !found.is_empty() {
            h2 { "Work" }
            ul {
                @for (sop_run, task) in &found {
                    li {
                        @if let Some(task) = task { "Task " code { (task) } ": " }
                        "diff " code { (repo.unwrap_or(".")) "/.runs/" (sop_run) "/diff.patch" }
                        ", test verdicts " code { (repo.unwrap_or(".")) "/.runs/" (sop_run) "/verdicts.jsonl" }
                    }
                }
            }
        }
    }
}

/// The agent path and the rest of a journal key (`manager/builder@call_1/turn-2/tool/x`).
fn agent_of(key: &str) -> &str {
    key.split("/turn-").next().unwrap_or(key)
}

fn timeline(run: &Run, steps: &[Step], approvals: &HashMap<String, Approval>, now: u64) -> Markup {
    let mut agents_seen: HashSet<&str> = HashSet::new();
    let intents: HashMap<&str, &Step> = steps
        .iter()
        .filter(|s| s.kind == "tool_call")
        .filter_map(|s| {
            let key = s.data["key"].as_str()?;
            Some((key.strip_suffix("/intent")?, s))
        })
        .collect();
    let final_output = steps
        .iter()
        .rev()
        .filter(|s| s.kind == "model_call")
        .find(|s| {
            let key = s.data["key"].as_str().unwrap_or_default();
            !agent_of(key).contains('/')
                && s.data["value"]["message"]["tool_calls"]
                    .as_array()
                    .is_none_or(Vec::is_empty)
        })
        .and_then(|s| s.data["value"]["message"]["content"].as_str());
    html! {
        ol.timeline {
            @for step in steps {
                @let key = step.data["key"].as_str().unwrap_or_default();
                @let agent = agent_of(key);
                @if agents_seen.insert(agent) {
                    li.handoff {
                        span.muted { "+" (span(step.time_ms.saturating_sub(run.created_ms))) " " }
                        @if agent.contains('/') { "Delegated to " } @else { "Agent " }
                        span.agent { (agent) }
                    }
                }
                (entry(run, step, &intents, approvals, now))
            }
            @if let Some(output) = final_output {
                li.final {
                    strong { "Final output" }
                    pre { (clip(output, 20_000)) }
                }
            }
        }
    }
}

fn entry(
    run: &Run,
    step: &Step,
    intents: &HashMap<&str, &Step>,
    approvals: &HashMap<String, Approval>,
    now: u64,
) -> Markup {
    let key = step.data["key"].as_str().unwrap_or_default();
    let value = &step.data["value"];
    let at = span(step.time_ms.saturating_sub(run.created_ms));
    match step.kind.as_str() {
        "model_call" => {
            let message = &value["message"];
            let calls: Vec<&str> = message["tool_calls"]
                .as_array()
                .map(|calls| {
                    calls
                        .iter()
                        .filter_map(|c| c["function"]["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let tokens = value["usage"]["prompt_tokens"].as_u64().unwrap_or(0)
                + value["usage"]["completion_tokens"].as_u64().unwrap_or(0);
            html! {
                li.model {
                    details {
                        summary {
                            span.muted { "+" (at) " " } "Model turn"
                            @if !calls.is_empty() { " → " (calls.join(", ")) }
                            @if tokens > 0 { span.muted { " · " (tokens) " tokens" } }
                        }
                        @if let Some(text) = message["content"].as_str() { pre { (clip(text, 8000)) } }
                        @for call in message["tool_calls"].as_array().into_iter().flatten() {
                            p { code { (call["function"]["name"].as_str().unwrap_or("?")) } " " code { (clip(call["function"]["arguments"].as_str().unwrap_or(""), 2000)) } }
                        }
                    }
                }
            }
        }
        "tool_result" => {
            let ok = value["ok"].as_bool().unwrap_or(false);
            let intent = intents.get(key);
            let tool = intent
                .and_then(|i| i.data["value"]["tool"].as_str())
                .unwrap_or("tool");
            let took = intent.map(|i| span(step.time_ms.saturating_sub(i.time_ms)));
            html! {
                li.tool {
                    details {
                        summary {
                            span.muted { "+" (at) " " } code { (tool) } " "
                            span.state.(if ok { "ok" } else { "error" }) { (if ok { "ok" } else { "error" }) }
                            @if let Some(took) = took { span.muted { " in " (took) } }
                        }
                        @if let Some(intent) = intent {
                            p.muted { "Arguments" }
                            pre { (clip(&intent.data["value"]["args"].to_string(), 4000)) }
                        }
                        p.muted { "Result" }
                        pre { (clip(value["content"].as_str().unwrap_or(""), 8000)) }
                    }
                }
            }
        }
        "approval_wait" => approval_entry(&at, value.as_str().unwrap_or_default(), approvals, now),
        // A tool's own step (Codex ran a command, applied a patch): one line, details inside.
        "tool_event" => html! {
            li.step {
                details {
                    summary {
                        span.muted { "+" (at) " " } "↳ "
                        (clip(value["summary"].as_str().unwrap_or("a step"), 300))
                    }
                    pre { (clip(&value.to_string(), 4000)) }
                }
            }
        },
        // A worker took the run (its first, or the next after one died or stopped).
        "worker" => html! {
            li.step {
                span.muted { "+" (at) " " }
                "Taken by " code { (value_str(&step.data, "worker")) }
                " on " (value_str(&step.data, "host"))
                span.muted { " · branch " (value_str(&step.data, "branch")) }
            }
        },
        // The intent is shown with its result.
        _ => html! {},
    }
}

/// `data[key]` as text, or `?`.
fn value_str<'a>(data: &'a Value, key: &str) -> &'a str {
    data[key].as_str().unwrap_or("?")
}

fn approval_entry(at: &str, id: &str, approvals: &HashMap<String, Approval>, now: u64) -> Markup {
    let Some(approval) = approvals.get(id) else {
        return html! { li.approval { span.muted { "+" (at) " " } "Waited for approval " code { (id) } " (not found)" } };
    };
    let state = approval.state_at(now);
    // A used approval was approved: that is what the reader of a timeline asks.
    let word = match state {
        ApprovalState::Consumed => "approved",
        other => other.as_str(),
    };
    html! {
        li.approval {
            span.muted { "+" (at) " " }
            "Approval for " code { (approval.tool) } " "
            span.state.(state.as_str()) { (word) }
            @match state {
                ApprovalState::Pending => {
                    " — waits for a reviewer other than " (approval.requester) " "
                    a href={ "/console/approvals#" (approval.id) } { "decide" }
                }
                _ => {
                    @if let Some(by) = &approval.decider { " by " (by) }
                    @if let Some(note) = &approval.note { ": " (note) }
                }
            }
        }
    }
}
