use std::sync::Arc;

use crate::{Effect, JsonObject, OutputArg};

/// Everything a client, a policy or an audit record needs to know about a tool without
/// calling it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDescriptor {
    /// `pack_verb`, lowercase with underscores (OpenAI function names accept no dots).
    pub name: String,
    /// The pack the tool belongs to (`dsp`, `sop`, `baton`…).
    pub pack: String,
    /// A short human title, when the name alone is terse.
    pub title: Option<String>,
    /// What the tool does and when to use it; this is what a model reads.
    pub description: String,
    /// What the tool may touch.
    pub effect: Effect,
    /// JSON Schema of the arguments (root type `object`).
    pub input_schema: Arc<JsonObject>,
    /// JSON Schema of the structured result (root type `object`), when the tool has one.
    pub output_schema: Option<Arc<JsonObject>>,
    /// JSON pointers (`/path`, `/files`) to the arguments naming filesystem paths the tool
    /// writes, or runs a process in; a policy confines them to writable roots.
    pub path_args: Vec<String>,
    /// JSON pointer to the argument that relative paths are relative to (e.g. `/repo`);
    /// without one, the server's working directory.
    pub root_arg: Option<String>,
    /// JSON pointers to the arguments naming files the tool reads; each also takes an artifact
    /// URI or inline `data:` content, which the gate turns into a file for the call.
    pub file_args: Vec<String>,
    /// The arguments naming where the tool writes files; left out, the files go to Baton's
    /// store and the result names them by URI.
    pub output_args: Vec<OutputArg>,
    /// Whether a call takes seconds of CPU and much memory (audio, images): the gate lets only
    /// a few such calls run at once (`[limits] heavy_calls`).
    pub heavy: bool,
    /// Whether a call may take minutes (a whole folder of photos, a separation): MCP clients
    /// that support tasks get a task for it instead of holding the call open.
    pub long: bool,
}
