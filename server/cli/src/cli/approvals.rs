use std::sync::Arc;

use baton_kit::{Invocation, Outcome, ToolContext, ToolErrorKind};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Failure, print};
use crate::app::App;
use crate::config::Config;
use baton_gate::ApprovalView;

/// `baton approvals …`
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals (pending ones by default).
    List(ListArgs),
    /// Approve a pending call; it runs once, when its requester calls again.
    Approve(ApproveArgs),
    /// Reject a pending call, telling the requester why.
    Reject(RejectArgs),
}

/// `baton approvals list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every approval, not only pending ones.
    #[arg(long)]
    pub all: bool,
    /// How to print the list (`json`: the full records).
    #[command(flatten)]
    pub format: super::ListFormat,
}

/// `baton approvals approve`
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The approval id (a unique prefix is enough).
    pub id: String,
    /// A note for the record.
    #[arg(long)]
    pub note: Option<String>,
}

/// `baton approvals reject`
#[derive(Debug, Args)]
pub struct RejectArgs {
    /// The approval id (a unique prefix is enough).
    pub id: String,
    /// Why: sent back to the requester.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

pub(super) async fn run(config: Config, command: ApprovalsCommand) -> Result<(), Failure> {
    let app = App::build(config)?;
    match command {
        ApprovalsCommand::List(args) => {
            let state = if args.all { "all" } else { "pending" };
            let value = call(
                &app,
                "approvals_list",
                json!({ "state": state, "limit": 200 }),
            )
            .await?;
            if args.format.is_json() {
                return print(&super::pretty(&value)?);
            }
            let approvals: Vec<ApprovalView> = serde_json::from_value(value["approvals"].clone())
                .map_err(|e| {
                Failure::runtime(format!("unexpected approvals_list result: {e}"))
            })?;
            print(&render(&approvals))
        }
        ApprovalsCommand::Approve(args) => {
            let value = call(
                &app,
                "approvals_decide",
                json!({ "id": args.id, "decision": "approve", "note": args.note }),
            )
            .await?;
            let approval = view(&value)?;
            print(&format!(
                "approved {}: `{}` requested by {}; it runs once when {} calls it again (until {})\n",
                approval.id,
                approval.tool,
                approval.requester,
                approval.requester,
                approval.expires
            ))
        }
        ApprovalsCommand::Reject(args) => {
            let value = call(
                &app,
                "approvals_decide",
                json!({ "id": args.id, "decision": "reject", "note": args.reason }),
            )
            .await?;
            let approval = view(&value)?;
            print(&format!(
                "rejected {}: `{}` requested by {} will not run\n",
                approval.id, approval.tool, approval.requester
            ))
        }
    }
}

fn view(value: &Value) -> Result<ApprovalView, Failure> {
    serde_json::from_value(value["approval"].clone())
        .map_err(|e| Failure::runtime(format!("unexpected approvals_decide result: {e}")))
}

/// Call `tool` through the gate as the person at this shell.
async fn call(app: &App, tool: &str, args: Value) -> Result<Value, Failure> {
    let cli = &app.config.file.cli;
    let outcome = app
        .gate()
        .call(Invocation {
            principal: Arc::new(cli.principal()),
            tool: tool.into(),
            args,
            approval_id: None,
            context: ToolContext::new(CancellationToken::new()),
        })
        .await;
    match outcome {
        Ok(Outcome::Completed(output)) => Ok(output.structured),
        Ok(Outcome::PendingApproval(pending)) => Err(Failure::runtime(format!(
            "`{tool}` itself needs approval {}: {}",
            pending.approval_id, pending.reason
        ))),
        Err(error) => Err(Failure {
            code: match error.kind() {
                ToolErrorKind::InvalidArgs | ToolErrorKind::NotFound => 2,
                ToolErrorKind::Denied
                | ToolErrorKind::Failed
                | ToolErrorKind::Cancelled
                | ToolErrorKind::Timeout
                | ToolErrorKind::Busy
                | ToolErrorKind::Unavailable => 1,
            },
            message: error.to_string(),
        }),
    }
}

/// The approvals as a table for people.
pub fn render(approvals: &[ApprovalView]) -> String {
    if approvals.is_empty() {
        return "no approvals\n".into();
    }
    let mut out = String::new();
    for approval in approvals {
        out.push_str(&format!(
            "{}  {}  {} by {}  expires {}\n    {}\n    args {}\n",
            approval.id,
            approval.state,
            approval.tool,
            approval.requester,
            approval.expires,
            approval.reason,
            approval.args
        ));
        if let Some(decider) = &approval.decider {
            let note = approval
                .note
                .as_deref()
                .map(|n| format!(": {n}"))
                .unwrap_or_default();
            out.push_str(&format!("    decided by {decider}{note}\n"));
        }
    }
    out
}
