use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{corrupt, encode};
use crate::store::by_prefix;
use crate::{Result, Store, new_id};

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Working.
    Running,
    /// Paused until a reviewer decides an approval.
    WaitingApproval,
    /// Finished.
    Done,
    /// Finished, but the gate refused some of its calls: it did not do all it was asked.
    DoneWithDenials,
    /// Stopped by an error.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Stopped at a turn boundary because it reached its token or cost budget; resumable
    /// with a larger one.
    OverBudget,
}

impl RunState {
    /// The snake_case name, as runs are listed and reported.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::WaitingApproval => "waiting_approval",
            RunState::Done => "done",
            RunState::DoneWithDenials => "done_with_denials",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::OverBudget => "over_budget",
        }
    }
}

/// A unit of work with a journal: an agent working on a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Time-ordered id.
    pub id: String,
    /// What it is for.
    pub goal: String,
    /// Which agent runs it.
    pub agent: String,
    /// Where it stands.
    pub state: RunState,
    /// Created, ms since the epoch.
    pub created_ms: u64,
    /// Last changed, ms since the epoch.
    pub updated_ms: u64,
    /// Anything else the runner keeps (repository, branch…).
    #[serde(default)]
    pub meta: Value,
    /// Milliseconds spent waiting for reviewers (in `waiting_approval`), so far.
    #[serde(default)]
    pub waited_ms: u64,
}

/// One journaled step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Position in the run, from 1.
    pub seq: u32,
    /// When, ms since the epoch.
    pub time_ms: u64,
    /// `model_call`, `tool_call`, `tool_result`, …
    pub kind: String,
    /// The step's content.
    pub data: Value,
}

/// Tokens a run used, from its journal: its agents' model turns (`model_call` steps'
/// `usage`) and what its tools' helpers reported (`tool_event` steps' `usage`: Codex's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens of the run's own model turns.
    pub model_input: u64,
    /// Completion tokens of the run's own model turns.
    pub model_output: u64,
    /// Input tokens tools reported (Codex's model).
    pub tools_input: u64,
    /// Output tokens tools reported.
    pub tools_output: u64,
    /// All of the above.
    pub total: u64,
    /// The model turns' tokens per agent name (`builder`, whichever manager delegated to it).
    #[serde(default)]
    pub agents: std::collections::BTreeMap<String, AgentTokens>,
}

/// One agent's model tokens in a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTokens {
    /// Model turns.
    pub turns: u64,
    /// Prompt tokens.
    pub input: u64,
    /// Completion tokens.
    pub output: u64,
}

/// The agent that took a journal step, from its key (`manager/builder@call_1/turn-2/model` →
/// `builder`; `triage>billing/turn-1/model` → `billing`).
pub fn agent_of_key(key: &str) -> &str {
    let path = key.split("/turn-").next().unwrap_or(key);
    let last = path.rsplit(['/', '>']).next().unwrap_or(path);
    last.split('@').next().unwrap_or(last)
}

impl TokenUsage {
    /// The sum over `steps`.
    pub fn of(steps: &[Step]) -> TokenUsage {
        let mut sum = TokenUsage::default();
        for step in steps {
            let usage = &step.data["value"]["usage"];
            let count = |key: &str| usage[key].as_u64().unwrap_or(0);
            match step.kind.as_str() {
                // Counts come from servers: summed without overflowing, whatever they say.
                "model_call" => {
                    sum.model_input = sum.model_input.saturating_add(count("prompt_tokens"));
                    sum.model_output = sum.model_output.saturating_add(count("completion_tokens"));
                    let key = step.data["key"].as_str().unwrap_or_default();
                    let agent = sum.agents.entry(agent_of_key(key).to_owned()).or_default();
                    agent.turns += 1;
                    agent.input = agent.input.saturating_add(count("prompt_tokens"));
                    agent.output = agent.output.saturating_add(count("completion_tokens"));
                }
                "tool_event" => {
                    sum.tools_input = sum.tools_input.saturating_add(count("input_tokens"));
                    sum.tools_output = sum.tools_output.saturating_add(count("output_tokens"));
                }
                _ => {}
            }
        }
        sum.total = [sum.model_output, sum.tools_input, sum.tools_output]
            .into_iter()
            .fold(sum.model_input, u64::saturating_add);
        sum
    }
}

impl Run {
    /// A new running run.
    pub(crate) fn new(goal: &str, agent: &str, meta: Value, now_ms: u64) -> Run {
        Run {
            id: new_id(),
            goal: goal.to_owned(),
            agent: agent.to_owned(),
            state: RunState::Running,
            created_ms: now_ms,
            updated_ms: now_ms,
            meta,
            waited_ms: 0,
        }
    }

    /// This run moved to `state` at `now_ms`, counting the time it waited for reviewers.
    pub(crate) fn moved_to(mut self, state: RunState, now_ms: u64) -> Run {
        if self.state == RunState::WaitingApproval {
            self.waited_ms = self
                .waited_ms
                .saturating_add(now_ms.saturating_sub(self.updated_ms));
        }
        self.state = state;
        self.updated_ms = now_ms;
        self
    }
}

impl Store {
    /// Start a run.
    pub fn create_run(&self, goal: &str, agent: &str, meta: Value, now_ms: u64) -> Result<Run> {
        let run = Run::new(goal, agent, meta, now_ms);
        self.put_run(&run)?;
        Ok(run)
    }

    fn put_run(&self, run: &Run) -> Result<()> {
        let bytes = serde_json::to_vec(run).map_err(|e| encode("run", e))?;
        self.inner.runs.insert(run.id.as_bytes(), bytes)?;
        self.inner.runs.flush()?;
        self.changed();
        Ok(())
    }

    /// Change a run's state.
    pub fn set_run_state(&self, id: &str, state: RunState, now_ms: u64) -> Result<Run> {
        let run = self.run(id)?.moved_to(state, now_ms);
        self.put_run(&run)?;
        Ok(run)
    }

    /// The run with this id or unique id prefix.
    pub fn run(&self, id: &str) -> Result<Run> {
        let (_, value) = by_prefix(&self.inner.runs, "run", id)?;
        serde_json::from_slice(&value).map_err(|e| corrupt("run", e))
    }

    /// All runs, newest first.
    pub fn runs(&self) -> Result<Vec<Run>> {
        let mut all = self
            .inner
            .runs
            .iter()
            .map(|entry| {
                let (_, value) = entry?;
                serde_json::from_slice(&value).map_err(|e| corrupt("run", e))
            })
            .collect::<Result<Vec<Run>>>()?;
        all.reverse();
        Ok(all)
    }

    /// Journal a step of run `id` and flush it before returning, so a resumed run never
    /// repeats a step it recorded.
    pub fn append_step(&self, id: &str, kind: &str, data: Value, now_ms: u64) -> Result<Step> {
        let run = self.run(id)?;
        let mut prefix = run.id.into_bytes();
        prefix.push(0);
        let mut seq = match self
            .inner
            .journal
            .scan_prefix(&prefix)
            .keys()
            .next_back()
            .transpose()?
        {
            Some(key) => key
                .get(prefix.len()..)
                .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt("journal key", "not run id, NUL, u32"))?
                .saturating_add(1),
            None => 1,
        };
        loop {
            let step = Step {
                seq,
                time_ms: now_ms,
                kind: kind.to_owned(),
                data: data.clone(),
            };
            let bytes = serde_json::to_vec(&step).map_err(|e| encode("step", e))?;
            let mut key = prefix.clone();
            key.extend_from_slice(&seq.to_be_bytes());
            // Insert only if the slot is free: two steps appended at once get two slots.
            if self
                .inner
                .journal
                .compare_and_swap(key, None as Option<&[u8]>, Some(bytes))?
                .is_ok()
            {
                self.inner.journal.flush()?;
                self.changed();
                return Ok(step);
            }
            seq = seq.saturating_add(1);
        }
    }

    /// The steps of run `id`, in order.
    pub fn steps(&self, id: &str) -> Result<Vec<Step>> {
        let run = self.run(id)?;
        let mut prefix = run.id.into_bytes();
        prefix.push(0);
        self.inner
            .journal
            .scan_prefix(prefix)
            .values()
            .map(|value| serde_json::from_slice(&value?).map_err(|e| corrupt("step", e)))
            .collect()
    }
}
