//! A real git repository in a temporary folder and the pack's tools called by name, with JSON
//! arguments, as the server's gate calls them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use baton_kit::{Principal, Registry, Role, ToolContext, ToolError};
use baton_test_support::git;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub registry: Registry,
}

impl Fixture {
    /// A repository with one commit (`README.md`, `src/lib.rs`).
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("README.md"), "# demo\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub fn hello() {}\n").unwrap();
        std::fs::write(root.join(".gitignore"), ".runs/\n").unwrap();
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "init"]);
        let mut registry = Registry::new();
        baton_sop::register(&mut registry, "sop").unwrap();
        Fixture { dir, registry }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    pub fn repo(&self) -> String {
        self.root().display().to_string()
    }

    /// Call `tool` with `args` (the repository is added unless `args` names one), as the
    /// agent `args` names (each agent is its own principal), else as `tester`.
    pub async fn try_call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let caller = args
            .get("agent")
            .and_then(Value::as_str)
            .unwrap_or("tester")
            .to_owned();
        self.try_call_as(&caller, tool, args).await
    }

    /// Call `tool` with `args` as the principal `caller`.
    pub async fn try_call_as(
        &self,
        caller: &str,
        tool: &str,
        args: Value,
    ) -> Result<Value, ToolError> {
        self.try_call_in(None, caller, tool, args).await
    }

    /// Call `tool` with `args` as `caller`, confined to `sandbox` as the gate would.
    pub async fn try_call_in(
        &self,
        sandbox: Option<baton_kit::Sandbox>,
        caller: &str,
        tool: &str,
        mut args: Value,
    ) -> Result<Value, ToolError> {
        if args.get("repo").is_none() {
            args["repo"] = Value::String(self.repo());
        }
        let tool = self
            .registry
            .get(tool)
            .unwrap_or_else(|| panic!("no tool {tool}"))
            .clone();
        let principal = Arc::new(Principal::new(caller, [Role::Agent]));
        let mut ctx = ToolContext::new(CancellationToken::new()).with_principal(principal);
        if let Some(sandbox) = sandbox {
            ctx = ctx.with_sandbox(Arc::new(sandbox));
        }
        let bound = tool.bind(&args)?;
        bound.run(ctx).await.map(|out| out.structured)
    }

    pub async fn call(&self, tool: &str, args: Value) -> Value {
        match self.try_call(tool, args.clone()).await {
            Ok(value) => value,
            Err(error) => panic!("{tool} {args}: {error}"),
        }
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.root().join(relative)).unwrap()
    }

    /// The `## ` section headings of a mirror.
    pub fn sections(&self, mirror: &str) -> Vec<String> {
        self.read(mirror)
            .lines()
            .filter(|l| l.starts_with("## "))
            .map(|l| {
                l.split_once(" · ")
                    .map(|x| x.1)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

/// The gate named by a refusal, e.g. `sop.gate.no_diff`.
pub fn rule(error: &ToolError) -> String {
    match error {
        ToolError::Denied { rule, .. } => rule.clone(),
        other => panic!("expected a refusal, got {other}"),
    }
}
