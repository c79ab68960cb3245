use serde::Serialize;

/// What a run is doing, streamed as it happens (the CLI prints these as live progress).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// An agent started (`path`: `manager`, `manager/builder`…).
    AgentStarted {
        /// Where it sits in the delegation.
        path: String,
    },
    /// Text the model is writing, as it streams in (never replayed: a resumed run shows the
    /// journaled turn whole).
    TextDelta {
        /// The agent.
        path: String,
        /// Its turn, from 1.
        turn: u32,
        /// The next characters.
        text: String,
    },
    /// Arguments of a tool call the model is writing, as they stream in.
    ToolArgumentsDelta {
        /// The agent.
        path: String,
        /// Its turn, from 1.
        turn: u32,
        /// The tool.
        tool: String,
        /// The call's id.
        call_id: String,
        /// The next characters of its arguments.
        delta: String,
    },
    /// A model call was answered (or replayed from the journal).
    ModelCall {
        /// The agent.
        path: String,
        /// Its turn, from 1.
        turn: u32,
        /// Whether the response came from the journal.
        replayed: bool,
    },
    /// A tool is being called.
    ToolCall {
        /// The agent.
        path: String,
        /// The tool.
        tool: String,
    },
    /// A tool answered.
    ToolResult {
        /// The agent.
        path: String,
        /// The tool.
        tool: String,
        /// Whether it succeeded.
        ok: bool,
        /// Whether the result came from the journal.
        replayed: bool,
        /// Why it failed or was refused (the answer's first line), when it did not succeed.
        detail: Option<String>,
        /// Whether the gate denied it (a policy rule, or a refused approval).
        denied: bool,
    },
    /// A running tool reported a step (Codex ran a command, applied a patch).
    ToolStep {
        /// The agent.
        path: String,
        /// The tool.
        tool: String,
        /// The step, as journaled: an object with a `type` and a one-line `summary`.
        step: serde_json::Value,
    },
    /// A call waits for a reviewer.
    ApprovalWaiting {
        /// The agent.
        path: String,
        /// The tool.
        tool: String,
        /// Give this to a reviewer.
        approval_id: String,
        /// Why.
        reason: String,
    },
    /// An agent gave its final answer.
    AgentFinished {
        /// The agent.
        path: String,
    },
}
