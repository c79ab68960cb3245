use std::sync::Arc;

use baton_kit::{Registry, RegistryError};
use baton_knowledge::Shelf;
use baton_mcp::Served;
use baton_policies::PolicyStore;

use baton_gate::{ApprovalsDecide, ApprovalsList, Clock, SystemClock};

use crate::builtin::{InfoTool, KnowledgeSearch, PackSummary, Status};
use crate::config::Config;
use crate::error::Result;
use baton_gate::Gate;
use baton_runs::{Ownership, StoreHandle};

/// Everything a running Baton shares between its faces: configuration, and what is served —
/// the tools behind the gate, the policy, the store, the knowledge library.
#[derive(Debug)]
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// The gate, the knowledge library and the transports' settings, as every face serves them.
    pub served: Arc<Served>,
    /// What `baton_info` reports.
    pub status: Arc<Status>,
}

type Extra = Box<dyn FnOnce(&mut Registry) -> std::result::Result<(), RegistryError>>;

/// How to build an [`App`].
pub struct AppBuilder {
    config: Config,
    allow_full_access: bool,
    ownership: Ownership,
    map_gate: Option<Box<dyn FnOnce(Gate) -> Gate>>,
    extra: Option<Extra>,
    clock: Arc<dyn Clock>,
    goals: bool,
}

impl std::fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppBuilder")
            .field("ownership", &self.ownership)
            .field("map_gate", &self.map_gate.is_some())
            .finish_non_exhaustive()
    }
}

impl AppBuilder {
    /// Let the policy use `danger-full-access` (`baton serve --allow-full-access`).
    pub fn allow_full_access(mut self, allow: bool) -> Self {
        self.allow_full_access = allow;
        self
    }

    /// Whether this process may own and serve the store (servers) or only borrow it.
    pub fn ownership(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    /// Change the gate once it is built (`baton-bench` turns it off to measure what it costs;
    /// nothing in `baton` does).
    pub fn map_gate(mut self, map: impl FnOnce(Gate) -> Gate + 'static) -> Self {
        self.map_gate = Some(Box::new(map));
        self
    }

    /// Tell the time by `clock` (tests of expiry use a [`baton_gate::ManualClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serve the goal tools (`agents_run`, `runs_*`): runs execute in this process, so only a
    /// server, which lives on after the call, turns them on.
    pub fn goals(mut self, on: bool) -> Self {
        self.goals = on;
        self
    }

    /// Register more tools after the built-in ones (embedders, tests).
    pub fn tools(
        mut self,
        extra: impl FnOnce(&mut Registry) -> std::result::Result<(), RegistryError> + 'static,
    ) -> Self {
        self.extra = Some(Box::new(extra));
        self
    }

    /// Load knowledge and the policy, register every pack, build the gate.
    pub fn build(self) -> Result<App> {
        let config = self.config;
        let knowledge_root = config.knowledge_root();
        let knowledge = Arc::new(Shelf::watch(&knowledge_root)?);
        let policy = Arc::new(PolicyStore::open(
            Some(config.policy_file()),
            self.allow_full_access,
        )?);
        let data_dir = config.data_dir();
        // Made now, not when the store first opens: a folder is hidden from commands only
        // where it exists, and a command that made it first could plant a store of its own
        // (commands are refused while it is missing inside a writable root).
        if let Err(error) = std::fs::create_dir_all(&data_dir) {
            tracing::warn!(%error, dir = %data_dir.display(), "the data folder cannot be made");
        }
        let store = StoreHandle::new(data_dir.clone(), self.ownership)
            .with_options(config.store_options()?);
        let status = Arc::new(Status {
            data_dir: data_dir.display().to_string(),
            store: store.location(),
            knowledge_root: knowledge_root.display().to_string(),
            knowledge: knowledge.clone(),
            packs: Default::default(),
            policy: policy.clone(),
        });

        let mut registry = Registry::new();
        registry.register("baton", InfoTool::new(status.clone()))?;
        registry.register("knowledge", KnowledgeSearch::new(knowledge.clone()))?;
        registry.register(
            "approvals",
            ApprovalsList::new(store.clone(), self.clock.clone()),
        )?;
        registry.register(
            "approvals",
            ApprovalsDecide::new(store.clone(), self.clock.clone()),
        )?;
        baton_sop::register(&mut registry, "sop")?;
        baton_dsp::register(
            &mut registry,
            "dsp",
            Arc::new(baton_dsp::Separator::new(config.separation()?)),
        )?;
        baton_rx::register(
            &mut registry,
            "rx",
            Arc::new(baton_rx::Rules::new(knowledge.clone())),
        )?;
        baton_vision::register(
            &mut registry,
            "vision",
            baton_vision::Thresholds::new(knowledge.clone()),
            Arc::new(baton_vision::Onnx::new(config.onnx()?)),
        )?;
        let goals = self.goals.then(|| crate::goals::Goals::new(config.clone()));
        if let Some(goals) = &goals {
            crate::goals::register(&mut registry, goals)?;
        }
        if let Some(extra) = self.extra {
            extra(&mut registry)?;
        }

        let packs = registry
            .packs()
            .into_iter()
            .map(|(name, tools)| PackSummary { name, tools })
            .collect();
        // Set once, here, before anyone can call `baton_info`.
        let _ = status.packs.set(packs);

        let protected = config
            .own_files()
            .into_iter()
            .map(|path| std::path::absolute(&path).unwrap_or(path))
            .collect();
        let commands = commands_confinement();
        let mut gate = Gate::new(Arc::new(registry), policy, store)
            .protecting(protected)
            .with_clock(self.clock)
            .confining_commands_with(&commands)
            .with_memory_budget(config.file.limits.call_memory_mb.saturating_mul(1 << 20))
            .with_limits(config.file.limits.call_limits())
            .with_uploads(config.file.limits.uploads());
        if config.file.workers.batches {
            let fanout = crate::workers::StoreFanout(gate.store().clone());
            gate = gate.with_fanout(Arc::new(fanout));
        }
        if config.file.telemetry.metrics {
            gate = gate.with_metrics(Arc::default());
        }
        if let Some(map) = self.map_gate {
            gate = map(gate);
        }
        let settings = config.mcp_settings();
        let served = Arc::new(Served {
            gate,
            knowledge,
            settings,
        });
        if let Some(goals) = goals {
            goals.bind(served.clone());
        }
        Ok(App {
            config,
            served,
            status,
        })
    }
}

impl App {
    /// A builder over `config`: default policy options, borrowing the store.
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            allow_full_access: false,
            ownership: Ownership::Borrow,
            map_gate: None,
            extra: None,
            clock: Arc::new(SystemClock),
            goals: false,
        }
    }

    /// [`App::builder`] with every default.
    pub fn build(config: Config) -> Result<App> {
        App::builder(config).build()
    }

    /// The gate every call passes.
    pub fn gate(&self) -> &Gate {
        &self.served.gate
    }

    /// Knowledge documents and rule tables in force, reloaded when their files change.
    pub fn knowledge(&self) -> &Arc<Shelf> {
        &self.served.knowledge
    }

    /// The store the gate records in.
    pub fn store(&self) -> &StoreHandle {
        self.served.gate.store()
    }
}

/// How this host confines commands, in the words the audit records (`bubblewrap 0.8.0`, or
/// why commands are refused under `workspace-write`).
fn commands_confinement() -> String {
    let host = baton_sop::host_confinement();
    match (&host.backend, &host.version, &host.unavailable) {
        (Some(_), Some(version), _) => version.clone(),
        (Some(backend), None, _) => backend.name().to_owned(),
        (None, _, why) => format!(
            "refused under workspace-write (no backend: {})",
            why.as_deref().unwrap_or("unknown")
        ),
    }
}
