//! Real kit tools behind a registry-backed invoker (the server's gate is tested in the server
//! crate), and helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_kit::{
    Effect, Invocation, Invoker, Outcome, Principal, Registry, Tool, ToolContext, ToolDescriptor,
};
use futures::future::BoxFuture;
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

/// Calls registry tools directly.
pub struct RegistryInvoker(pub Registry);

impl Invoker for RegistryInvoker {
    fn tools(&self, _principal: &Principal) -> Vec<ToolDescriptor> {
        self.0.descriptors().cloned().collect()
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, baton_kit::Result<Outcome>> {
        Box::pin(async move {
            let tool = self
                .0
                .get(&invocation.tool)
                .ok_or_else(|| baton_kit::ToolError::not_found(invocation.tool.clone()))?
                .clone();
            let bound = tool.bind(&invocation.args)?;
            Ok(Outcome::Completed(bound.run(invocation.context).await?))
        })
    }
}

pub fn invoker(upper: &TextUpper) -> Arc<RegistryInvoker> {
    let mut registry = Registry::new();
    registry.register("text", upper.clone()).unwrap();
    Arc::new(RegistryInvoker(registry))
}
