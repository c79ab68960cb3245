//! The store's operations, as they travel over the owner's socket: one JSON object per line
//! each way. `{"op": …}` in; `{"ok": …}` or `{"error": {"kind", "message"}}` out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_runs::{ApprovalDecision, ApprovalDraft, ArtifactRef, AuditDraft, RunState, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::StoreError;

/// A store operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Append an audit record.
    AppendAudit {
        /// The record.
        draft: AuditDraft,
    },
    /// Walk the audit chain.
    VerifyAudit,
    /// Check signed checkpoints against the chain.
    VerifyCheckpoints {
        /// The checkpoint file.
        file: std::path::PathBuf,
        /// The signer's public key, 64 hex digits.
        public_key: String,
    },
    /// Accept the loss the audit log refuses over, with a record of it.
    RecoverAudit {
        /// Why, in the operator's words.
        reason: String,
        /// Who accepts it.
        operator: String,
    },
    /// A page of audit records.
    AuditRecords {
        /// Only records after this sequence number.
        after: u64,
        /// At most this many.
        limit: usize,
    },
    /// Record a pending approval.
    CreateApproval {
        /// What needs approving.
        draft: ApprovalDraft,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
    /// One approval.
    Approval {
        /// Id or unique prefix.
        id: String,
    },
    /// All approvals.
    Approvals,
    /// Decide an approval.
    DecideApproval {
        /// Id or unique prefix.
        id: String,
        /// Who decides.
        decider: String,
        /// Approve or reject.
        decision: ApprovalDecision,
        /// The decider's note.
        note: Option<String>,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
    /// Use an approval.
    ConsumeApproval {
        /// Id or unique prefix.
        id: String,
        /// Who calls.
        requester: String,
        /// Which tool.
        tool: String,
        /// The call's argument digest.
        args_digest: String,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
    /// All runs.
    Runs,
    /// One run.
    Run {
        /// Id or unique prefix.
        id: String,
    },
    /// A run's journal.
    Steps {
        /// Id or unique prefix.
        id: String,
    },
    /// Start a run.
    CreateRun {
        /// What for.
        goal: String,
        /// Which agent.
        agent: String,
        /// Runner's metadata.
        meta: Value,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
    /// Change a run's state.
    SetRunState {
        /// Id or unique prefix.
        id: String,
        /// The new state.
        state: RunState,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
    /// Keep an artifact.
    PutArtifact {
        /// The bytes, base64 (standard alphabet, padded).
        data: String,
        /// MIME type.
        media_type: String,
    },
    /// An artifact's bytes.
    Artifact {
        /// SHA-256, hex.
        sha256: String,
    },
    /// Journal a step.
    AppendStep {
        /// Id or unique prefix.
        id: String,
        /// The step's kind.
        kind: String,
        /// Its content.
        data: Value,
        /// Now, ms since the epoch.
        now_ms: u64,
    },
}

fn encode<T: Serialize>(value: T) -> Result<Value, StoreError> {
    serde_json::to_value(value)
        .map_err(|e| StoreError::new("protocol", format!("cannot encode a store answer: {e}")))
}

/// Run `request` against the local store.
pub(crate) async fn dispatch(store: &Store, request: Request) -> Result<Value, StoreError> {
    if let Request::AppendAudit { draft } = request {
        return encode(store.append_audit(draft).await?);
    }
    let store = store.clone();
    // Everything else may fsync: keep it off the async workers.
    tokio::task::spawn_blocking(move || blocking(&store, request))
        .await
        .map_err(|e| StoreError::new("storage", format!("store operation panicked: {e}")))?
}

fn blocking(store: &Store, request: Request) -> Result<Value, StoreError> {
    match request {
        Request::AppendAudit { .. } => Err(StoreError::new(
            "protocol",
            "audit appends are asynchronous",
        )),
        Request::VerifyAudit => encode(store.verify_audit()?),
        Request::VerifyCheckpoints { file, public_key } => {
            let key = baton_runs::parse_public_key(&public_key)?;
            encode(store.verify_checkpoints(&file, &key)?)
        }
        Request::RecoverAudit { reason, operator } => {
            encode(store.recover_audit(&reason, &operator)?)
        }
        Request::AuditRecords { after, limit } => {
            let mut records = Vec::new();
            for record in store.audit_records() {
                let record = record?;
                if record.seq > after {
                    records.push(record);
                    if records.len() >= limit {
                        break;
                    }
                }
            }
            encode(records)
        }
        Request::CreateApproval { draft, now_ms } => encode(store.create_approval(draft, now_ms)?),
        Request::Approval { id } => encode(store.approval(&id)?),
        Request::Approvals => encode(store.approvals()?),
        Request::DecideApproval {
            id,
            decider,
            decision,
            note,
            now_ms,
        } => encode(store.decide_approval(&id, &decider, decision, note, now_ms)?),
        Request::ConsumeApproval {
            id,
            requester,
            tool,
            args_digest,
            now_ms,
        } => encode(store.consume_approval(&id, &requester, &tool, &args_digest, now_ms)?),
        Request::Runs => encode(store.runs()?),
        Request::Run { id } => encode(store.run(&id)?),
        Request::Steps { id } => encode(store.steps(&id)?),
        Request::CreateRun {
            goal,
            agent,
            meta,
            now_ms,
        } => encode(store.create_run(&goal, &agent, meta, now_ms)?),
        Request::SetRunState { id, state, now_ms } => {
            encode(store.set_run_state(&id, state, now_ms)?)
        }
        Request::AppendStep {
            id,
            kind,
            data,
            now_ms,
        } => encode(store.append_step(&id, &kind, data, now_ms)?),
        Request::PutArtifact { data, media_type } => {
            let bytes = BASE64.decode(data.as_bytes()).map_err(|e| {
                StoreError::new("protocol", format!("artifact bytes are not base64: {e}"))
            })?;
            encode(store.put_artifact(&bytes, &media_type)?)
        }
        Request::Artifact { sha256 } => {
            let (artifact, bytes) = store.artifact(&sha256)?;
            encode(ArtifactBytes {
                artifact,
                data: BASE64.encode(bytes),
            })
        }
    }
}

/// An artifact and its bytes, as they travel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArtifactBytes {
    /// What it is.
    pub artifact: ArtifactRef,
    /// The bytes, base64.
    pub data: String,
}

/// One answer line.
pub(crate) fn answer(result: Result<Value, StoreError>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(error) => json!({ "error": { "kind": error.kind, "message": error.message } }),
    }
}

/// Read one answer line.
pub(crate) fn read_answer(value: Value) -> Result<Value, StoreError> {
    match value {
        Value::Object(mut object) => {
            if let Some(ok) = object.remove("ok") {
                return Ok(ok);
            }
            let error = object.remove("error").unwrap_or(Value::Null);
            let field = |name: &str| {
                error
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            Err(StoreError::new(&field("kind"), field("message")))
        }
        other => Err(StoreError::new(
            "protocol",
            format!("store answer is not an object: {other}"),
        )),
    }
}
