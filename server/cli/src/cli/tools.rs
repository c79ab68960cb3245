use std::sync::Arc;

use baton_kit::{Invocation, Outcome, ToolContext, ToolDescriptor, ToolError};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Failure, pretty, print};
use crate::app::App;
use crate::config::Config;

/// `baton tools …`
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List the tools this Baton offers.
    List(ListArgs),
    /// Call a tool through the gate and print its structured result as JSON (the progress it
    /// reports goes to stderr: a bar on a terminal, lines otherwise).
    Call(CallArgs),
}

/// `baton tools list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// How to print the list (`json`: the full records).
    #[command(flatten)]
    pub format: super::ListFormat,
}

/// `baton tools call`
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The tool's name, e.g. `knowledge_search`.
    pub name: String,
    /// The arguments as a JSON object.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    pub args: String,
    /// Run a call a reviewer approved: the approval's id (the call's arguments must be the
    /// ones approved).
    #[arg(long, value_name = "ID")]
    pub approval: Option<String>,
}

pub(super) async fn run(config: Config, command: ToolsCommand) -> Result<(), Failure> {
    let app = App::build(config)?;
    match command {
        ToolsCommand::List(args) => list(&app, &args),
        ToolsCommand::Call(args) => call(&app, args).await,
    }
}

fn list(app: &App, args: &ListArgs) -> Result<(), Failure> {
    let descriptors: Vec<&ToolDescriptor> = app.gate().registry().descriptors().collect();
    let text = if args.format.is_json() {
        let values: Vec<Value> = descriptors
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "pack": d.pack,
                    "effect": d.effect,
                    "title": d.title,
                    "description": d.description,
                    "input_schema": *d.input_schema,
                    "output_schema": d.output_schema.as_deref(),
                })
            })
            .collect();
        pretty(&Value::Array(values))?
    } else {
        render_table(&descriptors)
    };
    print(&text)
}

/// One line per tool: name, pack, effect, and the first sentence of its description.
pub fn render_table(descriptors: &[&ToolDescriptor]) -> String {
    let name_width = descriptors
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let pack_width = descriptors
        .iter()
        .map(|d| d.pack.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:name_width$}  {:pack_width$}  {:7}  DESCRIPTION\n",
        "NAME", "PACK", "EFFECT"
    );
    for d in descriptors {
        let summary = d
            .description
            .split(". ")
            .next()
            .unwrap_or("")
            .trim_end_matches('.');
        out.push_str(&format!(
            "{:name_width$}  {:pack_width$}  {:7}  {summary}\n",
            d.name,
            d.pack,
            d.effect.as_str()
        ));
    }
    out
}

async fn call(app: &App, args: CallArgs) -> Result<(), Failure> {
    let arguments: Value = serde_json::from_str(&args.args)
        .map_err(|error| Failure::usage(format!("--args is not valid JSON: {error}")))?;
    if !arguments.is_object() {
        return Err(Failure::usage(
            "--args must be a JSON object, e.g. '{\"query\": \"audit\"}'",
        ));
    }
    let cli = &app.config.file.cli;
    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let shown = Arc::new(super::progress::Shown::for_stderr(&args.name));
    let outcome = app
        .gate()
        .call(Invocation {
            principal: Arc::new(cli.principal()),
            tool: args.name.clone(),
            args: arguments,
            approval_id: args.approval.clone(),
            context: ToolContext::new(cancel).with_progress(shown.clone()),
        })
        .await;
    shown.finish();
    match outcome {
        Ok(Outcome::Completed(output)) => print(&pretty(&output.structured)?),
        Ok(Outcome::PendingApproval(pending)) => {
            print(&pretty(&json!({ "pending_approval": pending }))?)?;
            Err(Failure {
                code: 3,
                message: format!(
                    "`{}` waits for approval {}: {}; once a reviewer approves it, run the same \
                     command with `--approval {}`",
                    args.name, pending.approval_id, pending.reason, pending.approval_id
                ),
            })
        }
        Err(error) => {
            let code = match &error {
                ToolError::InvalidArgs { .. } => 2,
                ToolError::NotFound { what } if *what == format!("tool `{}`", args.name) => 2,
                _ => 1,
            };
            Err(Failure {
                code,
                message: format!("{}: {error}", args.name),
            })
        }
    }
}
