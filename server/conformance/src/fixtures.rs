//! The fixtures: tools, prompts and resources with the names and contents the suite expects
//! (listed in `fixtures.json`, behaviours in `tools.rs`), and their state.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_kit::{Effect, JsonObject, ToolDescriptor};
use rmcp::ErrorData;
use rmcp::model::{
    LoggingLevel, RequestStateCodec, ServerCapabilities, ServerNotification, SubscriptionFilter,
    Tool,
};
use rmcp::service::{SubscriptionContext, SubscriptionSink};
use serde::Deserialize;

use baton_mcp::descriptor_to_tool;

/// A 1×1 red PNG.
pub(crate) const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg==";
/// A WAV header with no samples (44.1 kHz mono 16-bit).
pub(crate) const WAV_EMPTY: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEARKwAAIhYAQACABAAZGF0YQAAAAA=";

#[derive(Deserialize)]
struct FixtureFile {
    tools: Vec<FixtureTool>,
    elicitation_schemas: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureTool {
    name: String,
    description: String,
    input_schema: Option<JsonObject>,
}

/// Why the fixtures could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConformanceError {
    /// `fixtures.json` does not parse (a bug in this crate).
    #[error("conformance fixtures: {0}")]
    Fixtures(#[from] serde_json::Error),
    /// No randomness for the request-state key.
    #[error("conformance fixtures: no OS randomness for the request-state key: {0}")]
    Random(String),
}

/// The conformance fixtures and their state (log level, subscriptions).
pub struct Conformance {
    pub(crate) descriptors: HashMap<String, ToolDescriptor>,
    pub(crate) tools: Vec<Tool>,
    pub(crate) elicitation_schemas: HashMap<String, serde_json::Value>,
    pub(crate) log_level: Mutex<LoggingLevel>,
    pub(crate) resource_subscriptions: Mutex<HashSet<String>>,
    pub(crate) listeners: Mutex<HashMap<u64, SubscriptionSink>>,
    pub(crate) next_listener: AtomicU64,
    pub(crate) request_state: RequestStateCodec,
}

impl std::fmt::Debug for Conformance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conformance")
            .field("tools", &self.tools.len())
            .finish_non_exhaustive()
    }
}

impl Conformance {
    /// Load the fixtures.
    pub fn new() -> Result<Arc<Conformance>, ConformanceError> {
        let file: FixtureFile = serde_json::from_str(include_str!("fixtures.json"))?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|error| ConformanceError::Random(error.to_string()))?;
        let mut descriptors = HashMap::new();
        let mut tools = Vec::new();
        for fixture in file.tools {
            let input_schema = fixture.input_schema.unwrap_or_else(|| {
                let mut schema = JsonObject::new();
                schema.insert("type".into(), "object".into());
                schema.insert("properties".into(), serde_json::json!({}));
                schema
            });
            let descriptor = ToolDescriptor {
                name: fixture.name.clone(),
                pack: "conformance".into(),
                title: None,
                description: fixture.description,
                effect: Effect::Read,
                input_schema: Arc::new(input_schema),
                output_schema: None,
                path_args: Vec::new(),
                root_arg: None,
                file_args: Vec::new(),
                output_args: Vec::new(),
                heavy: false,
                long: false,
            };
            tools.push(descriptor_to_tool(&descriptor));
            descriptors.insert(fixture.name, descriptor);
        }
        Ok(Arc::new(Conformance {
            descriptors,
            tools,
            elicitation_schemas: file.elicitation_schemas,
            log_level: Mutex::new(LoggingLevel::Debug),
            resource_subscriptions: Mutex::new(HashSet::new()),
            listeners: Mutex::new(HashMap::new()),
            next_listener: AtomicU64::new(0),
            request_state: RequestStateCodec::try_new(key.to_vec())
                .map_err(|e| ConformanceError::Random(e.to_string()))?,
        }))
    }

    /// The server capabilities the suite expects.
    pub fn capabilities(&self) -> ServerCapabilities {
        ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_logging()
            .enable_completions()
            .build()
    }

    /// Fixture tools, as listed.
    pub fn tools(&self) -> &[Tool] {
        &self.tools
    }

    /// Whether `name` is a fixture tool.
    pub fn has_tool(&self, name: &str) -> bool {
        self.descriptors.contains_key(name)
    }

    /// Remember the log level a client set.
    pub fn set_level(&self, level: LoggingLevel) {
        if let Ok(mut current) = self.log_level.lock() {
            *current = level;
        }
    }

    /// `resources/subscribe` (`on`) or `resources/unsubscribe`.
    pub fn subscribe(&self, uri: String, on: bool) -> Result<(), ErrorData> {
        let mut subscriptions = self
            .resource_subscriptions
            .lock()
            .map_err(|_| ErrorData::internal_error("subscription table poisoned", None))?;
        if on {
            subscriptions.insert(uri);
        } else {
            subscriptions.remove(&uri);
        }
        Ok(())
    }

    /// Hold a 2026-07-28 `subscriptions/listen` open until the client ends it.
    pub async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let key = self.next_listener.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.insert(key, context.sink().clone());
        }
        context.cancelled().await;
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.remove(&key);
        }
        Ok(())
    }

    /// Send `notification` to every open listener that accepted it.
    pub(crate) async fn broadcast(&self, notification: ServerNotification) {
        let sinks: Vec<SubscriptionSink> = self
            .listeners
            .lock()
            .map(|listeners| listeners.values().cloned().collect())
            .unwrap_or_default();
        for sink in sinks {
            let _ = sink.send(notification.clone()).await;
        }
    }

    /// The subscription filter accepted for a `subscriptions/listen` request.
    pub fn accept(&self, requested: &SubscriptionFilter) -> SubscriptionFilter {
        requested.supported_by(&self.capabilities())
    }
}
