//! Runs started over MCP execute here, in the server process: they outlive the call (and the
//! client) that started them, are journaled like any run, and end with an `outcome` step in
//! the journal that `runs_get` reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use baton_kit::{Principal, Role, ToolError};
use baton_mcp::Served;
use baton_runs::{Run, RunState, StoreApi as _, now_millis};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::run::{ProviderKind, Setup, execute, provider};
use crate::cli::Failure;
use crate::config::Config;

/// The goals this server runs.
#[derive(Debug)]
pub struct Goals {
    config: Config,
    /// Set once the app is built (the tools that use this are registered before the gate).
    served: OnceLock<Arc<Served>>,
    /// The runs executing in this process, by id.
    running: Mutex<HashMap<String, CancellationToken>>,
}

fn failed(message: impl Into<String>) -> ToolError {
    ToolError::failed(message)
}

impl Goals {
    /// Goals run with the model settings of `config`.
    pub fn new(config: Config) -> Arc<Goals> {
        Arc::new(Goals {
            config,
            served: OnceLock::new(),
            running: Mutex::new(HashMap::new()),
        })
    }

    /// Run goals through `served` (its gate and store).
    pub fn bind(&self, served: Arc<Served>) {
        let _ = self.served.set(served);
    }

    pub(super) fn served(&self) -> Result<&Arc<Served>, ToolError> {
        self.served
            .get()
            .ok_or_else(|| failed("this Baton does not run goals (no server is bound)"))
    }

    /// Whether `caller` may see and steer `run`: who started it, or a reviewer or admin.
    pub(super) fn may_steer(caller: &Principal, run: &Run) -> bool {
        caller.has(Role::Reviewer)
            || caller.has(Role::Admin)
            || run.meta.get("requested_by").and_then(|v| v.as_str()) == Some(caller.id.as_str())
    }

    /// The run `id` if `caller` may steer it; a run it may not is reported as not found.
    pub(super) async fn run_for(&self, caller: &Principal, id: &str) -> Result<Run, ToolError> {
        let run = self
            .served()?
            .gate
            .store()
            .run(id.to_owned())
            .await
            .map_err(|e| ToolError::not_found(e.to_string()))?;
        if !Goals::may_steer(caller, &run) {
            return Err(ToolError::not_found(format!("run `{id}`")));
        }
        Ok(run)
    }

    /// Start `goal` for `caller` in `repo`, answered by `cassette` (replayed) or the
    /// configured model — here, or on the store's workers; the new run.
    pub async fn start(
        self: &Arc<Self>,
        caller: &Principal,
        goal: &str,
        agent: &str,
        repo: PathBuf,
        cassette: Option<PathBuf>,
        on_workers: bool,
    ) -> Result<Run, ToolError> {
        // Placed first: a goal that cannot go to workers is refused before it is a run.
        let placed = match on_workers {
            true => {
                let refused = |f: Failure| ToolError::invalid_args("on_workers", f.message);
                let remote = crate::workers::goal_remote(None, &repo)
                    .await
                    .map_err(refused)?;
                if !self.config.file.workers.allows_remote(&remote) {
                    return Err(ToolError::invalid_args(
                        "on_workers",
                        format!(
                            "the repository's remote `{remote}` is not one of `[workers] remotes`: workers push only where the operator allows"
                        ),
                    ));
                }
                let base = crate::workers::remote_head(&remote, &repo)
                    .await
                    .map_err(refused)?;
                Some((remote, base))
            }
            false => None,
        };
        let input = match on_workers {
            true => format!(
                "Goal: {goal}\n\nRepository: the goal's own clone (tools are given it: leave `repo` out)."
            ),
            false => format!(
                "Goal: {goal}\n\nRepository: {} (pass it as `repo` to every tool).",
                repo.display()
            ),
        };
        let setup = Setup {
            input,
            repo,
            provider: if cassette.is_some() {
                ProviderKind::Replay
            } else {
                ProviderKind::Openai
            },
            cassette,
            agents: None,
            builder: self.config.file.agents.builder.clone(),
            requested_by: Some(caller.id.clone()),
            budget: None,
        };
        // A setup that cannot run is refused now, not a failed run later: a cassette the
        // caller named is the caller's error; no model endpoint or a budget that cannot hold
        // is this server's set-up, which the caller cannot fix.
        provider(&self.config, &setup).map_err(|f| match setup.provider {
            ProviderKind::Replay => ToolError::invalid_args("cassette", f.message),
            ProviderKind::Openai => {
                ToolError::unavailable(format!("this server's model is not set up: {}", f.message))
            }
        })?;
        let meta = serde_json::to_value(&setup).map_err(|e| failed(e.to_string()))?;
        let run = self
            .served()?
            .gate
            .store()
            .create_run(goal.to_owned(), agent.to_owned(), meta, now_millis())
            .await
            .map_err(|e| failed(format!("cannot start the run: {e}")))?;
        match placed {
            Some((remote, base)) => {
                let queued = crate::workers::QueuedGoal {
                    run_id: run.id.clone(),
                    goal: goal.to_owned(),
                    branch: format!("goal/{}", run.id.to_ascii_lowercase()),
                };
                let store = self.served()?.gate.store();
                crate::workers::queue_goals(
                    store,
                    &self.config.data_dir(),
                    (&remote, &base),
                    &caller.id,
                    &[queued],
                )
                .await
                .map_err(|f| ToolError::unavailable(f.message))?;
            }
            None => self.spawn(run.id.clone(), agent.to_owned(), setup)?,
        }
        Ok(run)
    }

    /// Whether run `run_id` is queued for workers or runs on one.
    pub async fn on_workers(&self, run_id: &str) -> bool {
        let Ok(served) = self.served() else {
            return false;
        };
        served
            .gate
            .store()
            .work_items(Some(run_id.to_owned()))
            .await
            .is_ok_and(|items| items.iter().any(|item| !item.state.is_final()))
    }

    /// Ask the workers to stop run `run_id` as `caller`; whether it was queued for them and
    /// not over. A run no worker took yet is cancelled at once.
    pub async fn cancel_on_workers(&self, caller: &Principal, run_id: &str) -> bool {
        let Ok(served) = self.served() else {
            return false;
        };
        let store = served.gate.store();
        let Ok(changed) = store
            .cancel_work(run_id.to_owned(), caller.id.clone(), now_millis())
            .await
        else {
            return false;
        };
        if changed
            .iter()
            .any(|item| item.state == baton_runs::WorkState::Cancelled)
        {
            let _ = store
                .set_run_state(run_id.to_owned(), RunState::Cancelled, now_millis())
                .await;
        }
        !changed.is_empty()
    }

    /// Go on with `run` (waiting, failed, or stopped by a restart).
    pub fn resume(self: &Arc<Self>, run: &Run) -> Result<(), ToolError> {
        let setup: Setup = serde_json::from_value(run.meta.clone()).map_err(|e| {
            failed(format!(
                "run {} cannot be resumed: its setup is unreadable ({e})",
                run.id
            ))
        })?;
        self.spawn(run.id.clone(), run.agent.clone(), setup)
    }

    /// Whether `run_id` is executing in this process.
    pub fn is_running(&self, run_id: &str) -> bool {
        self.running
            .lock()
            .is_ok_and(|running| running.contains_key(run_id))
    }

    /// Ask run `run_id` to stop; whether it was executing here.
    pub fn cancel(&self, run_id: &str) -> bool {
        match self
            .running
            .lock()
            .ok()
            .and_then(|running| running.get(run_id).cloned())
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn spawn(
        self: &Arc<Self>,
        run_id: String,
        agent: String,
        setup: Setup,
    ) -> Result<(), ToolError> {
        let token = CancellationToken::new();
        {
            let mut running = self
                .running
                .lock()
                .map_err(|_| failed("the run table is poisoned"))?;
            if running.contains_key(&run_id) {
                return Err(ToolError::invalid_args(
                    "run_id",
                    format!("run {run_id} is already running"),
                ));
            }
            running.insert(run_id.clone(), token.clone());
        }
        let this = self.clone();
        // The run goes on after the call that started it answered: its span is a child of
        // that call's (and so of the client's trace, when the client sent one), and sampled
        // with it.
        let traced = baton_gate::trace::current();
        let span = baton_gate::trace::in_scope(traced, || {
            tracing::info_span!(
                "run",
                otel.name = %format_args!("run {agent}"),
                baton.run_id = %run_id,
            )
        });
        tokio::spawn(baton_gate::trace::scoped(
            traced,
            async move {
                let outcome = this.execute(&run_id, &agent, &setup, token).await;
                if let Ok(served) = this.served() {
                    let store = served.gate.store();
                    if let Err(error) = store
                        .append_step(run_id.clone(), "outcome".into(), outcome, now_millis())
                        .await
                    {
                        tracing::warn!(%error, run_id, "the run's outcome was not journaled");
                    }
                }
                if let Ok(mut running) = this.running.lock() {
                    running.remove(&run_id);
                }
            }
            .instrument(span),
        ));
        Ok(())
    }

    /// Execute one run to its end; its outcome as `runs_get` reports it.
    async fn execute(
        &self,
        run_id: &str,
        agent: &str,
        setup: &Setup,
        cancel: CancellationToken,
    ) -> serde_json::Value {
        let Ok(served) = self.served() else {
            return json!({"state": "failed", "error": "no server is bound"});
        };
        let short = run_id
            .get(run_id.len().saturating_sub(6)..)
            .unwrap_or(run_id);
        let label = Some(format!("[run …{short}]"));
        let result = match provider(&self.config, setup) {
            Ok(model) => {
                execute(
                    served, model, run_id, agent, setup, false, label, cancel, None,
                )
                .await
            }
            Err(failure) => Err(failure),
        };
        match result {
            Ok(done) => done,
            Err(failure) => {
                let store = served.gate.store();
                let state = match store.run(run_id.to_owned()).await.map(|r| r.state) {
                    Ok(RunState::Cancelled) => "cancelled",
                    _ => {
                        let _ = store
                            .set_run_state(run_id.to_owned(), RunState::Failed, now_millis())
                            .await;
                        "failed"
                    }
                };
                json!({"state": state, "error": failure.message})
            }
        }
    }
}
