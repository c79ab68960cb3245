use std::sync::{Arc, OnceLock};

use baton_kit::{Effect, Tool, ToolContext};
use baton_knowledge::Shelf;
use baton_policies::PolicyStore;
use rmcp::model::ProtocolVersion;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What `baton_info` reports; filled in as the server starts. Paths are kept as display
/// strings: formatting a path (lossy UTF-8) on every call showed up in profiles.
#[derive(Debug)]
pub struct Status {
    /// The data folder, for display.
    pub data_dir: String,
    /// Where the store is, for display (never a password).
    pub store: String,
    /// The knowledge root, for display.
    pub knowledge_root: String,
    /// The knowledge in force.
    pub knowledge: Arc<Shelf>,
    /// Packs and their tool counts, set once the registry is complete.
    pub packs: OnceLock<Vec<PackSummary>>,
    /// The policy in force.
    pub policy: Arc<PolicyStore>,
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
    /// The data folder: this server's local state (and the store, when it is sled).
    pub data_dir: String,
    /// Where runs, approvals and the audit log are kept: the sled store's folder, or the
    /// PostgreSQL database every server pointed at it shares (never its password).
    pub store: String,
    /// Where knowledge packs are read from.
    pub knowledge_root: String,
    /// Knowledge documents loaded.
    pub knowledge_documents: usize,
    /// Why the knowledge root could not be loaded, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_error: Option<String>,
    /// The policy in force and where it came from.
    pub policy: PolicyInfo,
    /// What this host can enforce on the commands tools start (`workspace-write` refuses
    /// commands where there is no backend).
    pub confinement: baton_sop::HostConfinement,
}

/// The policy in force, as `baton_info` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PolicyInfo {
    /// `read-only`, `workspace-write` or `danger-full-access`.
    pub sandbox: String,
    /// `untrusted`, `on-request` or `never`.
    pub approval: String,
    /// Where `workspace-write` allows writes.
    pub writable_roots: Vec<String>,
    /// Per-tool rules in force.
    pub rules: usize,
    /// How long approvals wait and stay usable.
    pub approval_ttl: String,
    /// Why `danger-full-access` was granted, when it is in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_access_reason: Option<String>,
    /// The policy file watched.
    pub file: Option<String>,
    /// `file`, or `built-in defaults` while the file does not exist.
    pub source: String,
    /// When the policy in force was loaded.
    pub loaded_at: String,
    /// Why the file's newest version is not in force (it is broken), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
        let knowledge_documents = status.knowledge.current().documents().len();
        let knowledge_error = status.knowledge.error();
        Ok(Info {
            name: "baton".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol_versions: ProtocolVersion::KNOWN_VERSIONS
                .iter()
                .map(ToString::to_string)
                .collect(),
            packs: status.packs.get().cloned().unwrap_or_default(),
            data_dir: status.data_dir.clone(),
            store: status.store.clone(),
            knowledge_root: status.knowledge_root.clone(),
            knowledge_documents,
            knowledge_error,
            policy: {
                let p = status.policy.status();
                PolicyInfo {
                    sandbox: p.sandbox,
                    approval: p.approval,
                    writable_roots: p.writable_roots,
                    rules: p.rules,
                    approval_ttl: p.approval_ttl,
                    full_access_reason: p.full_access_reason,
                    file: p.file,
                    source: p.source,
                    loaded_at: p.loaded_at,
                    error: p.error,
                }
            },
            confinement: baton_sop::host_confinement().clone(),
        })
    }
}
