use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{AgentError, Result};

const DEFAULT_MAX_TURNS: u32 = 20;

/// An agent: who it is, what it may call, how long it may go on. Defined in code or in a TOML
/// file under `agents/` (the four roles ship that way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Name, e.g. `builder`; its tool name as a sub-agent is `agent_<name>`.
    pub name: String,
    /// What it does, shown to an agent that may call it.
    #[serde(default)]
    pub description: String,
    /// Its system prompt.
    pub instructions: String,
    /// Model name; default: the runner's.
    #[serde(default)]
    pub model: Option<String>,
    /// The API its model is asked through (`chat` or `responses`), for a model served only
    /// by one of them; default: the configured one.
    #[serde(default)]
    pub api: Option<crate::Api>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Most model turns before the run fails (default 20).
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Tools it may call (names from the gate's registry).
    #[serde(default)]
    pub tools: Vec<String>,
    /// Agents it may call as tools. A sub-agent sees only the task it is given, never the
    /// caller's conversation.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Agents it may hand the conversation over to (`transfer_to_<name>`): the other agent
    /// takes over the whole conversation and answers in its place.
    #[serde(default)]
    pub handoffs: Vec<String>,
    /// JSON Schema its final answer must fit (a JSON object); absent: free text.
    #[serde(default)]
    pub output_schema: Option<serde_json::Value>,
    /// Checks on its final answer.
    #[serde(default)]
    pub guardrails: Guardrails,
}

/// Checks on an agent's final answer, applied before anyone sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrails {
    /// Refuse an answer containing any of these strings (secrets, markers).
    #[serde(default)]
    pub deny_output_containing: Vec<String>,
    /// Refuse an answer longer than this many characters.
    #[serde(default)]
    pub max_output_chars: Option<usize>,
}

fn default_max_turns() -> u32 {
    DEFAULT_MAX_TURNS
}

impl Agent {
    /// An agent with just a name and instructions.
    pub fn new(name: &str, instructions: &str) -> Agent {
        Agent {
            name: name.into(),
            description: String::new(),
            instructions: instructions.into(),
            model: None,
            api: None,
            temperature: None,
            max_turns: DEFAULT_MAX_TURNS,
            tools: Vec::new(),
            agents: Vec::new(),
            handoffs: Vec::new(),
            output_schema: None,
            guardrails: Guardrails::default(),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |message: String| AgentError::Definition {
            agent: self.name.clone(),
            message,
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(bad(
                "name must be lowercase letters, digits, `_` or `-`".into()
            ));
        }
        if self.instructions.trim().is_empty() {
            return Err(bad("instructions are empty".into()));
        }
        if self.max_turns == 0 {
            return Err(bad("max_turns must be at least 1".into()));
        }
        if let Some(schema) = &self.output_schema
            && schema.get("type").and_then(|t| t.as_str()) != Some("object")
        {
            return Err(bad(
                "output_schema must be a JSON Schema of `type: object`".into()
            ));
        }
        if let Some(schema) = &self.output_schema {
            crate::output::compile(schema).map_err(bad)?;
        }
        Ok(())
    }
}

/// The agents a runner knows, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSet {
    agents: BTreeMap<String, Agent>,
    /// Names served by another agent (`builder` → `codex-builder`).
    serving: BTreeMap<String, String>,
}

impl AgentSet {
    /// Add `agent`, replacing one of the same name.
    pub fn insert(&mut self, agent: Agent) -> Result<()> {
        agent.check()?;
        self.agents.insert(agent.name.clone(), agent);
        Ok(())
    }

    /// Load every `*.toml` in `dir`.
    pub fn load_dir(dir: &Path) -> Result<AgentSet> {
        let io = |source| AgentError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        let mut set = AgentSet::default();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| AgentError::Io {
                path: file.clone(),
                source,
            })?;
            let agent: Agent = toml::from_str(&text).map_err(|e| AgentError::Definition {
                agent: file.display().to_string(),
                message: e.to_string(),
            })?;
            set.insert(agent)?;
        }
        set.check_references()?;
        Ok(set)
    }

    /// The roles Baton ships (`agents/roles/*.toml`): manager, builder, tester, reviewer, and
    /// codex-builder (a builder that hands its task to Codex).
    pub fn builtin() -> Result<AgentSet> {
        let mut set = AgentSet::default();
        for (file, text) in [
            ("manager.toml", include_str!("../roles/manager.toml")),
            ("builder.toml", include_str!("../roles/builder.toml")),
            ("tester.toml", include_str!("../roles/tester.toml")),
            ("reviewer.toml", include_str!("../roles/reviewer.toml")),
            (
                "codex-builder.toml",
                include_str!("../roles/codex-builder.toml"),
            ),
        ] {
            let agent: Agent = toml::from_str(text).map_err(|e| AgentError::Definition {
                agent: file.into(),
                message: e.to_string(),
            })?;
            set.insert(agent)?;
        }
        set.check_references()?;
        Ok(set)
    }

    /// Every sub-agent an agent names exists.
    pub fn check_references(&self) -> Result<()> {
        for agent in self.agents.values() {
            if let Some(missing) = agent
                .agents
                .iter()
                .chain(&agent.handoffs)
                .find(|a| !self.agents.contains_key(*a))
            {
                return Err(AgentError::Definition {
                    agent: agent.name.clone(),
                    message: format!("calls agent `{missing}`, which is not defined"),
                });
            }
        }
        Ok(())
    }

    /// Let agent `by` take the tasks given to `name` (the manager's `agent_builder` handed to
    /// `codex-builder`): delegations to `name` reach `by`, which acts as itself. A set with no
    /// `name` (a folder of other agents) has nothing to hand over; a missing `by` is an error.
    pub fn serve_as(&mut self, name: &str, by: &str) -> Result<()> {
        if !self.agents.contains_key(name) || name == by {
            return Ok(());
        }
        if !self.agents.contains_key(by) {
            return Err(AgentError::Definition {
                agent: by.into(),
                message: format!(
                    "no such agent to serve as `{name}` (known: {})",
                    self.agents.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        self.serving.insert(name.to_owned(), by.to_owned());
        Ok(())
    }

    /// The agent named `name` (or the one serving as it).
    pub fn get(&self, name: &str) -> Result<&Agent> {
        let name = self.serving.get(name).map_or(name, String::as_str);
        self.agents.get(name).ok_or_else(|| AgentError::Definition {
            agent: name.into(),
            message: format!(
                "no such agent (known: {})",
                self.agents.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.agents.keys().map(String::as_str).collect()
    }
}
