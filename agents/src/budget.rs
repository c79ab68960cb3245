//! What a run may spend on its models, and what it has spent: tokens summed per run and per
//! agent from every model turn (replayed turns included, so a resumed run counts what it
//! spent before), and the cost at the configured prices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Usage;

/// A model's prices, per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_mtok: f64,
    /// Per million completion tokens.
    pub output_per_mtok: f64,
}

/// What one run may spend on its model turns. A run stops before its next model call once it
/// has reached either limit; the turn that crossed the line is kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Most tokens (prompt and completion) the run's model turns may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most the run's model turns may cost, in the prices' currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    /// Prices per model name; a cost limit needs the price of every model the run asks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, Price>,
}

/// Tokens (and their cost, when priced) of some model turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// Model turns.
    pub turns: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Both.
    pub total_tokens: u64,
    /// At the configured prices; `None` when a model used has no price.
    pub cost: Option<f64>,
}

impl Spent {
    fn add(&mut self, usage: Usage, price: Option<Price>) {
        self.turns += 1;
        // Counts come from servers: summed without overflowing, whatever they say.
        self.input_tokens = self.input_tokens.saturating_add(usage.prompt_tokens);
        self.output_tokens = self.output_tokens.saturating_add(usage.completion_tokens);
        self.total_tokens = self.input_tokens.saturating_add(self.output_tokens);
        let turn_cost = price.map(|p| {
            (usage.prompt_tokens as f64 * p.input_per_mtok
                + usage.completion_tokens as f64 * p.output_per_mtok)
                / 1_000_000.0
        });
        self.cost = match (self.turns, self.cost, turn_cost) {
            (1, _, cost) => cost,
            (_, Some(sum), Some(cost)) => Some(sum + cost),
            (_, _, _) => None,
        };
    }
}

/// What a run's model turns used: in all and per agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUsage {
    /// The whole run.
    #[serde(flatten)]
    pub run: Spent,
    /// Per agent name.
    pub agents: BTreeMap<String, Spent>,
}

impl RunUsage {
    /// Count one model turn of `agent`, asking `model`.
    pub(crate) fn add(&mut self, agent: &str, model: &str, usage: Usage, budget: &Budget) {
        let price = budget.prices.get(model).copied();
        self.run.add(usage, price);
        self.agents
            .entry(agent.to_owned())
            .or_default()
            .add(usage, price);
    }

    /// Why the run may not ask `model` for another turn, if it may not.
    pub(crate) fn reached(&self, budget: &Budget, model: &str) -> Option<String> {
        if let Some(max) = budget.max_tokens
            && self.run.total_tokens >= max
        {
            return Some(format!(
                "{} tokens used of a budget of {max}",
                self.run.total_tokens
            ));
        }
        let max = budget.max_cost?;
        if !budget.prices.contains_key(model) {
            return Some(format!(
                "a cost budget of {max} is set, but model `{model}` has no price"
            ));
        }
        match self.run.cost {
            Some(cost) if cost >= max => Some(format!("{cost:.6} spent of a budget of {max}")),
            Some(_) => None,
            None if self.run.turns == 0 => None,
            None => Some(format!(
                "a cost budget of {max} is set, but a model this run used has no price"
            )),
        }
    }
}

/// A run stopped at a turn boundary because it reached its budget; run it again with a larger
/// budget to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverBudget {
    /// The agent whose next model call was not made.
    pub path: String,
    /// Which limit, in words.
    pub reason: String,
    /// What the run had used.
    pub usage: RunUsage,
}
