use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Priority, SpecTrigger};

/// What a feature is for, in structured form. Every field but `title` may be left out: what
/// is missing becomes a `NEEDS CLARIFICATION` marker in the PRD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Brief {
    /// The feature's title, e.g. "Rate limiting for the public API".
    pub title: String,
    /// The problem, for whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What success looks like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<String>,
    /// What is deliberately out of scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_goals: Vec<String>,
    /// Who uses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// What must be built; each becomes a task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<Requirement>,
    /// How success is measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_metrics: Vec<String>,
    /// Free text (notes, an issue body) kept verbatim as context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One requirement of a brief, or one task to add.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// What, in a line.
    pub title: String,
    /// Details and what done means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How urgent (default `medium`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Why it needs a mini-spec. Left empty, triggers are detected from the words of the
    /// title and description (see `docs/sop.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<SpecTrigger>,
    /// 1-based positions, in the same list, of the requirements this one depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<usize>,
}

/// Words that flag a spec trigger when a requirement does not name its triggers.
const TRIGGER_WORDS: &[(SpecTrigger, &[&str])] = &[
    (
        SpecTrigger::Security,
        &[
            "auth",
            "login",
            "password",
            "token",
            "secret",
            "permission",
            "role",
            "encrypt",
            "credential",
            "session",
            "csrf",
            "xss",
            "injection",
            "security",
            "sanitiz",
        ],
    ),
    (
        SpecTrigger::Migration,
        &[
            "migrat",
            "schema change",
            "backfill",
            "column",
            "table",
            "data model",
        ],
    ),
    (
        SpecTrigger::CrossService,
        &[
            "cross-service",
            "between services",
            "other service",
            "api contract",
            "webhook",
            "queue",
        ],
    ),
    (
        SpecTrigger::NovelPattern,
        &[
            "new pattern",
            "first time",
            "novel",
            "new framework",
            "new library",
        ],
    ),
];

impl Requirement {
    /// The triggers it names, or, when it names none, those its words suggest.
    pub fn spec_triggers(&self) -> Vec<SpecTrigger> {
        if !self.triggers.is_empty() {
            let mut triggers = self.triggers.clone();
            triggers.sort();
            triggers.dedup();
            return triggers;
        }
        let text = format!(
            "{} {}",
            self.title,
            self.description.as_deref().unwrap_or_default()
        )
        .to_lowercase();
        TRIGGER_WORDS
            .iter()
            .filter(|(_, words)| words.iter().any(|word| text.contains(word)))
            .map(|(trigger, _)| *trigger)
            .collect()
    }
}
