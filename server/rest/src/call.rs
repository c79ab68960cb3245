//! `POST /v1/tools/<name>`: any tool of the registry, through the same gate as MCP.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use baton_kit::{Invocation, Outcome, PendingApproval, Principal, ToolContext};
use baton_mcp::APPROVAL_ARG;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Rest;
use crate::problem::{problem, tool_problem};

/// The query a call takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallQuery {
    /// The approval a reviewer granted for exactly this call, when calling again.
    approval_id: Option<String>,
}

/// `POST /v1/tools/<name>` with the arguments as JSON, or as a multipart form whose file
/// parts are bound to the tool's file arguments.
pub(crate) async fn call(
    State(rest): State<Rest>,
    Path(name): Path<String>,
    Extension(principal): Extension<Arc<Principal>>,
    query: Result<Query<CallQuery>, QueryRejection>,
    request: Request,
) -> Response {
    // Whether this call's spans are made at all, decided before the first of them.
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|value| value.to_str().ok());
    let recorded = baton_gate::trace::decide(traceparent);
    baton_gate::trace::scoped(recorded, async move {
        // OpenTelemetry's HTTP server conventions; a W3C `traceparent` header is the parent.
        // Only a registered tool's name goes into the span: the path is the caller's to choose.
        let known = rest.served.gate.registry().get(&name).is_some();
        let tool = if known { name.as_str() } else { "unknown" };
        let span = tracing::debug_span!(
            "POST /v1/tools",
            otel.name = %format_args!("POST /v1/tools/{tool}"),
            otel.kind = "server",
            http.request.method = "POST",
            http.route = "/v1/tools/{name}",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = tool,
            // The gate records these: this span is its span too (`trace::gate_on`).
            baton.principal = tracing::field::Empty,
            baton.args_digest = tracing::field::Empty,
            baton.decision = tracing::field::Empty,
            baton.outcome = tracing::field::Empty,
            baton.audit.seq = tracing::field::Empty,
        );
        {
            // Scoped: a borrow of the request must not live across the await below (the body
            // is not `Sync`).
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
            };
            baton_mcp::trace::child_of(&span, header("traceparent"), header("tracestate"));
        }
        let tool = Box::from(tool);
        baton_gate::trace::gate_on(&span, tool, handle(rest, name, principal, query, request))
            .instrument(span)
            .await
    })
    .await
}

/// [`call`], inside its span.
async fn handle(
    rest: Rest,
    name: String,
    principal: Arc<Principal>,
    query: Result<Query<CallQuery>, QueryRejection>,
    request: Request,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad query",
                format!("{rejection}; the one query parameter is `approval_id`"),
            );
        }
    };
    let Some(tool) = rest.served.gate.registry().get(&name).cloned() else {
        return problem(
            StatusCode::NOT_FOUND,
            "No such tool",
            format!("no tool `{name}`; GET /v1/openapi.json lists the tools"),
        );
    };
    let descriptor = tool.descriptor().clone();
    let mut args = match crate::body::arguments(&rest, &principal, &descriptor, request).await {
        Ok(args) => args,
        Err(refused) => return *refused,
    };
    let from_body = args
        .as_object_mut()
        .and_then(|map| map.remove(APPROVAL_ARG))
        .and_then(|v| v.as_str().map(str::to_owned));
    let approval_id = query.approval_id.or(from_body);
    if descriptor.long {
        return crate::jobs::start(&rest, principal, name, args, approval_id).await;
    }
    answer_now(&rest, principal, name, args, approval_id).await
}

/// Run the call and answer its result; cancelled (and audited so) past the request time
/// limit, or when the client goes away.
async fn answer_now(
    rest: &Rest,
    principal: Arc<Principal>,
    name: String,
    args: Value,
    approval_id: Option<String>,
) -> Response {
    let cancel = CancellationToken::new();
    // Dropped with this handler when the client disconnects: the call is told to stop and
    // still ends in the gate, with its audit record, on its own task.
    let on_drop = cancel.clone().drop_guard();
    let gate = rest.served.gate.clone();
    let invocation = Invocation {
        principal,
        tool: name.clone(),
        args: args.clone(),
        approval_id,
        context: ToolContext::new(cancel.clone()),
    };
    // On its own task, still under this request's span and its sampling.
    let mut running = tokio::spawn(baton_gate::trace::carried(
        async move { gate.call(invocation).await }.in_current_span(),
    ));
    let joined = match tokio::time::timeout(rest.request_timeout, &mut running).await {
        Ok(joined) => joined,
        Err(_) => {
            // Told to stop; a tool gets a moment to end so its audit record says so. The
            // answer does not wait on a tool that ignores it.
            cancel.cancel();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), running).await;
            return problem(
                StatusCode::GATEWAY_TIMEOUT,
                "Timed out",
                format!(
                    "`{name}` ran past {} s (http.request_timeout_s) and was cancelled",
                    rest.request_timeout.as_secs()
                ),
            );
        }
    };
    on_drop.disarm();
    match joined {
        Ok(Ok(Outcome::Completed(output))) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            output.structured.to_string(),
        )
            .into_response(),
        Ok(Ok(Outcome::PendingApproval(pending))) => pending_answer(rest, &name, &args, &pending),
        Ok(Err(error)) => tool_problem(&error),
        Err(join) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Call failed",
            format!("the call of `{name}` ended abnormally: {join}"),
        ),
    }
}

/// What a call waiting for a reviewer answers over HTTP (`202`): the approval, and how to
/// call again once it is approved.
pub(crate) fn pending_body(
    rest: &Rest,
    name: &str,
    args: &Value,
    approval_id: &str,
    reason: &str,
) -> Value {
    let mut body = json!({
        "status": "pending_approval",
        "approval_id": approval_id,
        "reason": reason,
        "tool": name,
        "retry": {
            "method": "POST",
            "url": format!("/v1/tools/{name}?approval_id={approval_id}"),
            "body": args,
        },
        "instructions": format!(
            "A reviewer decides (the console, `baton approvals approve {approval_id}` or the \
             `approvals_decide` tool); once approved, POST the same arguments to \
             /v1/tools/{name}?approval_id={approval_id}. The approval is good for one call."
        ),
    });
    if let Some(base) = rest.served.settings.console_base() {
        body["console"] = Value::String(format!("{base}/console/approvals#{approval_id}"));
    }
    body
}

fn pending_answer(rest: &Rest, name: &str, args: &Value, pending: &PendingApproval) -> Response {
    let body = pending_body(rest, name, args, &pending.approval_id, &pending.reason);
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "/v1/tools/{name}?approval_id={}",
        pending.approval_id
    )) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
