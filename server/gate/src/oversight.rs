//! Nested actions through the gate: what a tool's helper program (Codex) asks to do for the
//! caller is decided as a call of its own — policy rules, then a reviewer's approval waited
//! for in place, each request and outcome in the audit chain.

use std::sync::Arc;

use baton_kit::{
    NestedAction, Outcome, Oversight, Principal, Result, ToolDescriptor, ToolError, Verdict,
};
use baton_runs::{Approval, ApprovalState, StoreApi as _, StoreHandle, Withdrawal};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::gate::Deciding;
use crate::{Clock, Gate};

/// Longest single wait for the store to change while a decision is awaited.
const WAIT_MS: u64 = 30_000;
/// Pause before asking again when the store could not be reached.
const RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Approval `id` once it is no longer pending: woken by the store's change feed the moment
/// anything decides it (a console, the CLI, a tool, the expiry sweep), in this process or
/// another.
#[tracing::instrument(level = "debug", name = "gate.approval_wait", skip_all, fields(baton.approval_id = id))]
pub async fn wait_for_decision(store: &StoreHandle, clock: &dyn Clock, id: &str) -> Approval {
    // Read the counter, then the state, then wait for a change after that counter: a decision
    // between the read and the wait is never missed.
    let mut seen = store.changes(0, 0).await.unwrap_or(0);
    loop {
        match store.approval(id.to_owned()).await {
            Ok(approval) if approval.state_at(clock.now_ms()) != ApprovalState::Pending => {
                return approval;
            }
            Ok(_) => match store.changes(seen, WAIT_MS).await {
                Ok(now) => seen = now,
                Err(error) => {
                    tracing::warn!(%error, "store unavailable while waiting; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            },
            Err(error) => {
                tracing::warn!(%error, "approval state unavailable; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The gate deciding one call's nested actions, for that call's caller.
pub(crate) struct GateOversight {
    pub(crate) gate: Gate,
    pub(crate) principal: Arc<Principal>,
}

impl Oversight for GateOversight {
    fn decide(
        &self,
        action: NestedAction,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<Verdict>> {
        Box::pin(self.gate.decide_nested(&self.principal, action, cancel))
    }
}

/// A refusal from the gate as a verdict (an error that is not a refusal stays an error).
fn refused(error: ToolError, approval_id: Option<String>) -> Result<Verdict> {
    match error {
        ToolError::Denied { rule, reason } => Ok(Verdict::Refused {
            rule,
            reason,
            approval_id,
        }),
        other => Err(other),
    }
}

impl Gate {
    /// Decide `action` for `principal` as a call of a tool named `action.name`, under
    /// [`baton_policies::Policy::decide_nested`]: allowed by a rule or refused at once, or an
    /// approval that waits (until decided, expired, or `cancel` withdraws it). Audited like
    /// any call: the request, then its outcome.
    pub async fn decide_nested(
        &self,
        principal: &Principal,
        action: NestedAction,
        cancel: CancellationToken,
    ) -> Result<Verdict> {
        let descriptor = ToolDescriptor {
            name: action.name.clone(),
            pack: action.pack.clone(),
            title: None,
            description: action.reason.clone(),
            effect: action.effect,
            input_schema: Arc::new(serde_json::Map::from_iter([(
                "type".to_owned(),
                serde_json::Value::from("object"),
            )])),
            output_schema: None,
            path_args: action.path_args.clone(),
            root_arg: None,
            file_args: Vec::new(),
            output_args: Vec::new(),
            heavy: false,
            long: false,
        };
        let asked = self
            .run_as(
                Deciding::Nested,
                principal,
                &descriptor,
                &action.args,
                None,
                async { Ok(()) },
            )
            .await;
        let id = match asked {
            Ok(Outcome::Completed(())) => return Ok(Verdict::Allowed { approval_id: None }),
            Ok(Outcome::PendingApproval(pending)) => pending.approval_id,
            Err(error) => return refused(error, None),
        };
        let clock = self.clock().clone();
        let decided = tokio::select! {
            // A caller that went away is never answered "approved", even by a reviewer who
            // decided in the same instant: the approval is used up as cancelled instead.
            biased;
            () = cancel.cancelled() => {
                self.withdraw(principal, &descriptor, &action.args, &id).await;
                return Err(ToolError::Cancelled);
            }
            decided = wait_for_decision(self.store(), clock.as_ref(), &id) => decided,
        };
        match decided.state_at(clock.now_ms()) {
            ApprovalState::Approved => {
                let used = self
                    .run_as(
                        Deciding::Nested,
                        principal,
                        &descriptor,
                        &action.args,
                        Some(&id),
                        async { Ok(()) },
                    )
                    .await;
                match used {
                    Ok(Outcome::Completed(())) => Ok(Verdict::Allowed {
                        approval_id: Some(id),
                    }),
                    Ok(Outcome::PendingApproval(pending)) => Err(ToolError::failed(format!(
                        "approval {id} was approved, yet the gate asked again ({})",
                        pending.approval_id
                    ))),
                    Err(error) => refused(error, Some(id)),
                }
            }
            // Rejections, withdrawals and expiries close their call in the audit log
            // themselves (the store writes the record with the decision).
            state @ (ApprovalState::Rejected
            | ApprovalState::Declined
            | ApprovalState::Cancelled
            | ApprovalState::Expired
            | ApprovalState::Consumed
            | ApprovalState::Pending) => Ok(Verdict::Refused {
                rule: "approval".into(),
                reason: match (&decided.decider, &decided.note) {
                    (Some(by), Some(note)) => format!("{} by {by}: {note}", state.as_str()),
                    (Some(by), None) => format!("{} by {by}", state.as_str()),
                    (None, _) => format!("the approval {}", state.as_str()),
                },
                approval_id: Some(id),
            }),
        }
    }

    /// Nobody waits for approval `id` any more: withdraw it, on the record. When a reviewer
    /// approved it in the meantime, it is used up by a call that ends cancelled instead, so it
    /// is never left approved for nobody and its call still gets its closing record.
    async fn withdraw(
        &self,
        principal: &Principal,
        descriptor: &ToolDescriptor,
        args: &serde_json::Value,
        id: &str,
    ) {
        let withdrawn = self
            .store()
            .withdraw_approval(
                id.to_owned(),
                principal.id.clone(),
                Withdrawal::Cancelled,
                Some("the call that asked was cancelled".into()),
                self.clock().now_ms(),
            )
            .await;
        if withdrawn.is_ok() {
            return;
        }
        // Decided meanwhile: a rejection or expiry has its closing record already.
        let approved = self
            .store()
            .approval(id.to_owned())
            .await
            .is_ok_and(|a| a.state_at(self.clock().now_ms()) == ApprovalState::Approved);
        if !approved {
            return;
        }
        let closed = self
            .run_as(
                Deciding::Nested,
                principal,
                descriptor,
                args,
                Some(id),
                async { Err::<(), _>(ToolError::Cancelled) },
            )
            .await;
        if let Err(error) = closed
            && !matches!(error, ToolError::Cancelled | ToolError::Denied { .. })
        {
            tracing::warn!(%error, approval = %id, "could not close the withdrawn approval");
        }
    }
}
