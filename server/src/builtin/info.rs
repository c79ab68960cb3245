use std::sync::{Arc, OnceLock};

use baton_kit::{Effect, Tool, ToolContext};
use rmcp::model::ProtocolVersion;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What `baton_info` reports; filled in as the server starts. Paths are kept as display
/// strings: formatting a path (lossy UTF-8) on every call showed up in profiles.
#[derive(Debug)]
pub struct Status {
    /// The data folder, for display.
    pub data_dir: String,
    /// The knowledge root, for display.
    pub knowledge_root: String,
    /// How many knowledge documents were loaded (or why none were).
    pub knowledge: Result<usize, String>,
    /// Packs and their tool counts, set once the registry is complete.
    pub packs: OnceLock<Vec<PackSummary>>,
}

/// Arguments of `baton_info`: none.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoArgs {}

/// What this Baton server is and what it offers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Info {
    /// Always `baton`.
    pub name: String,
    /// The server's version.
    pub version: String,
    /// MCP protocol revisions this server speaks, oldest first.
    pub protocol_versions: Vec<String>,
    /// Tool packs with their tool counts.
    pub packs: Vec<PackSummary>,
    /// Where runs, approvals and the audit log are stored.
    pub data_dir: String,
    /// Where knowledge packs are read from.
    pub knowledge_root: String,
    /// Knowledge documents loaded.
    pub knowledge_documents: usize,
    /// Why the knowledge root could not be loaded, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_error: Option<String>,
}

/// One pack in `baton_info`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PackSummary {
    /// The pack's name.
    pub name: String,
    /// How many tools it has.
    pub tools: usize,
}

/// `baton_info`.
#[derive(Debug)]
pub struct InfoTool {
    status: Arc<Status>,
}

impl InfoTool {
    /// A `baton_info` reporting `status`.
    pub fn new(status: Arc<Status>) -> Self {
        InfoTool { status }
    }
}

impl Tool for InfoTool {
    type Args = InfoArgs;
    type Output = Info;

    const NAME: &'static str = "baton_info";
    const TITLE: Option<&'static str> = Some("Baton server information");
    const DESCRIPTION: &'static str = "Describe this Baton server: version, MCP protocol versions, \
        tool packs with tool counts, data folder and knowledge root. Cheap; call it to check the \
        connection or to see which packs are enabled.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, _args: InfoArgs, _ctx: ToolContext) -> baton_kit::Result<Info> {
        let status = &self.status;
        let (knowledge_documents, knowledge_error) = match &status.knowledge {
            Ok(count) => (*count, None),
            Err(error) => (0, Some(error.clone())),
        };
        Ok(Info {
            name: "baton".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol_versions: ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .map(ToString::to_string)
                .collect(),
            packs: status.packs.get().cloned().unwrap_or_default(),
            data_dir: status.data_dir.clone(),
            knowledge_root: status.knowledge_root.clone(),
            knowledge_documents,
            knowledge_error,
        })
    }
}
