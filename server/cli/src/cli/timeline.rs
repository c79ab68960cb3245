//! `baton runs show`: a run as a person reads it — one line per journal step, its time from
//! the run's start, the agent that took it and what happened, in words. The raw journal is
//! behind `--json`.

use baton_runs::{Run, Step, TokenUsage, rfc3339};
use serde_json::Value;

/// Longest text shown of a model's answer, a call's arguments or a tool's result.
const SHOWN_CHARS: usize = 72;

/// The run's header, then its timeline.
pub(super) fn render(run: &Run, steps: &[Step], usage: &TokenUsage) -> String {
    let took = run.updated_ms.saturating_sub(run.created_ms) as f64 / 1e3;
    let mut out = format!(
        "run {}\n  goal     {}\n  agent    {}\n  state    {}\n  created  {}\n  updated  {} ({took:.3} s later)\n  tokens   {} (agents {} in, {} out; tools {} in, {} out)\n",
        run.id,
        printable(&run.goal),
        run.agent,
        run.state.as_str(),
        rfc3339(run.created_ms),
        rfc3339(run.updated_ms),
        usage.total,
        usage.model_input,
        usage.model_output,
        usage.tools_input,
        usage.tools_output,
    );
    for (agent, tokens) in &usage.agents {
        out.push_str(&format!(
            "           {}: {} turns, {} in, {} out\n",
            printable(agent),
            tokens.turns,
            tokens.input,
            tokens.output
        ));
    }
    if steps.is_empty() {
        out.push_str("\n  no steps yet\n");
        return out;
    }
    let lines: Vec<(String, String, String, String)> = steps
        .iter()
        .map(|step| {
            let at = step.time_ms.saturating_sub(run.created_ms) as f64 / 1e3;
            let (who, what, said) = describe(step);
            (format!("+{at:.3}s"), who, what, said)
        })
        .collect();
    let width = lines
        .iter()
        .map(|(_, who, _, _)| who.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    out.push_str(&format!(
        "\n  {:>9}  {:width$}  {:8}  WHAT\n",
        "TIME", "AGENT", "STEP"
    ));
    for (at, who, what, said) in lines {
        out.push_str(&format!("  {at:>9}  {who:width$}  {what:8}  {said}\n"));
    }
    out
}

/// Who took `step` (the agent's path in the run), what kind of step it is, and what it says.
fn describe(step: &Step) -> (String, String, String) {
    let key = step.data["key"].as_str().unwrap_or_default();
    let value = &step.data["value"];
    let agent = printable(key.split("/turn-").next().unwrap_or_default());
    match step.kind.as_str() {
        "model_call" => (agent, "model".to_owned(), model(value)),
        "tool_call" => {
            let tool = printable(value["tool"].as_str().unwrap_or("?"));
            (
                agent,
                "call".to_owned(),
                format!("{tool} {}", short(&value["args"].to_string())),
            )
        }
        "tool_result" => {
            let verdict = match value["ok"].as_bool() {
                Some(true) => "ok",
                _ => "refused",
            };
            let content = value["content"].as_str().unwrap_or_default();
            (
                agent,
                "result".to_owned(),
                format!("{verdict}: {}", short(content)),
            )
        }
        "approval_wait" => (
            agent,
            "approval".to_owned(),
            format!("waits for approval {}", value.as_str().unwrap_or("?")),
        ),
        "tool_event" => {
            let what = key.rsplit_once("/event-").map_or(key, |(call, _)| call);
            let tool = what.rsplit('/').next().unwrap_or_default();
            let summary = value["summary"].as_str().unwrap_or("(a step)");
            (
                agent,
                "event".to_owned(),
                short(&format!("{tool} {summary}")),
            )
        }
        "worker" => (
            String::new(),
            "worker".to_owned(),
            short(&format!(
                "{} on {} took the run (branch {})",
                step.data["worker"].as_str().unwrap_or("?"),
                step.data["host"].as_str().unwrap_or("?"),
                step.data["branch"].as_str().unwrap_or("?"),
            )),
        ),
        "outcome" => (String::new(), "outcome".to_owned(), outcome(&step.data)),
        other => (agent, printable(other), short(&step.data.to_string())),
    }
}

/// A model turn: the calls it asked for, or its answer; and its tokens.
fn model(value: &Value) -> String {
    let message = &value["message"];
    let calls: Vec<&str> = message["tool_calls"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter_map(|call| call["function"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let said = match calls.is_empty() {
        false => format!("→ {}", short(&calls.join(", "))),
        true => format!(
            "\"{}\"",
            short(message["content"].as_str().unwrap_or_default())
        ),
    };
    let usage = &value["usage"];
    match (
        usage["prompt_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    ) {
        (Some(input), Some(output)) => format!("{said}  ({input} in, {output} out)"),
        _ => said,
    }
}

/// How the run ended, as its `outcome` step says.
fn outcome(data: &Value) -> String {
    let state = printable(data["state"].as_str().unwrap_or("?"));
    match data["error"].as_str() {
        Some(error) => format!("{state}: {}", short(error)),
        None => state.to_owned(),
    }
}

/// `text` with every control character (ESC, BEL, C1…) shown as `�`: what a model wrote or
/// a tool returned reaches the operator's terminal, and must not be able to move its cursor,
/// erase a line above or write to its clipboard.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// `text` on one line, at most [`SHOWN_CHARS`] characters, printable.
fn short(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = printable(&line);
    if line.chars().count() <= SHOWN_CHARS {
        return line;
    }
    let cut: String = line.chars().take(SHOWN_CHARS - 1).collect();
    format!("{cut}…")
}
