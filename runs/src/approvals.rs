use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{AuditDraft, DecisionKind, DecisionRecord, OutcomeRecord, OutcomeStatus};
use crate::error::{corrupt, encode};
use crate::store::by_prefix;
use crate::time::rfc3339;
use crate::{Result, RunsError, Store, new_id};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// Waiting for a reviewer.
    Pending,
    /// Granted; the requester may re-call once.
    Approved,
    /// Refused.
    Rejected,
    /// Granted and used.
    Consumed,
    /// Its time ran out before it was decided or used.
    Expired,
    /// The person at the client declined the approval form.
    Declined,
    /// The requester's client cancelled the request or went away while the form was open.
    Cancelled,
}

impl ApprovalState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
            ApprovalState::Consumed => "consumed",
            ApprovalState::Expired => "expired",
            ApprovalState::Declined => "declined",
            ApprovalState::Cancelled => "cancelled",
        }
    }

    /// Whether the approval can no longer change (the call ran, or never will).
    pub fn is_final(self) -> bool {
        match self {
            ApprovalState::Pending | ApprovalState::Approved => false,
            ApprovalState::Rejected
            | ApprovalState::Consumed
            | ApprovalState::Expired
            | ApprovalState::Declined
            | ApprovalState::Cancelled => true,
        }
    }
}

/// How a request is withdrawn on the requester's side, rather than decided by a reviewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Withdrawal {
    /// The person at the client declined the approval form.
    Declined,
    /// The client cancelled the request, or went away while the form was open.
    Cancelled,
}

/// A reviewer's verdict on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Let the call run, once.
    Approve,
    /// Refuse it; the note is sent back to the requester.
    Reject,
}

/// An elevated call waiting for, or decided by, a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Time-ordered id.
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// Which tool.
    pub tool: String,
    /// SHA-256 of the canonical arguments, secrets included ([`crate::call_digest`]): the
    /// call this approval is for, exactly.
    pub args_digest: String,
    /// The arguments, secrets redacted, for the reviewer to read.
    pub args: Value,
    /// Why approval is needed.
    pub reason: String,
    /// The rule that asked for it.
    pub rule: String,
    /// Created, ms since the epoch.
    pub created_ms: u64,
    /// Expires, ms since the epoch.
    pub expires_ms: u64,
    /// Stored state (see [`Approval::state_at`] for expiry).
    pub state: ApprovalState,
    /// Who decided.
    #[serde(default)]
    pub decider: Option<String>,
    /// The decider's note (a rejection's reason).
    #[serde(default)]
    pub note: Option<String>,
    /// When it was decided, ms since the epoch.
    #[serde(default)]
    pub decided_ms: Option<u64>,
}

/// What a new approval needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDraft {
    /// Who asks.
    pub requester: String,
    /// Which tool.
    pub tool: String,
    /// SHA-256 of the canonical arguments, secrets included ([`crate::call_digest`]): the
    /// call this approval is for, exactly.
    pub args_digest: String,
    /// The redacted arguments.
    pub args: Value,
    /// Why.
    pub reason: String,
    /// Which rule.
    pub rule: String,
    /// How long it may wait and then be used, in milliseconds.
    pub ttl_ms: u64,
}

impl Approval {
    /// The state at `now_ms`, expiry included.
    pub fn state_at(&self, now_ms: u64) -> ApprovalState {
        match self.state {
            ApprovalState::Pending | ApprovalState::Approved if now_ms > self.expires_ms => {
                ApprovalState::Expired
            }
            state => state,
        }
    }

    /// The audit record that closes this approval's call when it ended without running
    /// (rejected, declined, cancelled, expired); `None` for any other state.
    pub fn closing_record(&self, now_ms: u64) -> Option<AuditDraft> {
        let status = match self.state {
            ApprovalState::Rejected => OutcomeStatus::Rejected,
            ApprovalState::Declined => OutcomeStatus::Declined,
            ApprovalState::Cancelled => OutcomeStatus::Cancelled,
            ApprovalState::Expired => OutcomeStatus::Expired,
            ApprovalState::Pending | ApprovalState::Approved | ApprovalState::Consumed => {
                return None;
            }
        };
        // An approval that expires after it was approved was decided, but not closed, by its
        // approver: nobody closed it, time did.
        let decided_by = match status {
            OutcomeStatus::Expired => None,
            _ => self.decider.clone(),
        };
        let message = match (&decided_by, &self.note) {
            (Some(by), Some(note)) => format!("{} by {by}: {note}", status_word(status)),
            (Some(by), None) => format!("{} by {by}", status_word(status)),
            (None, _) => format!(
                "expired at {} before it was {}",
                self.expires(),
                if self.decider.is_some() {
                    "used"
                } else {
                    "decided"
                }
            ),
        };
        Some(AuditDraft {
            time_ms: now_ms,
            principal: self.requester.clone(),
            tool: self.tool.clone(),
            // The audit's digest, redacted like the call's other records (the approval's own
            // binds the secrets too, and stays out of the audit log).
            args_digest: crate::args_digest(&self.args),
            decision: DecisionRecord {
                kind: DecisionKind::NeedsApproval,
                reason: Some(self.reason.clone()),
                rule: self.rule.clone().into(),
            },
            approval_id: Some(self.id.clone()),
            decided_by,
            outcome: OutcomeRecord {
                error_kind: None,
                message: Some(message),
                status,
            },
            duration_us: now_ms.saturating_sub(self.created_ms).saturating_mul(1000),
            sandbox: None,
        })
    }

    /// `created` as RFC 3339.
    pub fn created(&self) -> String {
        rfc3339(self.created_ms)
    }

    /// `expires` as RFC 3339.
    pub fn expires(&self) -> String {
        rfc3339(self.expires_ms)
    }
}

impl Approval {
    /// A new pending approval from `draft`, created at `now_ms`.
    pub(crate) fn new(draft: ApprovalDraft, now_ms: u64) -> Approval {
        Approval {
            id: new_id(),
            requester: draft.requester,
            tool: draft.tool,
            args_digest: draft.args_digest,
            args: draft.args,
            reason: draft.reason,
            rule: draft.rule,
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(draft.ttl_ms),
            state: ApprovalState::Pending,
            decider: None,
            note: None,
            decided_ms: None,
        }
    }

    fn refuse(&self, reason: String) -> Result<Approval> {
        Err(RunsError::Approval {
            id: self.id.clone(),
            reason,
        })
    }

    /// This approval decided by `decider`. Refuses the requester deciding its own request, a
    /// decided or used approval, and an expired one. Every backend moves approvals through
    /// these transitions, so the rules are the same whatever stores them.
    pub(crate) fn decided(
        &self,
        decider: &str,
        decision: Verdict,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Approval> {
        if self.requester == decider {
            return self.refuse(format!(
                "`{decider}` requested this call and cannot decide it; another reviewer must"
            ));
        }
        match self.state_at(now_ms) {
            ApprovalState::Pending => {}
            ApprovalState::Expired => {
                return self.refuse(format!("it expired at {}", self.expires()));
            }
            state @ (ApprovalState::Approved
            | ApprovalState::Rejected
            | ApprovalState::Consumed
            | ApprovalState::Declined
            | ApprovalState::Cancelled) => {
                return self.refuse(format!("it is already {}", state.as_str()));
            }
        }
        let mut next = self.clone();
        next.state = match decision {
            Verdict::Approve => ApprovalState::Approved,
            Verdict::Reject => ApprovalState::Rejected,
        };
        next.decider = Some(decider.to_owned());
        next.note = note;
        next.decided_ms = Some(now_ms);
        Ok(next)
    }

    /// This approval used for a call by `requester` of `tool` with `args_digest`: allowed
    /// once, for exactly the call that was approved.
    pub(crate) fn consumed(
        &self,
        requester: &str,
        tool: &str,
        args_digest: &str,
        now_ms: u64,
    ) -> Result<Approval> {
        if self.requester != requester {
            return self.refuse(format!(
                "it was requested by `{}`, not `{requester}`",
                self.requester
            ));
        }
        if self.tool != tool || self.args_digest != args_digest {
            return self.refuse(format!(
                "it approves `{}` with other arguments; an approval covers exactly one call",
                self.tool
            ));
        }
        match self.state_at(now_ms) {
            ApprovalState::Approved => {}
            ApprovalState::Pending => {
                return self.refuse("it is still waiting for a reviewer".into());
            }
            ApprovalState::Rejected => {
                let note = self.note.as_deref().unwrap_or("no reason given");
                return self.refuse(format!("it was rejected: {note}"));
            }
            ApprovalState::Consumed => return self.refuse("it was already used".into()),
            ApprovalState::Expired => {
                return self.refuse(format!("it expired at {}", self.expires()));
            }
            state @ (ApprovalState::Declined | ApprovalState::Cancelled) => {
                return self.refuse(format!("it was {} by the client", state.as_str()));
            }
        }
        let mut next = self.clone();
        next.state = ApprovalState::Consumed;
        Ok(next)
    }

    /// This pending approval withdrawn on the requester's side (`by`: the person at the
    /// client, or the server noticing the client went away).
    pub(crate) fn withdrawn(
        &self,
        by: &str,
        how: Withdrawal,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Approval> {
        match self.state_at(now_ms) {
            ApprovalState::Pending => {}
            state => return self.refuse(format!("it is already {}", state.as_str())),
        }
        let mut next = self.clone();
        next.state = match how {
            Withdrawal::Declined => ApprovalState::Declined,
            Withdrawal::Cancelled => ApprovalState::Cancelled,
        };
        next.decider = Some(by.to_owned());
        next.note = note;
        next.decided_ms = Some(now_ms);
        Ok(next)
    }

    /// Whether its time ran out while it was still pending or unused.
    pub(crate) fn due_to_expire(&self, now_ms: u64) -> bool {
        matches!(self.state, ApprovalState::Pending | ApprovalState::Approved)
            && self.state_at(now_ms) == ApprovalState::Expired
    }

    /// This approval expired at `now_ms`; refused unless it is due to.
    pub(crate) fn expired(&self, now_ms: u64) -> Result<Approval> {
        if !self.due_to_expire(now_ms) {
            return self.refuse("no longer due to expire".into());
        }
        let mut next = self.clone();
        next.state = ApprovalState::Expired;
        next.decided_ms = Some(now_ms);
        Ok(next)
    }
}

impl Store {
    /// Record a new pending approval.
    pub fn create_approval(&self, draft: ApprovalDraft, now_ms: u64) -> Result<Approval> {
        let approval = Approval::new(draft, now_ms);
        let bytes = serde_json::to_vec(&approval).map_err(|e| encode("approval", e))?;
        self.inner.approvals.insert(approval.id.as_bytes(), bytes)?;
        self.inner.approvals.flush()?;
        self.changed();
        Ok(approval)
    }

    /// The approval with this id or unique id prefix.
    pub fn approval(&self, id: &str) -> Result<Approval> {
        let (_, value) = by_prefix(&self.inner.approvals, "approval", id)?;
        serde_json::from_slice(&value).map_err(|e| corrupt("approval", e))
    }

    /// All approvals, newest first.
    pub fn approvals(&self) -> Result<Vec<Approval>> {
        let mut all = self
            .inner
            .approvals
            .iter()
            .map(|entry| {
                let (_, value) = entry?;
                serde_json::from_slice(&value).map_err(|e| corrupt("approval", e))
            })
            .collect::<Result<Vec<Approval>>>()?;
        all.reverse();
        Ok(all)
    }

    /// Decide approval `id` as `decider` (see [`Approval::decided`]).
    pub fn decide_approval(
        &self,
        id: &str,
        decider: &str,
        decision: Verdict,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Approval> {
        let id = self.approval(id)?.id;
        self.transition(&id, |approval| {
            approval.decided(decider, decision, note.clone(), now_ms)
        })
    }

    /// Use approval `id` for a call by `requester` of `tool` with `args_digest`: succeeds once,
    /// for exactly the call that was approved.
    pub fn consume_approval(
        &self,
        id: &str,
        requester: &str,
        tool: &str,
        args_digest: &str,
        now_ms: u64,
    ) -> Result<Approval> {
        let id = self.approval(id)?.id;
        self.transition(&id, |approval| {
            approval.consumed(requester, tool, args_digest, now_ms)
        })
    }

    /// Withdraw pending approval `id` on the requester's side (`by`: the person at the client,
    /// or the server noticing the client went away).
    pub fn withdraw_approval(
        &self,
        id: &str,
        by: &str,
        how: Withdrawal,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Approval> {
        let id = self.approval(id)?.id;
        self.transition(&id, |approval| {
            approval.withdrawn(by, how, note.clone(), now_ms)
        })
    }

    /// Mark every approval whose time ran out (pending, or approved and unused) as expired;
    /// the ones this call expired.
    pub fn expire_approvals(&self, now_ms: u64) -> Result<Vec<Approval>> {
        let mut expired = Vec::new();
        for approval in self.approvals()? {
            if let Some(approval) = self.expire_if_due(&approval.id, now_ms)? {
                expired.push(approval);
            }
        }
        Ok(expired)
    }

    /// Mark approval `id` (or unique prefix) expired if its time ran out and it is still
    /// pending or unused; the approval when this call expired it.
    pub fn expire_if_due(&self, id: &str, now_ms: u64) -> Result<Option<Approval>> {
        let approval = self.approval(id)?;
        if !approval.due_to_expire(now_ms) {
            return Ok(None);
        }
        match self.transition(&approval.id, |current| current.expired(now_ms)) {
            Ok(approval) => Ok(Some(approval)),
            // Decided or used meanwhile: not ours to expire.
            Err(RunsError::Approval { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Apply `change` atomically (compare-and-swap, retried on a concurrent update).
    fn transition(
        &self,
        id: &str,
        change: impl Fn(&Approval) -> Result<Approval>,
    ) -> Result<Approval> {
        let tree = &self.inner.approvals;
        loop {
            let current = tree
                .get(id.as_bytes())?
                .ok_or_else(|| RunsError::NotFound {
                    what: "approval",
                    id: id.to_owned(),
                })?;
            let approval: Approval =
                serde_json::from_slice(&current).map_err(|e| corrupt("approval", e))?;
            let next = change(&approval)?;
            let bytes = serde_json::to_vec(&next).map_err(|e| encode("approval", e))?;
            if tree
                .compare_and_swap(id.as_bytes(), Some(current), Some(bytes))?
                .is_ok()
            {
                tree.flush()?;
                self.changed();
                return Ok(next);
            }
        }
    }
}

fn status_word(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Rejected => "rejected",
        OutcomeStatus::Declined => "declined",
        OutcomeStatus::Cancelled => "cancelled",
        OutcomeStatus::Expired => "expired",
        OutcomeStatus::Ok
        | OutcomeStatus::Error
        | OutcomeStatus::Denied
        | OutcomeStatus::PendingApproval => "closed",
    }
}
