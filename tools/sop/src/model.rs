use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Result, SopError};

/// The `schema_version` this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// `tasks/index.json`: every feature's phase and every task, the single source of truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Format version; this build reads 1.
    pub schema_version: u32,
    /// Features by slug.
    #[serde(default)]
    pub features: BTreeMap<String, Feature>,
    /// Tasks, in creation order.
    #[serde(default)]
    pub tasks: Vec<Task>,
}

/// One feature moving through the SOP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Human title.
    pub title: String,
    /// Where the feature stands.
    pub phase: Phase,
    /// The structured brief the PRD was written from, kept so tasks can be generated from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brief: Option<crate::Brief>,
    /// Whether a task is done only with a passing test report (`sop_task_update`'s
    /// `test_report`) besides its diff.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_tests: bool,
    /// When it was created (UTC, RFC 3339).
    pub created: String,
    /// When it last changed (UTC, RFC 3339).
    pub updated: String,
}

/// A task's test result, recorded in its latest run (`test-report.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestReport {
    /// Whether the tests passed.
    pub passed: bool,
    /// The command that ran them.
    pub command: String,
    /// Counts and the first failures.
    pub summary: String,
}

/// The phases a feature passes, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Repository prepared; nothing written yet.
    Scaffold,
    /// PRD written.
    Prd,
    /// Tasks generated.
    Tasks,
    /// Mini-specs written for the tasks that need them.
    Spec,
    /// Action plan written.
    Plan,
    /// Implementation under way.
    Impl,
    /// Every task done or cancelled.
    Done,
}

impl Phase {
    /// Its name in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Scaffold => "scaffold",
            Phase::Prd => "prd",
            Phase::Tasks => "tasks",
            Phase::Spec => "spec",
            Phase::Plan => "plan",
            Phase::Impl => "impl",
            Phase::Done => "done",
        }
    }
}

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started.
    Pending,
    /// Claimed and being worked on.
    InProgress,
    /// Work done, waiting for review.
    Review,
    /// Finished, with a diff behind it.
    Done,
    /// Cannot proceed; see its metadata.
    Blocked,
    /// Dropped.
    Cancelled,
}

impl Status {
    /// Its name in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InProgress => "in_progress",
            Status::Review => "review",
            Status::Done => "done",
            Status::Blocked => "blocked",
            Status::Cancelled => "cancelled",
        }
    }

    /// Done or cancelled: nothing more will happen to the task.
    pub fn is_closed(self) -> bool {
        matches!(self, Status::Done | Status::Cancelled)
    }
}

/// How urgent a task is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// First.
    High,
    /// The default.
    #[default]
    Medium,
    /// Last.
    Low,
}

/// Why a task needs a mini-spec before it is planned.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SpecTrigger {
    /// Touches more than one service or a contract between them.
    CrossService,
    /// Touches authentication, authorization, secrets or untrusted input.
    Security,
    /// Changes stored data or its schema.
    Migration,
    /// Introduces a pattern the codebase does not have yet.
    NovelPattern,
}

impl Priority {
    /// Its name in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

impl SpecTrigger {
    /// Its name in `index.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecTrigger::CrossService => "cross_service",
            SpecTrigger::Security => "security",
            SpecTrigger::Migration => "migration",
            SpecTrigger::NovelPattern => "novel_pattern",
        }
    }
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Collision-free id (ULID): safe to create on any branch.
    pub id: String,
    /// Short display alias, unique in this index (e.g. `T-4K2M`).
    pub alias: String,
    /// The feature it belongs to.
    pub feature: String,
    /// What to do, in a line.
    pub title: String,
    /// What done means.
    #[serde(default)]
    pub description: String,
    /// Where it stands.
    pub status: Status,
    /// Ids of tasks that must be done first.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// How urgent.
    #[serde(default)]
    pub priority: Priority,
    /// Whether a mini-spec must exist (and be fresh) before planning and completion.
    #[serde(default)]
    pub spec_required: bool,
    /// Why a spec is required.
    #[serde(default)]
    pub spec_triggers: Vec<SpecTrigger>,
    /// The mini-spec, relative to the repository root.
    #[serde(default)]
    pub spec_ref: Option<String>,
    /// Who is working on it, while the lease lives.
    #[serde(default)]
    pub claimed_by: Option<Claim>,
    /// Runs (`.runs/<id>/`) of work on this task, oldest first.
    #[serde(default)]
    pub runs: Vec<String>,
    /// Free-form data.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// When it was created (UTC, RFC 3339).
    pub created: String,
    /// When it last changed (UTC, RFC 3339).
    pub updated: String,
}

/// A lease on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The agent holding it.
    pub agent: String,
    /// The task's worktree, relative to the repository root.
    #[serde(default)]
    pub worktree: Option<String>,
    /// The task's branch.
    #[serde(default)]
    pub branch: Option<String>,
    /// When the lease ends (UTC, RFC 3339); after that anyone may claim the task.
    pub lease_expires: String,
}

impl Claim {
    /// Whether the lease is still running at `now`.
    pub fn is_live(&self, now: jiff::Timestamp) -> bool {
        self.lease_expires
            .parse::<jiff::Timestamp>()
            .is_ok_and(|until| until > now)
    }
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: SCHEMA_VERSION,
            features: BTreeMap::new(),
            tasks: Vec::new(),
        }
    }
}

impl Index {
    /// Check what serde cannot: version, unique ids and aliases, known features, dependencies
    /// that exist, parseable leases.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema_version is {}, this build reads {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        let mut ids = BTreeSet::new();
        let mut aliases = BTreeSet::new();
        for (position, task) in self.tasks.iter().enumerate() {
            let at = format!("tasks[{position}]");
            if task.id.is_empty() || !ids.insert(task.id.as_str()) {
                return Err(format!("{at}.id `{}` is empty or repeated", task.id));
            }
            if task.alias.is_empty() || !aliases.insert(task.alias.as_str()) {
                return Err(format!("{at}.alias `{}` is empty or repeated", task.alias));
            }
            if !self.features.contains_key(&task.feature) {
                return Err(format!("{at}.feature `{}` is not a feature", task.feature));
            }
            if let Some(claim) = &task.claimed_by
                && claim.lease_expires.parse::<jiff::Timestamp>().is_err()
            {
                return Err(format!(
                    "{at}.claimed_by.lease_expires `{}` is not an RFC 3339 time",
                    claim.lease_expires
                ));
            }
        }
        for (position, task) in self.tasks.iter().enumerate() {
            if let Some(missing) = task.dependencies.iter().find(|d| !ids.contains(d.as_str())) {
                return Err(format!(
                    "tasks[{position}].dependencies names `{missing}`, which is not a task"
                ));
            }
        }
        Ok(())
    }

    /// The task with this id, alias or unique id prefix.
    pub fn find(&self, key: &str) -> Result<usize> {
        let key = key.trim();
        if let Some(at) = self
            .tasks
            .iter()
            .position(|t| t.id == key || t.alias.eq_ignore_ascii_case(key))
        {
            return Ok(at);
        }
        let matches: Vec<usize> = self
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| key.len() >= 6 && t.id.starts_with(&key.to_ascii_uppercase()))
            .map(|(at, _)| at)
            .collect();
        match matches.as_slice() {
            [at] => Ok(*at),
            [] => Err(SopError::NotFound(format!("task `{key}`"))),
            _ => Err(SopError::invalid(
                "task",
                format!(
                    "`{key}` matches {} tasks; give more of the id",
                    matches.len()
                ),
            )),
        }
    }

    /// The feature named `slug`.
    pub fn feature(&self, slug: &str) -> Result<&Feature> {
        self.features
            .get(slug)
            .ok_or_else(|| SopError::NotFound(format!("feature `{slug}`")))
    }

    /// A display alias not used yet, derived from `id`: `T-` and the id's last characters,
    /// four of them unless those are taken.
    pub fn fresh_alias(&self, id: &str) -> String {
        (4..=id.len())
            .map(|n| format!("T-{}", &id[id.len() - n..]))
            .find(|alias| !self.tasks.iter().any(|t| t.alias == *alias))
            .unwrap_or_else(|| format!("T-{id}"))
    }
}
