use std::sync::Arc;

use baton_kit::{Invocation, Invoker, Outcome, Principal, Role, ToolContext};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::budget::{Budget, OverBudget, RunUsage};
use crate::journal::{Approvals, Journal, JournalKey, Review};
use crate::provider::{Delta, ModelRequest, ModelResponse, Provider};
use crate::{
    Agent, AgentError, AgentSet, Message, ResponseFormat, Result, RunEvent, ToolCall, ToolSpec,
};

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
    budget: Arc<Budget>,
    usage: Arc<std::sync::Mutex<std::collections::HashMap<String, RunUsage>>>,
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
    /// The run reached its budget; run the same run id again with a larger one to go on.
    OverBudget(OverBudget),
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

/// What an agent, one of its tool calls or a model turn came to: an answer, a pause for a
/// reviewer, or a stop at the run's budget.
enum Step<T = String> {
    Answer(T),
    Paused(Interruption),
    OverBudget(OverBudget),
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
            budget: Arc::new(Budget::default()),
            usage: Arc::default(),
        }
    }

    /// Hold every run to `budget`.
    pub fn with_budget(mut self, budget: Budget) -> Runner {
        self.budget = Arc::new(budget);
        self
    }

    /// What run `run_id`'s model turns used so far (those replayed from its journal too).
    pub fn usage(&self, run_id: &str) -> RunUsage {
        self.usage
            .lock()
            .map(|usage| usage.get(run_id).cloned().unwrap_or_default())
            .unwrap_or_default()
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
            Step::OverBudget(stop) => Ok(RunOutcome::OverBudget(stop)),
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
        // Spans follow OpenTelemetry's GenAI conventions (`invoke_agent`, `chat`,
        // `execute_tool`); arguments and messages never appear in them.
        let span = tracing::info_span!(
            "agent",
            %path,
            run_id,
            otel.name = %format_args!("invoke_agent {}", agent.name),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = %agent.name,
        );
        Box::pin(
            async move {
                self.emit(RunEvent::AgentStarted { path: path.clone() });
                let mut talk = self.conversation(path, agent, input)?;
                while talk.turns_left > 0 {
                    talk.turn += 1;
                    talk.turns_left -= 1;
                    if self.cancel.is_cancelled() {
                        return Err(AgentError::Cancelled);
                    }
                    let response = match self.model_turn(run_id, &talk).await? {
                        Step::Answer(response) => response,
                        Step::Paused(paused) => return Ok(Step::Paused(paused)),
                        Step::OverBudget(stop) => return Ok(Step::OverBudget(stop)),
                    };
                    let Message::Assistant {
                        content,
                        tool_calls,
                        refusal,
                        responses_output: _,
                    } = response.message.clone()
                    else {
                        return Err(AgentError::Provider {
                            provider: self.provider.name().into(),
                            message: "the model answered with a non-assistant message".into(),
                        });
                    };
                    talk.messages.push(response.message);
                    if let Some(refusal) = refusal.filter(|_| tool_calls.is_empty()) {
                        return Err(AgentError::Output {
                            agent: talk.agent.name.clone(),
                            message: format!("the model refused to answer: {refusal}"),
                        });
                    }
                    if tool_calls.is_empty() {
                        let answer = finish(&talk.agent, content.unwrap_or_default())?;
                        self.emit(RunEvent::AgentFinished { path: talk.path });
                        return Ok(Step::Answer(answer));
                    }
                    // A handoff is decided by the model's own response, so a replay takes it
                    // again; the other calls of the turn still run.
                    let handoff = tool_calls.iter().find_map(|call| {
                        call.function
                            .name
                            .strip_prefix("transfer_to_")
                            .filter(|target| talk.agent.handoffs.iter().any(|h| h == target))
                            .map(|target| (call.id.clone(), target.to_owned()))
                    });
                    if let Some(halt) = self
                        .calls(run_id, &mut talk, &tool_calls, handoff.as_ref())
                        .await?
                    {
                        return Ok(halt);
                    }
                    if let Some((_, target)) = handoff {
                        tracing::info_span!(
                            "handoff",
                            otel.name = %format_args!("handoff {} -> {target}", talk.agent.name),
                            gen_ai.agent.name = %target,
                        )
                        .in_scope(|| self.hand_off(&mut talk, &target))?;
                    }
                }
                Err(AgentError::MaxTurns {
                    agent: talk.agent.name.clone(),
                    max_turns: talk.agent.max_turns,
                })
            }
            .instrument(span),
        )
    }

    /// A new conversation of `agent` at `path`, starting from `input`.
    fn conversation(&self, path: String, agent: Agent, input: String) -> Result<Conversation> {
        let principal = Arc::new(Principal::new(
            format!("agent:{}", agent.name),
            [Role::Agent],
        ));
        Ok(Conversation {
            tools: self.specs(&agent, &principal)?,
            messages: vec![
                Message::System {
                    content: agent.instructions.clone(),
                },
                Message::User { content: input },
            ],
            turn: 0,
            turns_left: agent.max_turns,
            path,
            agent,
            principal,
        })
    }

    /// The new agent takes over the conversation under its own instructions, tools, identity
    /// and turn budget.
    fn hand_off(&self, talk: &mut Conversation, target: &str) -> Result<()> {
        talk.agent = self.agents.get(target)?.clone();
        talk.path = format!("{}>{target}", talk.path);
        talk.principal = Arc::new(Principal::new(
            format!("agent:{}", talk.agent.name),
            [Role::Agent],
        ));
        talk.tools = self.specs(&talk.agent, &talk.principal)?;
        talk.messages[0] = Message::System {
            content: talk.agent.instructions.clone(),
        };
        talk.turn = 0;
        talk.turns_left = talk.agent.max_turns;
        self.emit(RunEvent::AgentStarted {
            path: talk.path.clone(),
        });
        Ok(())
    }

    /// The model's response for this turn: replayed from the journal, else asked for and
    /// journaled — unless the run has reached its budget. Either way its tokens count.
    async fn model_turn(&self, run_id: &str, talk: &Conversation) -> Result<Step<ModelResponse>> {
        let key = JournalKey::model(&talk.path, talk.turn);
        let model = talk
            .agent
            .model
            .clone()
            .unwrap_or_else(|| self.default_model.clone());
        let replayed = self.journal.recorded(run_id, &key).await?;
        let response = match &replayed {
            Some(value) => serde_json::from_value::<ModelResponse>(value.clone())
                .map_err(|e| AgentError::Journal(format!("{key}: {e}")))?,
            None => {
                if let Some(reason) = self.usage(run_id).reached(&self.budget, &model) {
                    return Ok(Step::OverBudget(OverBudget {
                        path: talk.path.clone(),
                        reason,
                        usage: self.usage(run_id),
                    }));
                }
                let request = ModelRequest {
                    model: model.clone(),
                    messages: talk.messages.clone(),
                    tools: talk.tools.clone(),
                    temperature: talk.agent.temperature,
                    response_format: talk
                        .agent
                        .output_schema
                        .as_ref()
                        .map(|schema| ResponseFormat::for_agent(&talk.agent.name, schema)),
                    api: talk.agent.api,
                };
                let response = self.ask(&request, &talk.path, talk.turn).await?;
                if response.usage.is_none()
                    && (self.budget.max_tokens.is_some() || self.budget.max_cost.is_some())
                {
                    return Err(AgentError::Provider {
                        provider: self.provider.name().into(),
                        message: "the answer reported no token usage: a run held to a budget cannot go on uncounted".into(),
                    });
                }
                let value = serde_json::to_value(&response)
                    .map_err(|e| AgentError::Journal(e.to_string()))?;
                self.journal.record(run_id, &key, &value).await?;
                response
            }
        };
        if let Some(usage) = response.usage
            && let Ok(mut runs) = self.usage.lock()
        {
            runs.entry(run_id.to_owned()).or_default().add(
                &talk.agent.name,
                &model,
                usage,
                &self.budget,
            );
        }
        self.emit(RunEvent::ModelCall {
            path: talk.path.clone(),
            turn: talk.turn,
            replayed: replayed.is_some(),
        });
        Ok(Step::Answer(response))
    }

    /// Ask the provider, under a `chat` span and on the runner's clock, its answer streaming
    /// into [`RunEvent`]s as it comes.
    async fn ask(&self, request: &ModelRequest, path: &str, turn: u32) -> Result<ModelResponse> {
        let span = tracing::info_span!(
            "model_call",
            otel.name = %format_args!("chat {}", request.model),
            gen_ai.operation.name = "chat",
            gen_ai.request.model = %request.model,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let deltas = |delta| {
            self.emit(match delta {
                Delta::Text(text) => RunEvent::TextDelta {
                    path: path.to_owned(),
                    turn,
                    text,
                },
                Delta::ToolArguments {
                    call_id,
                    name,
                    delta,
                } => RunEvent::ToolArgumentsDelta {
                    path: path.to_owned(),
                    turn,
                    tool: name,
                    call_id,
                    delta,
                },
            })
        };
        let response = tokio::select! {
            response = self.provider.stream(request, &deltas).instrument(span.clone()) => response?,
            () = self.cancel.cancelled() => return Err(AgentError::Cancelled),
        };
        if let Some(usage) = &response.usage {
            span.record("gen_ai.usage.input_tokens", usage.prompt_tokens);
            span.record("gen_ai.usage.output_tokens", usage.completion_tokens);
        }
        self.timing.model_us.fetch_add(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.timing
            .model_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(response)
    }

    /// Make a turn's tool calls (concurrently) and answer each in the conversation; the first
    /// halt, if a call waits for a reviewer or reached the budget.
    async fn calls(
        &self,
        run_id: &str,
        talk: &mut Conversation,
        tool_calls: &[ToolCall],
        handoff: Option<&(String, String)>,
    ) -> Result<Option<Step>> {
        let steps = futures::future::join_all(
            tool_calls
                .iter()
                .filter(|call| handoff.is_none_or(|(id, _)| *id != call.id))
                .map(|call| self.tool_call(run_id, talk, call)),
        )
        .await;
        let mut paused = None;
        let mut steps = steps.into_iter();
        for call in tool_calls {
            if let Some((id, target)) = handoff
                && *id == call.id
            {
                talk.messages.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: format!("Transferred to {target}."),
                });
                continue;
            }
            let Some(step) = steps.next() else { break };
            match step? {
                Step::Answer(answer) => talk.messages.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: answer.content,
                }),
                Step::Paused(interruption) => {
                    paused.get_or_insert(Step::Paused(interruption));
                }
                Step::OverBudget(stop) => {
                    paused.get_or_insert(Step::OverBudget(stop));
                }
            }
        }
        Ok(paused)
    }

    /// One tool call of the conversation: its journaled answer when there is one, else made
    /// (through the gate, or by delegating to an agent) and its answer journaled.
    async fn tool_call(
        &self,
        run_id: &str,
        talk: &Conversation,
        call: &ToolCall,
    ) -> Result<Step<ToolAnswer>> {
        let tool = call.function.name.as_str();
        let key = JournalKey::tool(&talk.path, talk.turn, &call.id);
        if let Some(value) = self.journal.recorded(run_id, &key).await? {
            let recorded: ToolAnswer = serde_json::from_value(value)
                .map_err(|e| AgentError::Journal(format!("{key}: {e}")))?;
            self.emit(RunEvent::ToolResult {
                path: talk.path.clone(),
                tool: tool.into(),
                ok: recorded.ok,
                replayed: true,
                detail: recorded.detail(),
                denied: recorded.denied(),
            });
            return Ok(Step::Answer(recorded));
        }
        let step = self.make_call(run_id, talk, &key, call).await?;
        if let Step::Answer(answer) = &step {
            let value =
                serde_json::to_value(answer).map_err(|e| AgentError::Journal(e.to_string()))?;
            self.journal.record(run_id, &key, &value).await?;
            self.emit(RunEvent::ToolResult {
                path: talk.path.clone(),
                tool: tool.into(),
                ok: answer.ok,
                replayed: false,
                detail: answer.detail(),
                denied: answer.denied(),
            });
        }
        Ok(step)
    }

    async fn make_call(
        &self,
        run_id: &str,
        talk: &Conversation,
        key: &JournalKey,
        call: &ToolCall,
    ) -> Result<Step<ToolAnswer>> {
        let name = call.function.name.as_str();
        let args: Value = match serde_json::from_str(&call.function.arguments) {
            Ok(args) => args,
            Err(error) => {
                return Ok(ToolAnswer::refused(format!(
                    "error: the arguments are not JSON ({error}); call `{name}` again with a JSON object"
                )));
            }
        };
        self.emit(RunEvent::ToolCall {
            path: talk.path.clone(),
            tool: name.into(),
        });
        if let Some(sub) = name
            .strip_prefix("agent_")
            .filter(|sub| talk.agent.agents.iter().any(|a| a == sub))
        {
            return self.delegate(run_id, talk, call, sub, &args).await;
        }
        if !talk.agent.tools.iter().any(|t| t == name) {
            return Ok(ToolAnswer::refused(format!(
                "error: tool `{name}` is not available to agent `{}`",
                talk.agent.name
            )));
        }
        let approval_id = match self.journal.recorded(run_id, &key.approval()).await? {
            Some(Value::String(id)) => Some(id),
            Some(_) | None => None,
        };
        if let Some(id) = &approval_id
            && let Some(step) = self.review(&talk.path, name, id).await?
        {
            return Ok(step);
        }
        // Written before the call, so a run that stopped in the middle of it knows: the call
        // may have had its effect, and is not made a second time on resume.
        let intent = key.intent();
        if approval_id.is_none() && self.journal.recorded(run_id, &intent).await?.is_some() {
            return Ok(ToolAnswer::refused(format!(
                "error: this call of `{name}` was started before the run stopped and its outcome is unknown; check the state it would have changed before making it again"
            )));
        }
        self.journal
            .record(run_id, &intent, &json!({"tool": name, "args": args}))
            .await?;
        self.invoke(run_id, talk, key, name, args, approval_id)
            .await
    }

    /// Hand the call's `task` to the agent `sub`: its answer is the call's.
    async fn delegate(
        &self,
        run_id: &str,
        talk: &Conversation,
        call: &ToolCall,
        sub: &str,
        args: &Value,
    ) -> Result<Step<ToolAnswer>> {
        let name = call.function.name.as_str();
        let Some(task) = args.get("task").and_then(Value::as_str) else {
            return Ok(ToolAnswer::refused(format!(
                "error: `{name}` needs a `task` string"
            )));
        };
        let sub_agent = self.agents.get(sub)?.clone();
        // Each delegation is its own conversation, named by the call that made it, so a second
        // call of the same agent is journaled apart from the first.
        let path = format!("{}/{sub}@{}", talk.path, call.id);
        let span = tracing::info_span!(
            "delegate",
            otel.name = %format_args!("delegate {sub}"),
            gen_ai.tool.name = name,
            gen_ai.agent.name = sub,
        );
        // The sub-agent's span is made when its future is: inside this one.
        let sub_run = span.in_scope(|| self.run_agent(run_id, path, sub_agent, task.to_owned()));
        Ok(match sub_run.instrument(span).await? {
            Step::Answer(text) => Step::Answer(ToolAnswer {
                ok: true,
                content: text,
            }),
            Step::Paused(interruption) => Step::Paused(interruption),
            Step::OverBudget(stop) => Step::OverBudget(stop),
        })
    }

    /// Where the approval `id` of a call stands: a step to take instead of the call, or
    /// `None` when it is approved and the call goes ahead.
    async fn review(&self, path: &str, tool: &str, id: &str) -> Result<Option<Step<ToolAnswer>>> {
        let state = match &self.approvals {
            Some(approvals) => approvals.state(id).await?,
            None => Review::Pending,
        };
        Ok(match state {
            Review::Pending => Some(Step::Paused(Interruption {
                path: path.into(),
                tool: tool.into(),
                approval_id: id.to_owned(),
                reason: "still waiting for a reviewer".into(),
            })),
            Review::Rejected(reason) => Some(ToolAnswer::refused(format!(
                "error: a reviewer rejected this call: {reason}"
            ))),
            Review::Expired => Some(ToolAnswer::refused(
                "error: the approval for this call expired before anyone decided; ask again only if it is still needed".into(),
            )),
            Review::Approved => None,
        })
    }

    /// Call the tool through the gate.
    async fn invoke(
        &self,
        run_id: &str,
        talk: &Conversation,
        key: &JournalKey,
        name: &str,
        args: Value,
        approval_id: Option<String>,
    ) -> Result<Step<ToolAnswer>> {
        let span = tracing::info_span!(
            "tool_call",
            tool = name,
            otel.name = %format_args!("execute_tool {name}"),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = name,
        );
        let started = std::time::Instant::now();
        let outcome = self
            .invoker
            .invoke(Invocation {
                principal: talk.principal.clone(),
                tool: name.into(),
                args,
                approval_id,
                context: ToolContext::new(self.cancel.child_token()).with_steps(Arc::new(
                    JournalSteps {
                        runner: self.clone(),
                        run_id: run_id.to_owned(),
                        key: key.clone(),
                        path: talk.path.clone(),
                        tool: name.to_owned(),
                        next: std::sync::atomic::AtomicU32::new(0),
                    },
                )),
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
            Ok(Outcome::Completed(output)) => Ok(Step::Answer(ToolAnswer {
                ok: true,
                content: output.structured.to_string(),
            })),
            Ok(Outcome::PendingApproval(pending)) => {
                let id = Value::String(pending.approval_id.clone());
                self.journal.record(run_id, &key.approval(), &id).await?;
                self.emit(RunEvent::ApprovalWaiting {
                    path: talk.path.clone(),
                    tool: name.into(),
                    approval_id: pending.approval_id.clone(),
                    reason: pending.reason.clone(),
                });
                Ok(Step::Paused(Interruption {
                    path: talk.path.clone(),
                    tool: name.into(),
                    approval_id: pending.approval_id,
                    reason: pending.reason,
                }))
            }
            Err(error) => Ok(ToolAnswer::refused(format!(
                "error ({}): {error}",
                error.kind().as_str()
            ))),
        }
    }
}

/// A tool call's own steps, kept in the run's journal under the call's key as they come.
struct JournalSteps {
    runner: Runner,
    run_id: String,
    key: JournalKey,
    path: String,
    tool: String,
    next: std::sync::atomic::AtomicU32,
}

impl baton_kit::StepSink for JournalSteps {
    fn step(&self, step: Value) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let key = self.key.event(n);
            // A step that cannot be kept is logged, not fatal: the call's result and its audit
            // record are what the run stands on.
            if let Err(error) = self.runner.journal.record(&self.run_id, &key, &step).await {
                tracing::warn!(%error, %key, "tool step not journaled");
            }
            self.runner.emit(RunEvent::ToolStep {
                path: self.path.clone(),
                tool: self.tool.clone(),
                step,
            });
        })
    }
}

/// One agent's conversation: who speaks, under which instructions, how far along.
struct Conversation {
    path: String,
    agent: Agent,
    principal: Arc<Principal>,
    tools: Vec<ToolSpec>,
    messages: Vec<Message>,
    turn: u32,
    turns_left: u32,
}

/// A tool call's answer, as journaled and as the model reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ToolAnswer {
    /// Whether the call did what was asked (a refusal or an error is sent back as text).
    ok: bool,
    /// What the model reads.
    content: String,
}

impl ToolAnswer {
    /// A step answering the call with a refusal the model can act on.
    fn refused(content: String) -> Step<ToolAnswer> {
        Step::Answer(ToolAnswer { ok: false, content })
    }

    /// Why the call failed, in a line; `None` when it succeeded.
    fn detail(&self) -> Option<String> {
        (!self.ok).then(|| {
            let line = self.content.lines().next().unwrap_or_default();
            if line.chars().count() > 300 {
                format!("{}…", line.chars().take(300).collect::<String>())
            } else {
                line.to_owned()
            }
        })
    }

    /// Whether the gate denied the call: a policy rule, or an approval a reviewer refused
    /// (the answers `invoke` and `review` give).
    fn denied(&self) -> bool {
        !self.ok
            && (self.content.starts_with("error (denied)")
                || self
                    .content
                    .starts_with("error: a reviewer rejected this call"))
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
    crate::output::check(schema, &text)
        .map(|value| value.to_string())
        .map_err(refuse)
}
