use std::sync::Arc;

use baton_kit::{Effect, Tool, ToolContext, ToolError};
use baton_runs::{
    Approval, ApprovalState, StoreApi as _, StoreError, StoreHandle, Verdict, rfc3339,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Clock;

/// An approval as tools show it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ApprovalView {
    /// Give this id to `approvals_decide`, or re-call the tool with it once approved.
    pub id: String,
    /// `pending`, `approved`, `rejected`, `consumed`, `expired`, `declined` or `cancelled`.
    pub state: String,
    /// Who asked.
    pub requester: String,
    /// The tool waiting to run.
    pub tool: String,
    /// Its arguments, secrets redacted.
    #[schemars(schema_with = "baton_kit::any_object_or_null")]
    pub args: serde_json::Value,
    /// Why approval is needed, and the rule that asked.
    pub reason: String,
    /// When it was asked for (RFC 3339).
    pub created: String,
    /// When it stops being usable (RFC 3339).
    pub expires: String,
    /// Who decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decider: Option<String>,
    /// The decider's note (a rejection's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ApprovalView {
    /// The view of `approval` at `now_ms`.
    pub fn of(approval: &Approval, now_ms: u64) -> ApprovalView {
        ApprovalView {
            id: approval.id.clone(),
            state: approval.state_at(now_ms).as_str().into(),
            requester: approval.requester.clone(),
            tool: approval.tool.clone(),
            args: approval.args.clone(),
            reason: format!("{}: {}", approval.rule, approval.reason),
            created: rfc3339(approval.created_ms),
            expires: rfc3339(approval.expires_ms),
            decider: approval.decider.clone(),
            note: approval.note.clone(),
        }
    }
}

fn store_error(error: StoreError) -> ToolError {
    match error {
        StoreError::NotFound { message } => ToolError::not_found(message),
        StoreError::Ambiguous { message } => ToolError::invalid_args("id", message),
        StoreError::Approval { message } => ToolError::Denied {
            rule: "approvals.transition".into(),
            reason: message,
        },
        other => ToolError::unavailable(other.to_string()),
    }
}

/// Which approvals `approvals_list` shows.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StateFilter {
    /// Waiting for a reviewer (the default).
    Pending,
    /// Approved, not yet used.
    Approved,
    /// Rejected.
    Rejected,
    /// Used.
    Consumed,
    /// Expired.
    Expired,
    /// Declined in the requester's client.
    Declined,
    /// Cancelled: the requester's client withdrew it or went away.
    Cancelled,
    /// All of them.
    All,
}

/// Arguments of `approvals_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Which approvals (default `pending`).
    #[serde(default)]
    pub state: Option<StateFilter>,
    /// At most this many, newest first (default 20, at most 200).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Approvals, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ListResult {
    /// The approvals shown.
    pub approvals: Vec<ApprovalView>,
    /// How many matched before `limit`.
    pub matched: usize,
}

/// `approvals_list`.
#[derive(Debug)]
pub struct ApprovalsList {
    store: StoreHandle,
    clock: Arc<dyn Clock>,
}

impl ApprovalsList {
    /// Over `store`, telling expired approvals by `clock`.
    pub fn new(store: StoreHandle, clock: Arc<dyn Clock>) -> Self {
        ApprovalsList { store, clock }
    }
}

impl Tool for ApprovalsList {
    type Args = ListArgs;
    type Output = ListResult;
    const NAME: &'static str = "approvals_list";
    const TITLE: Option<&'static str> = Some("List approvals");
    const DESCRIPTION: &'static str = "List approval requests: elevated tool calls waiting for a \
        reviewer (by default), or decided ones. Each shows the tool, its arguments (secrets \
        redacted), why approval is needed, and when it expires.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: ListArgs, _ctx: ToolContext) -> baton_kit::Result<ListResult> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=200).contains(&limit) {
            return Err(ToolError::invalid_args(
                "limit",
                format!("must be between 1 and 200, got {limit}"),
            ));
        }
        let filter = args.state.unwrap_or(StateFilter::Pending);
        let now = self.clock.now_ms();
        let matching: Vec<ApprovalView> = self
            .store
            .approvals()
            .await
            .map_err(store_error)?
            .iter()
            .filter(|approval| {
                let state = approval.state_at(now);
                match filter {
                    StateFilter::All => true,
                    StateFilter::Pending => state == ApprovalState::Pending,
                    StateFilter::Approved => state == ApprovalState::Approved,
                    StateFilter::Rejected => state == ApprovalState::Rejected,
                    StateFilter::Consumed => state == ApprovalState::Consumed,
                    StateFilter::Expired => state == ApprovalState::Expired,
                    StateFilter::Declined => state == ApprovalState::Declined,
                    StateFilter::Cancelled => state == ApprovalState::Cancelled,
                }
            })
            .map(|approval| ApprovalView::of(approval, now))
            .collect();
        let matched = matching.len();
        Ok(ListResult {
            approvals: matching.into_iter().take(limit as usize).collect(),
            matched,
        })
    }
}

/// Arguments of `approvals_decide`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideArgs {
    /// The approval's id (or a unique prefix of it).
    pub id: String,
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Why; required to reject, so the requester learns what to change.
    #[serde(default)]
    pub note: Option<String>,
}

/// The decided approval.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DecideResult {
    /// The approval after the decision.
    pub approval: ApprovalView,
}

/// `approvals_decide`.
#[derive(Debug)]
pub struct ApprovalsDecide {
    store: StoreHandle,
    clock: Arc<dyn Clock>,
}

impl ApprovalsDecide {
    /// Over `store`, deciding at the time `clock` tells.
    pub fn new(store: StoreHandle, clock: Arc<dyn Clock>) -> Self {
        ApprovalsDecide { store, clock }
    }
}

impl Tool for ApprovalsDecide {
    type Args = DecideArgs;
    type Output = DecideResult;
    const NAME: &'static str = "approvals_decide";
    const TITLE: Option<&'static str> = Some("Approve or reject a pending call");
    const DESCRIPTION: &'static str = "Approve or reject a pending approval. Only a principal \
        with the `reviewer` or `admin` role may decide, and never one who requested the call. \
        An approved call runs once, when its requester calls the tool again with the approval id.";
    const EFFECT: Effect = Effect::Write;

    async fn call(&self, args: DecideArgs, ctx: ToolContext) -> baton_kit::Result<DecideResult> {
        let note = args
            .note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if args.decision == Verdict::Reject && note.is_none() {
            return Err(ToolError::invalid_args(
                "note",
                "a rejection needs a reason, for the requester",
            ));
        }
        let decider = ctx
            .principal()
            .ok_or_else(|| ToolError::failed("approvals_decide was called without a principal"))?;
        let now = self.clock.now_ms();
        let approval = self
            .store
            .decide_approval(
                args.id.clone(),
                decider.id.clone(),
                args.decision,
                note,
                now,
            )
            .await
            .map_err(store_error)?;
        Ok(DecideResult {
            approval: ApprovalView::of(&approval, now),
        })
    }
}
