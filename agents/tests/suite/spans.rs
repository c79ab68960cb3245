//! The spans an agent run makes, as an OpenTelemetry exporter receives them: each under its
//! parent, named after OpenTelemetry's GenAI conventions, a handoff included, and the gate's
//! phases under each tool call. (The exported trace itself is tested end to end against a
//! real OTLP receiver in `baton-cli`'s `suite::telemetry`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use baton_agents::{Agent, AgentSet, MemoryJournal, ReplayProvider, Runner};
use pretty_assertions::assert_eq;
use serde_json::json;
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use super::common::{TextUpper, invoker};

/// Each span's name (`otel.name` when it has one) under its parent's, in creation order.
#[derive(Clone, Default)]
struct Tree(Arc<Mutex<Vec<(String, String)>>>);

/// A span's name as an exporter names it.
struct Named(String);

struct OtelName<'a>(&'a mut Option<String>);

impl tracing::field::Visit for OtelName<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "otel.name" {
            *self.0 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "otel.name" {
            *self.0 = Some(value.to_owned());
        }
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Tree {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut name = None;
        attrs.record(&mut OtelName(&mut name));
        let span = ctx.span(id).unwrap();
        let name = name.unwrap_or_else(|| span.name().to_owned());
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Named>().map(|n| n.0.clone()))
            .unwrap_or_else(|| "<root>".to_owned());
        span.extensions_mut().insert(Named(name.clone()));
        self.0.lock().unwrap().push((parent, name));
    }
}

#[tokio::test]
async fn a_run_with_a_handoff_makes_its_spans_under_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("handoff.json");
    let call = |id: &str, name: &str, args: serde_json::Value| {
        json!({"message": {"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]},
            "finish_reason": "tool_calls", "usage": {"prompt_tokens": 9, "completion_tokens": 3}})
    };
    let body = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "make it loud"}]},
         "response": call("h1", "transfer_to_shouter", json!({}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "h1"}]},
         "response": call("c2", "text_upper", json!({"text": "make it loud"}))},
        {"request": {"messages": [{"role": "tool", "tool_call_id": "c2"}]},
         "response": {"message": {"role": "assistant", "content": "MAKE IT LOUD"}, "finish_reason": "stop"}}
    ]});
    std::fs::write(&path, body.to_string()).unwrap();
    let mut triage = Agent::new("triage", "Route requests.");
    triage.handoffs = vec!["shouter".into()];
    let mut shouter = Agent::new("shouter", "Upper-case with text_upper.");
    shouter.tools = vec!["text_upper".into()];
    let mut set = AgentSet::default();
    set.insert(triage).unwrap();
    set.insert(shouter).unwrap();
    let upper = TextUpper::default();
    let runner = Runner::new(
        Arc::new(ReplayProvider::load(&path).unwrap()),
        invoker(&upper),
        Arc::new(set),
        Arc::new(MemoryJournal::default()),
        "replay",
    );
    let tree = Tree::default();
    let subscriber = tracing_subscriber::registry().with(tree.clone());
    let _default = tracing::subscriber::set_default(subscriber);
    runner.run("h", "triage", "make it loud").await.unwrap();
    let made = tree.0.lock().unwrap().clone();
    let want: Vec<(String, String)> = [
        ("<root>", "invoke_agent triage"),
        ("invoke_agent triage", "chat replay"),
        ("invoke_agent triage", "handoff triage -> shouter"),
        ("invoke_agent triage", "chat replay"),
        ("invoke_agent triage", "execute_tool text_upper"),
        ("execute_tool text_upper", "gate text_upper"),
        ("gate text_upper", "gate.decide"),
        ("gate text_upper", "gate.execute"),
        ("gate text_upper", "gate.audit"),
        ("invoke_agent triage", "chat replay"),
    ]
    .into_iter()
    .map(|(p, c)| (p.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(made, want);
}
