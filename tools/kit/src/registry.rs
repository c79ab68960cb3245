use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::tool::TypedTool;
use crate::{DynTool, Tool, ToolDescriptor};

/// Why a tool could not be registered. These are programming errors in a pack, caught at
/// start-up rather than on a client's first call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two tools share a name.
    #[error("tool `{0}` is registered twice")]
    Duplicate(String),
    /// The name is not `pack_verb` in lowercase ASCII with underscores, 1–64 characters.
    #[error(
        "tool name `{0}` must be lowercase `pack_verb` ([a-z][a-z0-9_]*, at most 64 characters)"
    )]
    BadName(String),
    /// A schema's root is not `type: object`, as MCP requires.
    #[error("tool `{tool}`: the {which} schema's root must be `type: object`")]
    SchemaNotObject {
        /// The tool.
        tool: String,
        /// `input` or `output`.
        which: &'static str,
    },
}

/// The tools a process offers, in registration order (packs stay grouped in `tools/list`).
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<Arc<dyn DynTool>>,
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|tool| &tool.descriptor().name))
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Register a typed tool under `pack`.
    pub fn register<T: Tool>(&mut self, pack: &str, tool: T) -> Result<(), RegistryError> {
        self.register_dyn(Arc::new(TypedTool::new(pack, tool)))
    }

    /// Register an already type-erased tool (wrapped MCP tools, fixtures).
    pub fn register_dyn(&mut self, tool: Arc<dyn DynTool>) -> Result<(), RegistryError> {
        let descriptor = tool.descriptor();
        let name = descriptor.name.clone();
        if !valid_name(&name) {
            return Err(RegistryError::BadName(name));
        }
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        if !is_object_schema(&descriptor.input_schema) {
            return Err(RegistryError::SchemaNotObject {
                tool: name,
                which: "input",
            });
        }
        if let Some(output) = &descriptor.output_schema
            && !is_object_schema(output)
        {
            return Err(RegistryError::SchemaNotObject {
                tool: name,
                which: "output",
            });
        }
        self.by_name.insert(name, self.tools.len());
        self.tools.push(tool);
        Ok(())
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynTool>> {
        self.by_name.get(name).map(|&index| &self.tools[index])
    }

    /// Every descriptor, in registration order.
    pub fn descriptors(&self) -> impl Iterator<Item = &ToolDescriptor> {
        self.tools.iter().map(|tool| tool.descriptor())
    }

    /// Pack names with their tool counts, in registration order.
    pub fn packs(&self) -> Vec<(String, usize)> {
        let mut packs: Vec<(String, usize)> = Vec::new();
        for descriptor in self.descriptors() {
            match packs.iter_mut().find(|(pack, _)| *pack == descriptor.pack) {
                Some((_, count)) => *count += 1,
                None => packs.push((descriptor.pack.clone(), 1)),
            }
        }
        packs
    }

    /// How many tools are registered.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_object_schema(schema: &crate::JsonObject) -> bool {
    schema.get("type").and_then(serde_json::Value::as_str) == Some("object")
}
