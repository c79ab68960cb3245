//! Real kit tools behind the real gate, and helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_kit::{Effect, Registry, Tool, ToolContext};
use baton_test_support::GateFixture;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `text_upper`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpperArgs {
    /// Text to shout.
    pub text: String,
}

/// Result of `text_upper`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Upper {
    /// The text in capitals.
    pub text: String,
}

/// A tool with a visible side effect: it counts its runs.
#[derive(Debug, Clone, Default)]
pub struct TextUpper {
    pub runs: Arc<AtomicUsize>,
}

impl Tool for TextUpper {
    type Args = UpperArgs;
    type Output = Upper;
    const NAME: &'static str = "text_upper";
    const DESCRIPTION: &'static str = "Upper-cases text.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: UpperArgs, _ctx: ToolContext) -> baton_kit::Result<Upper> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(Upper {
            text: args.text.to_uppercase(),
        })
    }
}

/// A real gate over a registry holding `upper`: default policy (reads run), audited in a
/// store of its own.
pub fn invoker(upper: &TextUpper) -> Arc<GateFixture> {
    let mut registry = Registry::new();
    registry.register("text", upper.clone()).unwrap();
    Arc::new(GateFixture::new(registry))
}
