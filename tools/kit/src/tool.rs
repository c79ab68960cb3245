use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::schema::{Direction, generate};
use crate::{Attachment, Effect, Result, ToolContext, ToolDescriptor, ToolError};

/// A typed tool. Implement this; register it with [`crate::Registry::register`].
///
/// The argument and output types carry the schemas: their doc comments become the schema
/// descriptions a model reads, so write them for a model.
pub trait Tool: Send + Sync + 'static {
    /// The arguments, deserialized from the call's JSON object.
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    /// The structured result; its schema is the tool's `outputSchema` (must be an object).
    type Output: Serialize + JsonSchema + Send + 'static;

    /// `pack_verb`.
    const NAME: &'static str;
    /// What the tool does and when to use it.
    const DESCRIPTION: &'static str;
    /// What the tool may touch.
    const EFFECT: Effect;
    /// A short human title.
    const TITLE: Option<&'static str> = None;
    /// JSON pointers to the arguments that name paths the tool writes or runs a process in
    /// (a string or an array of strings each). A `write` or `exec` tool that declares none
    /// cannot run in a `workspace-write` sandbox: where it writes could not be checked.
    const PATH_ARGS: &'static [&'static str] = &[];
    /// JSON pointers to the arguments naming files the tool reads (a string or an array of
    /// strings each): the gate also takes an artifact URI or inline `data:` content there and
    /// hands the tool a file.
    const FILE_ARGS: &'static [&'static str] = &[];
    /// The arguments naming where the tool writes its files (each also in `PATH_ARGS`), with
    /// the name the output gets when the caller leaves the argument out and Baton keeps the
    /// files in its store (`stems/` for a folder, `cutout.png` for a file).
    const OUTPUT_ARGS: &'static [(&'static str, &'static str)] = &[];
    /// JSON pointer to the argument relative paths are relative to.
    const ROOT_ARG: Option<&'static str> = None;
    /// Whether a call takes seconds of CPU and much memory: the gate runs only a few at once.
    const HEAVY: bool = false;
    /// Whether a call may take minutes: clients that support MCP tasks run it as one.
    const LONG: bool = false;

    /// Run the tool.
    fn call(
        &self,
        args: Self::Args,
        ctx: ToolContext,
    ) -> impl Future<Output = Result<Self::Output>> + Send;

    /// Content to show beside the structured result (images, links). Most tools have none.
    fn attachments(&self, _output: &Self::Output) -> Vec<Attachment> {
        Vec::new()
    }
}

/// A tool's result: the structured value (matching its output schema) and any attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// The structured result.
    pub structured: serde_json::Value,
    /// Content to show beside it.
    pub attachments: Vec<Attachment>,
}

/// A call whose arguments have been checked, ready to run once the gate allows it.
pub struct BoundCall(Box<dyn FnOnce(ToolContext) -> BoxFuture<'static, Result<ToolOutput>> + Send>);

impl fmt::Debug for BoundCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoundCall")
    }
}

impl BoundCall {
    /// A bound call from any future-producing closure (wrapped MCP tools, fixtures).
    pub fn new<F, Fut>(run: F) -> Self
    where
        F: FnOnce(ToolContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<ToolOutput>> + Send + 'static,
    {
        BoundCall(Box::new(move |ctx| Box::pin(run(ctx))))
    }

    /// Run the call.
    pub fn run(self, ctx: ToolContext) -> BoxFuture<'static, Result<ToolOutput>> {
        (self.0)(ctx)
    }
}

/// A tool with its types erased, as the registry and the gate hold it.
pub trait DynTool: Send + Sync {
    /// The descriptor.
    fn descriptor(&self) -> &ToolDescriptor;
    /// Check `args` against the tool's input type and bind them for a later run. Borrowed, so
    /// the gate keeps the arguments for its policy decision and audit digest.
    fn bind(self: Arc<Self>, args: &serde_json::Value) -> Result<BoundCall>;
}

pub(crate) struct TypedTool<T: Tool> {
    tool: T,
    descriptor: ToolDescriptor,
}

impl<T: Tool> TypedTool<T> {
    pub(crate) fn new(pack: &str, tool: T) -> Self {
        let (input_schema, output_args) = crate::files::input_schema(
            generate::<T::Args>(Direction::Input),
            T::FILE_ARGS,
            T::OUTPUT_ARGS,
        );
        let descriptor = ToolDescriptor {
            name: T::NAME.to_owned(),
            pack: pack.to_owned(),
            title: T::TITLE.map(str::to_owned),
            description: T::DESCRIPTION.to_owned(),
            effect: T::EFFECT,
            input_schema: Arc::new(input_schema),
            output_schema: Some(Arc::new(if T::OUTPUT_ARGS.is_empty() {
                generate::<T::Output>(Direction::Output)
            } else {
                crate::files::output_schema(generate::<T::Output>(Direction::Output))
            })),
            path_args: T::PATH_ARGS.iter().map(|p| (*p).to_owned()).collect(),
            root_arg: T::ROOT_ARG.map(str::to_owned),
            file_args: T::FILE_ARGS.iter().map(|p| (*p).to_owned()).collect(),
            output_args,
            heavy: T::HEAVY,
            long: T::LONG,
        };
        TypedTool { tool, descriptor }
    }
}

impl<T: Tool> DynTool for TypedTool<T> {
    fn descriptor(&self) -> &ToolDescriptor {
        &self.descriptor
    }

    fn bind(self: Arc<Self>, args: &serde_json::Value) -> Result<BoundCall> {
        // MCP lets a client omit `arguments`; that means "no arguments", an empty object.
        let empty;
        let args = if args.is_null() {
            empty = serde_json::Value::Object(Default::default());
            &empty
        } else {
            args
        };
        if !args.is_object() {
            // serde would read a struct from an array by position; MCP arguments are objects.
            return Err(ToolError::invalid_args(
                ".",
                "arguments must be a JSON object",
            ));
        }
        let args: T::Args = serde_path_to_error::deserialize(args).map_err(|error| {
            let path = error.path().to_string();
            ToolError::InvalidArgs {
                path,
                message: error.into_inner().to_string(),
            }
        })?;
        Ok(BoundCall::new(move |ctx| async move {
            let output = self.tool.call(args, ctx).await?;
            let attachments = self.tool.attachments(&output);
            let structured = serde_json::to_value(&output).map_err(|error| {
                ToolError::failed(format!(
                    "tool `{}` produced a result that does not serialize: {error}",
                    T::NAME
                ))
            })?;
            Ok(ToolOutput {
                structured,
                attachments,
            })
        }))
    }
}
