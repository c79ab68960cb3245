//! Asking for an approval over MCP, in the way the client can answer:
//!
//! - a 2025-11-25 session whose client declares `elicitation`: an elicitation form, answered
//!   while the call waits;
//! - a 2026-07-28 request whose client declares `elicitation`: an `InputRequiredResult` carrying
//!   the form, with the approval sealed in `requestState`; the client retries with the answer;
//! - otherwise: a `pending_approval {approval_id, reason}` result. A reviewer decides
//!   (`baton approvals approve`, or `approvals_decide`), and the caller re-calls the tool with
//!   the id in the reserved argument `_baton_approval` (or `_meta["baton.dev/approval"]`).
//!
//! The form is offered only where the configuration trusts the channel to reach a person:
//! stdio sessions by default (`[stdio] approve_in_client`), HTTP only for tokens marked
//! `approve_in_client`. Anywhere else an agent holding the connection could answer the form
//! itself, so its calls wait for a reviewer. An answer is decided through the gate as
//! `approvals_decide` by `<principal>@client:<transport>` — the person at that client, with
//! the channel in the audit record — never as the agent principal that asked.

use rmcp::model::{
    CallToolResult, ContentBlock, ElicitRequestParams, ElicitationAction, ElicitationSchema,
    InputRequest, InputRequests, InputRequiredResult, ProtocolVersion, RequestMetaObject,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The reserved argument naming the approval a re-call uses.
pub const APPROVAL_ARG: &str = "_baton_approval";
/// The `_meta` key that may carry it instead.
pub const APPROVAL_META: &str = "baton.dev/approval";
/// The input request key of the approval form in an `InputRequiredResult`.
pub const INPUT_KEY: &str = "baton_approval";

/// Take the approval id out of the arguments (so the tool never sees it) or `_meta`.
pub fn take_approval_id(
    arguments: &mut Option<serde_json::Map<String, Value>>,
    meta: &RequestMetaObject,
) -> Option<String> {
    let from_args = arguments
        .as_mut()
        .and_then(|args| args.remove(APPROVAL_ARG))
        .and_then(|v| v.as_str().map(str::to_owned));
    from_args.or_else(|| {
        meta.get(APPROVAL_META)
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// Whether a request's client may answer approval forms: set per bearer token by the HTTP
/// front door (`approve_in_client`); stdio requests take `[stdio] approve_in_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientApproves(pub bool);

/// How this request's client can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `elicitation/create` while the call waits (2025-11-25).
    Elicit,
    /// `InputRequiredResult` and a retry (2026-07-28).
    InputRequired,
    /// A `pending_approval` result; a reviewer decides elsewhere.
    Report,
}

/// Pick the channel for `context`; `trusted` says whether its client may answer at all.
pub fn channel(context: &RequestContext<RoleServer>, trusted: bool) -> Channel {
    if !trusted {
        return Channel::Report;
    }
    let modern = context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
    if modern {
        let declared = context
            .meta
            .client_capabilities()
            .is_some_and(|caps| caps.elicitation.is_some());
        return if declared {
            Channel::InputRequired
        } else {
            Channel::Report
        };
    }
    let declared = context
        .peer
        .peer_info()
        .is_some_and(|info| info.capabilities.elicitation.is_some());
    if declared {
        Channel::Elicit
    } else {
        Channel::Report
    }
}

/// What the form asks.
pub fn form_schema() -> Result<ElicitationSchema, ErrorData> {
    serde_json::from_value(json!({
        "type": "object",
        "properties": {
            "decision": {
                "type": "string",
                "title": "Decision",
                "enum": ["approve", "reject"],
                "description": "approve lets this one call run; reject refuses it"
            },
            "note": {
                "type": "string",
                "title": "Note",
                "description": "Why (required to reject; sent back to the agent)"
            }
        },
        "required": ["decision"]
    }))
    .map_err(|e| ErrorData::internal_error(format!("approval form schema: {e}"), None))
}

/// The form's message: what waits, why, with which arguments.
pub fn form_message(tool: &str, reason: &str, args: &Value) -> String {
    let mut shown = baton_runs::redact(args).to_string();
    if shown.chars().count() > 600 {
        shown = format!("{}…", shown.chars().take(600).collect::<String>());
    }
    format!("Baton asks for approval: `{tool}` ({reason}). Arguments: {shown}")
}

/// An answer from the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Approve.
    Approve(Option<String>),
    /// Reject, with the reason.
    Reject(String),
    /// The person declined the form (its "decline" action): the call is withdrawn.
    Decline(Option<String>),
    /// The form was dismissed (its "cancel" action), or the client went away while it was
    /// open: the call is withdrawn.
    Cancel(String),
}

/// Read a form's answer — its action (`accept`, `decline`, `cancel`) and content
/// (`{decision, note}`).
pub fn read_answer(action: &str, content: Option<&Value>) -> Answer {
    let note = content
        .and_then(|c| c.get("note"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let decision = content
        .and_then(|c| c.get("decision"))
        .and_then(Value::as_str);
    match (action, decision) {
        ("accept", Some("approve")) => Answer::Approve(note),
        ("accept", Some("reject")) => {
            Answer::Reject(note.unwrap_or_else(|| "rejected in the client".into()))
        }
        ("accept", _) => Answer::Reject("the approval form came back without a decision".into()),
        ("decline", _) => Answer::Decline(note),
        ("cancel", _) => Answer::Cancel("the approval form was dismissed in the client".into()),
        (other, _) => Answer::Cancel(format!("the client answered the form with `{other}`")),
    }
}

/// Elicit the form; `None` if the client could not answer (the caller falls back to a
/// report). A client that goes away, or cancels the call, while the form is open answers
/// [`Answer::Cancel`].
pub async fn elicit(
    context: &RequestContext<RoleServer>,
    message: String,
) -> Result<Option<Answer>, ErrorData> {
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message,
        requested_schema: form_schema()?,
    };
    let asked = tokio::select! {
        asked = context.peer.create_elicitation(params) => asked,
        () = context.ct.cancelled() => {
            return Ok(Some(Answer::Cancel("the client cancelled the call while the approval form was open".into())));
        }
    };
    match asked {
        Ok(result) => {
            let action = match result.action {
                ElicitationAction::Accept => "accept",
                ElicitationAction::Decline => "decline",
                ElicitationAction::Cancel => "cancel",
                _ => "unknown",
            };
            Ok(Some(read_answer(action, result.content.as_ref())))
        }
        Err(
            rmcp::ServiceError::TransportClosed
            | rmcp::ServiceError::TransportSend(_)
            | rmcp::ServiceError::Cancelled { .. },
        ) => Ok(Some(Answer::Cancel(
            "the client went away while the approval form was open".into(),
        ))),
        Err(error) => {
            tracing::warn!(%error, "approval elicitation failed; reporting the approval as pending");
            Ok(None)
        }
    }
}

/// What `requestState` seals between an `InputRequiredResult` and the client's retry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sealed {
    /// The approval asked for.
    pub approval_id: String,
    /// The tool it is for.
    pub tool: String,
    /// Who asked: only the same caller may answer with this state.
    pub principal: String,
}

/// The `InputRequiredResult` asking for approval `sealed`.
pub fn input_required(message: String, state: String) -> Result<InputRequiredResult, ErrorData> {
    let request: InputRequest = serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": { "mode": "form", "message": message, "requestedSchema": form_schema()? }
    }))
    .map_err(|e| ErrorData::internal_error(format!("approval input request: {e}"), None))?;
    Ok(InputRequiredResult::new(
        Some(InputRequests::from([(INPUT_KEY.to_owned(), request)])),
        Some(state),
    ))
}

/// The `pending_approval` result: an error result (the tool did not run) whose structured
/// content says what to do — in full, since some clients (Codex with `ask_client = false`)
/// hand their model only the structured content: how to retry, and where a reviewer decides.
pub fn pending_result(
    approval_id: &str,
    reason: &str,
    tool: &str,
    args: &Value,
    console: Option<&str>,
) -> CallToolResult {
    let mut retry_args = match args {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    retry_args.insert(
        APPROVAL_ARG.to_owned(),
        Value::String(approval_id.to_owned()),
    );
    let console_url = console.map(|base| format!("{base}/console/approvals#{approval_id}"));
    let where_ = match &console_url {
        Some(url) => format!("in the console ({url}), "),
        None => String::new(),
    };
    let text = format!(
        "Approval needed before `{tool}` can run ({reason}). Approval id: {approval_id}. A reviewer \
         decides {where_}with `baton approvals approve {approval_id}` or the `approvals_decide` \
         tool; then call `{tool}` again with the same arguments plus \"{APPROVAL_ARG}\": \"{approval_id}\"."
    );
    let mut pending = json!({
        "approval_id": approval_id,
        "reason": reason,
        "tool": tool,
        "retry": { "name": tool, "arguments": retry_args },
        "instructions": format!(
            "Wait for a reviewer to approve, then call `{tool}` again with `retry.arguments` (the \
             same arguments plus `{APPROVAL_ARG}`). Do not retry before it is approved."
        ),
    });
    if let Some(url) = console_url {
        pending["console"] = Value::String(url);
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "pending_approval": pending }));
    result
}
