use std::sync::Arc;

use baton_kit::Registry;
use baton_knowledge::Library;

use crate::builtin::{InfoTool, KnowledgeSearch, PackSummary, Status};
use crate::config::Config;
use crate::error::Result;
use crate::gate::Gate;

/// Everything a running Baton shares between transports: configuration, the tools behind the
/// gate, the knowledge library.
#[derive(Debug)]
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// The gate every call passes.
    pub gate: Gate,
    /// Knowledge documents (also served as MCP resources).
    pub knowledge: Arc<Library>,
    /// What `baton_info` reports.
    pub status: Arc<Status>,
}

impl App {
    /// Load knowledge, register every pack, build the gate.
    pub fn build(config: Config) -> Result<App> {
        App::build_with(config, |_| Ok(()))
    }

    /// [`App::build`], then let `extra` register more tools (embedders and tests).
    pub fn build_with(
        config: Config,
        extra: impl FnOnce(&mut Registry) -> std::result::Result<(), baton_kit::RegistryError>,
    ) -> Result<App> {
        let knowledge_root = config.knowledge_root();
        let (knowledge, knowledge_status) = match Library::load(&knowledge_root) {
            Ok(library) => {
                let count = library.documents().len();
                (library, Ok(count))
            }
            Err(error) => {
                tracing::warn!(%error, "knowledge packs not loaded");
                (Library::default(), Err(error.to_string()))
            }
        };
        let knowledge = Arc::new(knowledge);
        let status = Arc::new(Status {
            data_dir: config.data_dir().display().to_string(),
            knowledge_root: knowledge_root.display().to_string(),
            knowledge: knowledge_status,
            packs: Default::default(),
        });

        let mut registry = Registry::new();
        registry.register("baton", InfoTool::new(status.clone()))?;
        registry.register("knowledge", KnowledgeSearch::new(knowledge.clone()))?;
        extra(&mut registry)?;

        let packs = registry
            .packs()
            .into_iter()
            .map(|(name, tools)| PackSummary { name, tools })
            .collect();
        // Set once, here, before anyone can call `baton_info`.
        let _ = status.packs.set(packs);

        Ok(App {
            config,
            gate: Gate::new(Arc::new(registry)),
            knowledge,
            status,
        })
    }
}
