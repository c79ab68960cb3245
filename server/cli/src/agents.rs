//! The agent runtime's ties to this server: a journal and approval states kept in the store,
//! so runs survive the process and reviewers decide from anywhere.

use baton_runs::StoreApi as _;
use std::collections::HashMap;
use std::sync::Mutex;

use baton_agents::{AgentError, Approvals, Journal, JournalKey, Review};
use baton_runs::now_millis;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use baton_runs::StoreHandle;

/// A run's journal in the store's `journal` tree: each entry `{key, value}`, appended and
/// flushed before the runner goes on. Read once per run, then kept in memory.
#[derive(Debug)]
pub struct StoreJournal {
    store: StoreHandle,
    loaded: Mutex<HashMap<String, HashMap<String, Value>>>,
}

impl StoreJournal {
    /// A journal in `store`.
    pub fn new(store: StoreHandle) -> StoreJournal {
        StoreJournal {
            store,
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

fn journal_error(error: impl std::fmt::Display) -> AgentError {
    AgentError::Journal(error.to_string())
}

impl Journal for StoreJournal {
    fn recorded<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
    ) -> BoxFuture<'a, baton_agents::Result<Option<Value>>> {
        Box::pin(async move {
            let cached = self
                .loaded
                .lock()
                .map_err(journal_error)?
                .get(run_id)
                .map(|steps| steps.get(key.as_str()).cloned());
            if let Some(found) = cached {
                return Ok(found);
            }
            let steps = self
                .store
                .steps(run_id.to_owned())
                .await
                .map_err(journal_error)?;
            let mut map = HashMap::new();
            for step in steps {
                if let (Some(Value::String(key)), Some(value)) =
                    (step.data.get("key"), step.data.get("value"))
                {
                    map.insert(key.clone(), value.clone());
                }
            }
            let found = map.get(key.as_str()).cloned();
            self.loaded
                .lock()
                .map_err(journal_error)?
                .insert(run_id.to_owned(), map);
            Ok(found)
        })
    }

    fn record<'a>(
        &'a self,
        run_id: &'a str,
        key: &'a JournalKey,
        value: &'a Value,
    ) -> BoxFuture<'a, baton_agents::Result<()>> {
        Box::pin(async move {
            self.store
                .append_step(
                    run_id.to_owned(),
                    key.kind().as_str().to_owned(),
                    json!({"key": key.as_str(), "value": value}),
                    now_millis(),
                )
                .await
                .map_err(journal_error)?;
            self.loaded
                .lock()
                .map_err(journal_error)?
                .entry(run_id.to_owned())
                .or_default()
                .insert(key.as_str().to_owned(), value.clone());
            Ok(())
        })
    }
}

/// Approval states from the store.
#[derive(Debug, Clone)]
pub struct StoreApprovals(pub StoreHandle);

impl StoreApprovals {
    /// Return once approval `id` is no longer pending (the gate's one wait on the store's
    /// change feed).
    pub async fn wait(&self, id: &str) {
        baton_gate::wait_for_decision(&self.0, &baton_gate::SystemClock, id).await;
    }
}

impl Approvals for StoreApprovals {
    fn state<'a>(&'a self, id: &'a str) -> BoxFuture<'a, baton_agents::Result<Review>> {
        Box::pin(async move {
            let approval = self
                .0
                .approval(id.to_owned())
                .await
                .map_err(journal_error)?;
            Ok(match approval.state_at(now_millis()) {
                baton_runs::ApprovalState::Pending => Review::Pending,
                baton_runs::ApprovalState::Approved | baton_runs::ApprovalState::Consumed => {
                    Review::Approved
                }
                baton_runs::ApprovalState::Rejected => Review::Rejected(
                    approval
                        .note
                        .clone()
                        .unwrap_or_else(|| "no reason given".into()),
                ),
                baton_runs::ApprovalState::Expired => Review::Expired,
                state @ (baton_runs::ApprovalState::Declined
                | baton_runs::ApprovalState::Cancelled) => Review::Rejected(format!(
                    "{} by {}{}",
                    state.as_str(),
                    approval.decider.as_deref().unwrap_or("the client"),
                    approval
                        .note
                        .as_deref()
                        .map(|note| format!(": {note}"))
                        .unwrap_or_default()
                )),
            })
        })
    }
}

/// The gate as a run's agents use it: bound to the run's repository. A tool that takes a
/// repository (`repo`) gets the run's when the model leaves it out, and may name only it or
/// one of the repository's own worktrees (the SOP's task worktrees); a relative path given to
/// a tool without one is taken inside the repository; an absolute path elsewhere is refused.
/// So a run acts in its repository whatever the process's working directory, and `resume`
/// does too (the repository is in the run's setup).
#[derive(Debug, Clone)]
pub struct RepoBound {
    gate: baton_gate::Gate,
    repo: std::path::PathBuf,
    /// Where else the run may act: the repository's worktrees folder.
    also: Vec<std::path::PathBuf>,
    /// On a worker: who runs the calls, for whom, and the folder name (the run's id) that
    /// marks the run's repository in paths another worker's clone gave it.
    worker: Option<OnWorker>,
}

/// A run executing on a worker (see [`RepoBound::on_worker`]).
#[derive(Debug, Clone)]
struct OnWorker {
    worker: String,
    requester: String,
    marker: String,
}

impl RepoBound {
    /// The gate, bound to `repo` (absolute) and its git repository's worktrees.
    pub async fn new(gate: baton_gate::Gate, repo: std::path::PathBuf) -> RepoBound {
        let common = tokio::process::Command::new("git")
            .args(["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .current_dir(&repo)
            .output()
            .await
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        let also = common
            .and_then(|dir| {
                std::path::Path::new(&dir)
                    .parent()
                    .map(|main| main.join(".worktrees"))
            })
            .into_iter()
            .collect();
        RepoBound {
            gate,
            repo,
            also,
            worker: None,
        }
    }

    /// The run's calls made by `worker` for `requester`, as the audit log records them. The
    /// run's repository is this worker's clone, in a folder named `marker` (the run's id): a
    /// path from another worker's clone of the run — in the journal of a run handed over —
    /// names the same place, and is taken to this clone.
    pub fn on_worker(mut self, worker: &str, requester: &str, marker: &str) -> RepoBound {
        self.worker = Some(OnWorker {
            worker: worker.to_owned(),
            requester: requester.to_owned(),
            marker: marker.to_owned(),
        });
        self
    }

    /// `path` taken to this clone when it is inside another worker's clone of the run.
    fn rebased(&self, path: std::path::PathBuf) -> std::path::PathBuf {
        let Some(on) = &self.worker else { return path };
        if path.starts_with(&self.repo) {
            return path;
        }
        let parts: Vec<_> = path.components().collect();
        match parts
            .iter()
            .position(|part| part.as_os_str() == on.marker.as_str())
        {
            Some(at) => parts[at + 1..]
                .iter()
                .fold(self.repo.clone(), |out, part| out.join(part)),
            None => path,
        }
    }

    fn inside(&self, path: &std::path::Path) -> bool {
        path.starts_with(&self.repo) || self.also.iter().any(|root| path.starts_with(root))
    }

    /// `args` with the repository bound, or why the call may not be made.
    fn bind(&self, tool: &str, mut args: Value) -> Result<Value, baton_kit::ToolError> {
        let Some(descriptor) = self
            .gate
            .registry()
            .get(tool)
            .map(|t| t.descriptor().clone())
        else {
            return Ok(args);
        };
        let outside = |what: &str, path: &std::path::Path| baton_kit::ToolError::Denied {
            rule: "run.repository".into(),
            reason: format!(
                "this run works in `{}`; {what} `{}` is outside it",
                self.repo.display(),
                path.display()
            ),
        };
        if let Some(pointer) = &descriptor.root_arg {
            match args.pointer(pointer).and_then(Value::as_str) {
                None => {
                    let key = pointer.trim_start_matches('/');
                    if let Some(map) = args.as_object_mut() {
                        map.insert(
                            key.to_owned(),
                            Value::String(self.repo.display().to_string()),
                        );
                    } else if args.is_null() {
                        args = serde_json::json!({ key: self.repo.display().to_string() });
                    }
                }
                Some(given) => {
                    let given = self.rebased(normal(&self.repo.join(given)));
                    if !self.inside(&given) {
                        return Err(outside("the repository", &given));
                    }
                    if self.worker.is_some()
                        && let Some(slot) = args.pointer_mut(pointer)
                    {
                        *slot = Value::String(given.display().to_string());
                    }
                }
            }
            return Ok(args);
        }
        // The SOP's tools take the repository as `repo` (a path argument of the writing ones),
        // defaulting to the process's working directory: the run's repository, whatever the
        // working directory is; on a worker, a path from another worker's clone is this one.
        let takes_repo = descriptor
            .input_schema
            .get("properties")
            .and_then(|p| p.get("repo"))
            .is_some();
        if takes_repo && let Some(map) = args.as_object_mut() {
            let repo = match map.get("repo").and_then(Value::as_str) {
                None => self.repo.clone(),
                Some(given) => self.rebased(normal(&self.repo.join(given))),
            };
            // Reads too: a run reads its own repository, not the worker's keys beside it.
            if !self.inside(&repo) {
                return Err(outside("the repository", &repo));
            }
            map.insert("repo".into(), Value::String(repo.display().to_string()));
        }
        for pointer in &descriptor.path_args {
            let Some(slot) = args.pointer_mut(pointer) else {
                continue;
            };
            let Some(given) = slot.as_str() else { continue };
            let path = self.rebased(normal(&self.repo.join(given)));
            if !self.inside(&path) {
                return Err(outside("the path", &path));
            }
            *slot = Value::String(path.display().to_string());
        }
        Ok(args)
    }
}

/// `path` with `.` and `..` taken away lexically (symlinks are the confinement's business).
fn normal(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl baton_kit::Invoker for RepoBound {
    fn tools(&self, principal: &baton_kit::Principal) -> Vec<baton_kit::ToolDescriptor> {
        self.gate.tools(principal)
    }

    fn invoke(
        &self,
        mut invocation: baton_kit::Invocation,
    ) -> BoxFuture<'_, baton_kit::Result<baton_kit::Outcome>> {
        Box::pin(async move {
            if let Some(on) = &self.worker {
                invocation.principal =
                    std::sync::Arc::new(invocation.principal.acting(&on.worker, &on.requester));
            }
            match self.bind(&invocation.tool, invocation.args.clone()) {
                Ok(args) => {
                    invocation.args = args;
                    self.gate.call(invocation).await
                }
                Err(refused) => {
                    self.gate
                        .refuse(
                            &invocation.principal,
                            &invocation.tool,
                            &invocation.args,
                            refused,
                        )
                        .await
                }
            }
        })
    }
}
