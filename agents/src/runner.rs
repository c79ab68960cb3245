use std::sync::Arc;

use baton_kit::{Invocation, Invoker, Outcome, Principal, Role, ToolContext};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::journal::{Approvals, Journal, Review};
use crate::provider::{ModelRequest, ModelResponse, Provider};
use crate::{Agent, AgentError, AgentSet, Message, Result, RunEvent, ToolCall, ToolSpec};

/// Runs agents: the turn loop, tool calls through the gate (concurrently within a turn),
/// agents as tools, approvals as interruptions, and a journal that makes a run resumable.
#[derive(Clone)]
pub struct Runner {
    provider: Arc<dyn Provider>,
    invoker: Arc<dyn Invoker>,
    agents: Arc<AgentSet>,
    journal: Arc<dyn Journal>,
    approvals: Option<Arc<dyn Approvals>>,
    default_model: String,
    events: Option<UnboundedSender<RunEvent>>,
    cancel: CancellationToken,
    timing: Arc<Clock>,
}

/// Where a runner's time went: model calls, tool calls (through the gate), and the rest —
/// the runtime's own work (journal, scheduling, delegation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Timing {
    /// Time waiting for the model, in microseconds (replayed responses cost none).
    pub model_us: u64,
    /// Time inside tool calls, gate included, in microseconds.
    pub tool_us: u64,
    /// Model calls made (not replayed).
    pub model_calls: u64,
    /// Tool calls made through the gate (not replayed).
    pub tool_calls: u64,
}

#[derive(Debug, Default)]
struct Clock {
    model_us: std::sync::atomic::AtomicU64,
    tool_us: std::sync::atomic::AtomicU64,
    model_calls: std::sync::atomic::AtomicU64,
    tool_calls: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("provider", &self.provider.name())
            .field("agents", &self.agents.names())
            .field("default_model", &self.default_model)
            .finish_non_exhaustive()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// The agent gave its final answer (a JSON object when it has an output schema, else a
    /// string).
    Completed(Value),
    /// A tool call waits for a reviewer; run the same run id again once it is decided.
    Interrupted(Interruption),
}

/// A run paused for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interruption {
    /// The agent whose call waits (`manager/builder`).
    pub path: String,
    /// The tool.
    pub tool: String,
    /// The approval to decide.
    pub approval_id: String,
    /// Why it is needed.
    pub reason: String,
}

enum Step {
    Answer(String),
    Paused(Interruption),
}

impl Runner {
    /// A runner asking `provider`, calling tools through `invoker`, recording in `journal`.
    pub fn new(
        provider: Arc<dyn Provider>,
        invoker: Arc<dyn Invoker>,
        agents: Arc<AgentSet>,
        journal: Arc<dyn Journal>,
        default_model: &str,
    ) -> Runner {
        Runner {
            provider,
            invoker,
            agents,
            journal,
            approvals: None,
            default_model: default_model.into(),
            events: None,
            cancel: CancellationToken::new(),
            timing: Arc::new(Clock::default()),
        }
    }

    /// Where this runner's time went so far (all its runs together).
    pub fn timing(&self) -> Timing {
        use std::sync::atomic::Ordering::Relaxed;
        Timing {
            model_us: self.timing.model_us.load(Relaxed),
            tool_us: self.timing.tool_us.load(Relaxed),
            model_calls: self.timing.model_calls.load(Relaxed),
            tool_calls: self.timing.tool_calls.load(Relaxed),
        }
    }

    /// Stream [`RunEvent`]s to `events`.
    pub fn with_events(mut self, events: UnboundedSender<RunEvent>) -> Runner {
        self.events = Some(events);
        self
    }

    /// Ask `approvals` how a pending approval stands when a run resumes.
    pub fn with_approvals(mut self, approvals: Arc<dyn Approvals>) -> Runner {
        self.approvals = Some(approvals);
        self
    }

    /// Stop when `cancel` fires.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Runner {
        self.cancel = cancel;
        self
    }

    fn emit(&self, event: RunEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// Run `agent` on `input` as run `run_id`. Running the same id again resumes it: recorded
    /// model responses and tool results are replayed, never repeated.
    pub async fn run(&self, run_id: &str, agent: &str, input: &str) -> Result<RunOutcome> {
        let agent = self.agents.get(agent)?.clone();
        let path = agent.name.clone();
        match self
            .run_agent(run_id, path, agent, input.to_owned())
            .await?
        {
            Step::Answer(text) => Ok(RunOutcome::Completed(
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or(Value::String(text)),
            )),
            Step::Paused(interruption) => Ok(RunOutcome::Interrupted(interruption)),
        }
    }

    fn specs(&self, agent: &Agent, principal: &Principal) -> Result<Vec<ToolSpec>> {
        let available = self.invoker.tools(principal);
        let mut specs = Vec::new();
        for name in &agent.tools {
            let descriptor = available.iter().find(|d| d.name == *name).ok_or_else(|| {
                AgentError::Definition {
                    agent: agent.name.clone(),
                    message: format!("tool `{name}` is not registered"),
                }
            })?;
            specs.push(ToolSpec::function(
                name,
                &descriptor.description,
                Value::Object((*descriptor.input_schema).clone()),
            ));
        }
        for name in &agent.handoffs {
            let target = self.agents.get(name)?;
            specs.push(ToolSpec::function(
                &format!("transfer_to_{name}"),
                &format!(
                    "Hand the conversation over to the {name} agent for good. {}",
                    target.description
                ),
                json!({"type": "object", "properties": {"reason": {"type": "string"}}}),
            ));
        }
        for name in &agent.agents {
            let sub = self.agents.get(name)?;
            specs.push(ToolSpec::function(
                &format!("agent_{name}"),
                &format!("Delegate to the {name} agent. {}", sub.description),
                json!({
                    "type": "object",
                    "properties": {"task": {"type": "string", "description": "Everything the agent needs to know: it sees nothing else of this conversation."}},
                    "required": ["task"],
                }),
            ));
        }
        Ok(specs)
    }

    fn run_agent<'a>(
        &'a self,
        run_id: &'a str,
        path: String,
        agent: Agent,
        input: String,
    ) -> BoxFuture<'a, Result<Step>> {
        let span = tracing::info_span!("agent", %path, run_id);
        Box::pin(
            async move {
                let (mut path, mut agent) = (path, agent);
                self.emit(RunEvent::AgentStarted { path: path.clone() });
                let mut principal = Arc::new(Principal::new(
                    format!("agent:{}", agent.name),
                    [Role::Agent],
                ));
                let mut tools = self.specs(&agent, &principal)?;
                let mut messages = vec![
                    Message::System {
                        content: agent.instructions.clone(),
                    },
                    Message::User { content: input },
                ];
                let mut turn = 0;
                let mut turns_left = agent.max_turns;
                while turns_left > 0 {
                    turn += 1;
                    turns_left -= 1;
                    if self.cancel.is_cancelled() {
                        return Err(AgentError::Cancelled);
                    }
                    let request = ModelRequest {
                        model: agent
                            .model
                            .clone()
                            .unwrap_or_else(|| self.default_model.clone()),
                        messages: messages.clone(),
                        tools: tools.clone(),
                        temperature: agent.temperature,
                    };
                    let key = format!("{path}/turn-{turn}/model");
                    let (response, replayed) = match self.journal.recorded(run_id, &key).await? {
                        Some(value) => (
                            serde_json::from_value::<ModelResponse>(value)
                                .map_err(|e| AgentError::Journal(format!("{key}: {e}")))?,
                            true,
                        ),
                        None => {
                            let started = std::time::Instant::now();
                            let response = tokio::select! {
                                response = self.provider.complete(&request) => response?,
                                () = self.cancel.cancelled() => return Err(AgentError::Cancelled),
                            };
                            self.timing.model_us.fetch_add(
                                started.elapsed().as_micros() as u64,
                                std::sync::atomic::Ordering::Relaxed,
                            );
                            self.timing
                                .model_calls
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let value = serde_json::to_value(&response)
                                .map_err(|e| AgentError::Journal(e.to_string()))?;
                            self.journal.record(run_id, &key, &value).await?;
                            (response, false)
                        }
                    };
                    self.emit(RunEvent::ModelCall {
                        path: path.clone(),
                        turn,
                        replayed,
                    });
                    let Message::Assistant {
                        content,
                        tool_calls,
                    } = response.message.clone()
                    else {
                        return Err(AgentError::Provider {
                            provider: self.provider.name().into(),
                            message: "the model answered with a non-assistant message".into(),
                        });
                    };
                    messages.push(response.message);
                    if tool_calls.is_empty() {
                        let answer = finish(&agent, content.unwrap_or_default())?;
                        self.emit(RunEvent::AgentFinished { path: path.clone() });
                        return Ok(Step::Answer(answer));
                    }
                    // A handoff is decided by the model's own response, so a replay takes it
                    // again; the other calls of the turn still run.
                    let handoff = tool_calls.iter().find_map(|call| {
                        call.function
                            .name
                            .strip_prefix("transfer_to_")
                            .filter(|target| agent.handoffs.iter().any(|h| h == target))
                            .map(|target| (call.id.clone(), target.to_owned()))
                    });
                    let steps = futures::future::join_all(
                        tool_calls
                            .iter()
                            .filter(|call| handoff.as_ref().is_none_or(|(id, _)| *id != call.id))
                            .map(|call| {
                                self.tool_call(run_id, &path, &agent, &principal, turn, call)
                            }),
                    )
                    .await;
                    let mut paused = None;
                    let mut steps = steps.into_iter();
                    for call in &tool_calls {
                        if let Some((id, target)) = &handoff
                            && *id == call.id
                        {
                            messages.push(Message::Tool {
                                tool_call_id: call.id.clone(),
                                content: format!("Transferred to {target}."),
                            });
                            continue;
                        }
                        let Some(step) = steps.next() else { break };
                        match step? {
                            Step::Answer(content) => messages.push(Message::Tool {
                                tool_call_id: call.id.clone(),
                                content,
                            }),
                            Step::Paused(interruption) => {
                                paused.get_or_insert(interruption);
                            }
                        }
                    }
                    if let Some(interruption) = paused {
                        return Ok(Step::Paused(interruption));
                    }
                    if let Some((_, target)) = handoff {
                        // The new agent takes over the conversation under its own instructions,
                        // tools, identity and turn budget.
                        agent = self.agents.get(&target)?.clone();
                        path = format!("{path}>{target}");
                        principal = Arc::new(Principal::new(
                            format!("agent:{}", agent.name),
                            [Role::Agent],
                        ));
                        tools = self.specs(&agent, &principal)?;
                        messages[0] = Message::System {
                            content: agent.instructions.clone(),
                        };
                        turn = 0;
                        turns_left = agent.max_turns;
                        self.emit(RunEvent::AgentStarted { path: path.clone() });
                    }
                }
                Err(AgentError::MaxTurns {
                    agent: agent.name.clone(),
                    max_turns: agent.max_turns,
                })
            }
            .instrument(span),
        )
    }

    async fn tool_call(
        &self,
        run_id: &str,
        path: &str,
        agent: &Agent,
        principal: &Arc<Principal>,
        turn: u32,
        call: &ToolCall,
    ) -> Result<Step> {
        let name = call.function.name.as_str();
        let key = format!("{path}/turn-{turn}/tool/{}", call.id);
        if let Some(Value::String(recorded)) = self.journal.recorded(run_id, &key).await? {
            self.emit(RunEvent::ToolResult {
                path: path.into(),
                tool: name.into(),
                ok: !recorded.starts_with("error"),
                replayed: true,
            });
            return Ok(Step::Answer(recorded));
        }
        let key = key.as_str();
        let answer = |text: String| async move {
            self.journal
                .record(run_id, key, &Value::String(text.clone()))
                .await?;
            self.emit(RunEvent::ToolResult {
                path: path.into(),
                tool: name.into(),
                ok: !text.starts_with("error"),
                replayed: false,
            });
            Ok(Step::Answer(text))
        };
        let args: Value = match serde_json::from_str(&call.function.arguments) {
            Ok(args) => args,
            Err(error) => {
                return answer(format!("error: the arguments are not JSON ({error}); call `{name}` again with a JSON object")).await;
            }
        };
        self.emit(RunEvent::ToolCall {
            path: path.into(),
            tool: name.into(),
        });
        if let Some(sub) = name
            .strip_prefix("agent_")
            .filter(|sub| agent.agents.iter().any(|a| a == sub))
        {
            let Some(task) = args.get("task").and_then(Value::as_str) else {
                return answer(format!("error: `{name}` needs a `task` string")).await;
            };
            let sub_agent = self.agents.get(sub)?.clone();
            return match self
                // Each delegation is its own conversation, named by the call that made it, so
                // a second call of the same agent is journaled apart from the first.
                .run_agent(
                    run_id,
                    format!("{path}/{sub}@{}", call.id),
                    sub_agent,
                    task.to_owned(),
                )
                .await?
            {
                Step::Answer(text) => answer(text).await,
                paused @ Step::Paused(_) => Ok(paused),
            };
        }
        if !agent.tools.iter().any(|t| t == name) {
            return answer(format!(
                "error: tool `{name}` is not available to agent `{}`",
                agent.name
            ))
            .await;
        }
        let approval_key = format!("{key}/approval");
        let approval_id = match self.journal.recorded(run_id, &approval_key).await? {
            Some(Value::String(id)) => Some(id),
            Some(_) | None => None,
        };
        if let Some(id) = &approval_id {
            let state = match &self.approvals {
                Some(approvals) => approvals.state(id).await?,
                None => Review::Pending,
            };
            match state {
                Review::Pending => {
                    return Ok(Step::Paused(Interruption {
                        path: path.into(),
                        tool: name.into(),
                        approval_id: id.clone(),
                        reason: "still waiting for a reviewer".into(),
                    }));
                }
                Review::Rejected(reason) => {
                    return answer(format!("error: a reviewer rejected this call: {reason}")).await;
                }
                Review::Expired => {
                    return answer("error: the approval for this call expired before anyone decided; ask again only if it is still needed".into()).await;
                }
                Review::Approved => {}
            }
        }
        // Written before the call, so a run that stopped in the middle of it knows: the call
        // may have had its effect, and is not made a second time on resume.
        let intent_key = format!("{key}/intent");
        if approval_id.is_none() && self.journal.recorded(run_id, &intent_key).await?.is_some() {
            return answer(format!(
                "error: this call of `{name}` was started before the run stopped and its outcome is unknown; check the state it would have changed before making it again"
            ))
            .await;
        }
        self.journal
            .record(run_id, &intent_key, &json!({"tool": name, "args": args}))
            .await?;
        let span = tracing::info_span!("tool_call", tool = name);
        let started = std::time::Instant::now();
        let outcome = self
            .invoker
            .invoke(Invocation {
                principal: principal.clone(),
                tool: name.into(),
                args,
                approval_id,
                context: ToolContext::new(self.cancel.child_token()),
            })
            .instrument(span)
            .await;
        self.timing.tool_us.fetch_add(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.timing
            .tool_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match outcome {
            Ok(Outcome::Completed(output)) => answer(output.structured.to_string()).await,
            Ok(Outcome::PendingApproval(pending)) => {
                self.journal
                    .record(
                        run_id,
                        &approval_key,
                        &Value::String(pending.approval_id.clone()),
                    )
                    .await?;
                self.emit(RunEvent::ApprovalWaiting {
                    path: path.into(),
                    tool: name.into(),
                    approval_id: pending.approval_id.clone(),
                    reason: pending.reason.clone(),
                });
                Ok(Step::Paused(Interruption {
                    path: path.into(),
                    tool: name.into(),
                    approval_id: pending.approval_id,
                    reason: pending.reason,
                }))
            }
            Err(error) => answer(format!("error ({}): {error}", error.kind().as_str())).await,
        }
    }
}

/// Apply the agent's guardrails and output schema to its final answer.
fn finish(agent: &Agent, text: String) -> Result<String> {
    let refuse = |message: String| AgentError::Output {
        agent: agent.name.clone(),
        message,
    };
    if let Some(word) = agent
        .guardrails
        .deny_output_containing
        .iter()
        .find(|word| text.contains(word.as_str()))
    {
        return Err(refuse(format!(
            "it contains `{word}`, which a guardrail denies"
        )));
    }
    if let Some(max) = agent.guardrails.max_output_chars
        && text.chars().count() > max
    {
        return Err(refuse(format!("it is longer than {max} characters")));
    }
    let Some(schema) = &agent.output_schema else {
        return Ok(text);
    };
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let value: Value =
        serde_json::from_str(trimmed).map_err(|e| refuse(format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| refuse("not a JSON object".into()))?;
    let properties = schema.get("properties").and_then(Value::as_object);
    for key in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let Some(field) = object.get(key) else {
            return Err(refuse(format!("`{key}` is required and missing")));
        };
        let expected = properties
            .and_then(|p| p.get(key))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        let fits = match expected {
            Some("string") => field.is_string(),
            Some("boolean") => field.is_boolean(),
            Some("number") => field.is_number(),
            Some("integer") => field.is_i64() || field.is_u64(),
            Some("array") => field.is_array(),
            Some("object") => field.is_object(),
            Some(_) | None => true,
        };
        if !fits {
            return Err(refuse(format!(
                "`{key}` should be of type {}",
                expected.unwrap_or("?")
            )));
        }
    }
    Ok(value.to_string())
}
