//! `.runs/<run_id>/`: one attempt at a task — `meta.json`, `log.jsonl`, `diff.patch`,
//! `verdicts.jsonl` — in the main checkout, so every worktree's runs are in one place.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fsx::{append, write_atomic};
use crate::{Repo, Result, SopError};

/// `meta.json` of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RunMeta {
    /// The run's id (ULID).
    pub run_id: String,
    /// The task's id.
    pub task: String,
    /// The agent doing the work.
    pub agent: String,
    /// The commit the work started from.
    pub base_ref: Option<String>,
    /// The commit the last diff was taken at.
    pub head_ref: Option<String>,
    /// The worktree, relative to the repository root.
    pub worktree: Option<String>,
    /// The task's branch.
    pub branch: Option<String>,
    /// When the run began (UTC, RFC 3339).
    pub created: String,
    /// Versions of the tools that made it.
    pub tool_versions: std::collections::BTreeMap<String, String>,
}

/// Where a run's files are, relative to the repository root.
pub fn dir(run_id: &str) -> String {
    format!(".runs/{run_id}")
}

impl Repo {
    /// Start a run: write its `meta.json`.
    pub async fn create_run(&self, meta: &RunMeta) -> Result<()> {
        let mut meta = meta.clone();
        meta.tool_versions
            .insert("baton-sop".into(), env!("CARGO_PKG_VERSION").into());
        if let Ok(version) = crate::git::git(&self.home, &["--version"]).await {
            meta.tool_versions.insert("git".into(), version);
        }
        self.write_run_meta(&meta)?;
        self.log_run(
            &meta.run_id,
            "created",
            serde_json::json!({"task": meta.task}),
        )
    }

    /// Read a run's `meta.json`.
    pub fn run_meta(&self, run_id: &str) -> Result<RunMeta> {
        let path = self.state(&format!("{}/meta.json", dir(run_id)));
        let bytes =
            std::fs::read(&path).map_err(|_| SopError::NotFound(format!("run `{run_id}`")))?;
        serde_json::from_slice(&bytes).map_err(|e| SopError::Corrupt {
            file: path,
            detail: e.to_string(),
        })
    }

    /// Replace a run's `meta.json`.
    pub fn write_run_meta(&self, meta: &RunMeta) -> Result<()> {
        let path = self.state(&format!("{}/meta.json", dir(&meta.run_id)));
        let mut bytes =
            serde_json::to_vec_pretty(meta).map_err(|e| SopError::invalid("run", e.to_string()))?;
        bytes.push(b'\n');
        write_atomic(self.files()?, &path, &bytes)
    }

    /// Append an event to a run's `log.jsonl`.
    pub fn log_run(&self, run_id: &str, event: &str, data: serde_json::Value) -> Result<()> {
        let line =
            serde_json::json!({"time": crate::time::now_rfc3339(), "event": event, "data": data});
        append(
            self.files()?,
            &self.state(&format!("{}/log.jsonl", dir(run_id))),
            &format!("{line}\n"),
        )
    }

    /// Append a gate verdict to a run's `verdicts.jsonl`.
    pub fn record_verdict(&self, run_id: &str, verdict: &serde_json::Value) -> Result<()> {
        append(
            self.files()?,
            &self.state(&format!("{}/verdicts.jsonl", dir(run_id))),
            &format!("{verdict}\n"),
        )
    }

    /// Record a test report in a run (`test-report.json`, replacing an earlier one).
    pub fn write_test_report(&self, run_id: &str, report: &crate::TestReport) -> Result<()> {
        let path = self.state(&format!("{}/test-report.json", dir(run_id)));
        let mut bytes = serde_json::to_vec_pretty(report)
            .map_err(|e| SopError::invalid("test_report", e.to_string()))?;
        bytes.push(b'\n');
        write_atomic(self.files()?, &path, &bytes)?;
        self.log_run(
            run_id,
            "test_report",
            serde_json::json!({"passed": report.passed, "command": report.command}),
        )
    }

    /// The newest test report among `runs` (latest run first), if any.
    pub fn latest_test_report(&self, runs: &[String]) -> Option<crate::TestReport> {
        runs.iter().rev().find_map(|run| {
            let bytes =
                std::fs::read(self.state(&format!("{}/test-report.json", dir(run)))).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
    }

    /// The size of a run's `diff.patch`, 0 when it has none.
    pub fn diff_bytes(&self, run_id: &str) -> u64 {
        std::fs::metadata(self.state(&format!("{}/diff.patch", dir(run_id)))).map_or(0, |m| m.len())
    }
}
