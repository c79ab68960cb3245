//! A run's progress at the terminal, as it happens: a line per step, and the model's words and
//! tool-call arguments as they stream in, under the agent that writes them. Everything a model
//! or a tool wrote is shown printable (control characters as `�`), so it cannot drive the
//! operator's terminal.

use baton_agents::RunEvent;

/// What is being streamed now: the agent, its turn, and the call whose arguments these are.
type Stream = (String, u32, Option<String>);

/// The progress printer of one run.
#[derive(Debug)]
pub(super) struct Live {
    prefix: String,
    streaming: Option<Stream>,
}

impl Live {
    /// A printer prefixing its lines with `prefix` (`[goal 2] `, or nothing).
    pub(super) fn new(prefix: String) -> Live {
        Live {
            prefix,
            streaming: None,
        }
    }

    /// What to print for `event`.
    pub(super) fn show(&mut self, event: &RunEvent) -> String {
        match event {
            RunEvent::TextDelta { path, turn, text } => {
                let head = format!("[{path}] ");
                self.stream((path.clone(), *turn, None), &head, text)
            }
            RunEvent::ToolArgumentsDelta {
                path,
                turn,
                tool,
                call_id,
                delta,
            } => {
                let head = format!("[{path}] → {tool} ");
                self.stream((path.clone(), *turn, Some(call_id.clone())), &head, delta)
            }
            other => {
                let mut out = self.close();
                if let Some(line) = describe(other) {
                    out.push_str(&format!("{}{}\n", self.prefix, lines(&line)));
                }
                out
            }
        }
    }

    /// End the stream being printed, if one is.
    pub(super) fn close(&mut self) -> String {
        match self.streaming.take() {
            Some(_) => "\n".into(),
            None => String::new(),
        }
    }

    /// `piece` of `stream`, after its head (`head`) when it is a new stream.
    fn stream(&mut self, stream: Stream, head: &str, piece: &str) -> String {
        let mut out = String::new();
        if self.streaming.as_ref() != Some(&stream) {
            out.push_str(&self.close());
            out.push_str(&format!("{}{}", self.prefix, lines(head)));
            self.streaming = Some(stream);
        }
        // A new line of the model's text starts under the same head.
        let indent = format!("\n{}{}", self.prefix, " ".repeat(head.chars().count()));
        out.push_str(&lines(piece).replace('\n', &indent));
        out
    }
}

/// `text` printable, its line breaks kept.
fn lines(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.chars()
                .map(|c| if c.is_control() { '\u{fffd}' } else { c })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe(event: &RunEvent) -> Option<String> {
    match event {
        RunEvent::AgentStarted { path } => Some(format!("[{path}] started")),
        RunEvent::ModelCall { .. }
        | RunEvent::TextDelta { .. }
        | RunEvent::ToolArgumentsDelta { .. } => None,
        RunEvent::ToolCall { path, tool } => Some(format!("[{path}] → {tool}")),
        RunEvent::ToolResult {
            path,
            tool,
            ok,
            replayed,
            detail,
            denied,
        } => Some(format!(
            "[{path}] ← {tool} {}{}{}",
            match (ok, denied) {
                (true, _) => "ok",
                (false, true) => "denied",
                (false, false) => "error",
            },
            detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default(),
            if *replayed { " (replayed)" } else { "" }
        )),
        RunEvent::ApprovalWaiting {
            path,
            tool,
            approval_id,
            reason,
        } => Some(format!(
            "[{path}] {tool} waits for approval {approval_id}: {reason}\n    approve: baton approvals approve {approval_id}    reject: baton approvals reject {approval_id} --reason TEXT"
        )),
        RunEvent::ToolStep { path, tool, step } => Some(format!(
            "[{path}]   {tool}: {}",
            step["summary"].as_str().unwrap_or("(a step)")
        )),
        RunEvent::AgentFinished { path } => Some(format!("[{path}] finished")),
    }
}
