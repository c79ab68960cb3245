//! Jobs: a long tool's call (a folder of photos, a separation) answered `202` at once and
//! followed at `GET /v1/jobs/<id>`, stopped with `DELETE`. A job is an MCP task of the same
//! store — one record of who asked, its state and result — so it outlives the request.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use baton_kit::Principal;
use baton_mcp::APPROVAL_ARG;
use baton_mcp::tasks::gate_call;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::Rest;
use crate::problem::problem;

/// Start the call as a job; answer `202` with it.
pub(crate) async fn start(
    rest: &Rest,
    principal: Arc<Principal>,
    name: String,
    args: Value,
    approval_id: Option<String>,
) -> Response {
    if let Err(error) = rest.served.gate.pace(&principal) {
        return crate::problem::tool_problem(&error);
    }
    let call = gate_call(
        rest.served.clone(),
        principal.clone(),
        name.clone(),
        args.clone(),
        approval_id,
    );
    let now = rest.served.gate.clock().now_ms();
    let created = match rest
        .jobs
        .start(&principal.id, &name, &args, now, call)
        .await
    {
        Ok(created) => created,
        Err(error) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Job not started",
                error.message.to_string(),
            );
        }
    };
    let id = created.task.task_id.clone();
    let body = json!({
        "job": {
            "id": id,
            "status": "working",
            "tool": name,
            "url": format!("/v1/jobs/{id}"),
        }
    });
    let mut response = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/v1/jobs/{id}")) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The job as `tasks/get` has it, said for an HTTP client: `working`, `completed` with the
/// tool's result, `pending_approval`, `failed` with why, or `cancelled`.
fn view(rest: &Rest, task: &Value) -> Value {
    let status = task["status"].as_str().unwrap_or("unknown");
    let mut out = json!({
        "id": task["taskId"],
        "status": status,
        "message": task.get("statusMessage").cloned().unwrap_or(Value::Null),
        "created": task["createdAt"],
        "updated": task["lastUpdatedAt"],
        "poll_ms": task["pollIntervalMs"],
    });
    let result = &task["result"];
    match status {
        "completed" if result["isError"] == Value::Bool(true) => {
            let pending = &result["structuredContent"]["pending_approval"];
            if let (Some(id), Some(tool)) =
                (pending["approval_id"].as_str(), pending["tool"].as_str())
            {
                let mut args = pending["retry"]["arguments"].clone();
                if let Some(map) = args.as_object_mut() {
                    map.remove(APPROVAL_ARG);
                }
                let reason = pending["reason"].as_str().unwrap_or_default();
                out["status"] = Value::String("pending_approval".into());
                out["pending_approval"] = crate::call::pending_body(rest, tool, &args, id, reason);
            } else {
                out["status"] = Value::String("failed".into());
                out["error"] = clipped(&result["content"][0]["text"]);
            }
        }
        "completed" => out["result"] = result["structuredContent"].clone(),
        "failed" => {
            out["error"] = clipped(&task["error"]["message"]);
            if let Some(argument) = task["error"]["data"]["path"].as_str() {
                out["argument"] = Value::String(argument.to_owned());
            }
        }
        _ => {}
    }
    out
}

/// An error's text as a job shows it: errors may quote a megabyte the caller sent.
fn clipped(text: &Value) -> Value {
    let mut text = text.as_str().unwrap_or_default().to_owned();
    baton_kit::clip(&mut text, 2000);
    Value::String(text)
}

async fn current(rest: &Rest, principal: &Principal, id: &str) -> Result<Value, Box<Response>> {
    match rest.jobs.get(&principal.id, id).await {
        Ok(task) => Ok(serde_json::to_value(task).unwrap_or_default()),
        // Another principal's job is as unknown as a missing one.
        Err(_) => Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "No such job",
            format!("no job `{id}` of yours"),
        ))),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `GET /v1/jobs/<id>`.
pub(crate) async fn status(
    State(rest): State<Rest>,
    Path(id): Path<String>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Response {
    match current(&rest, &principal, &id).await {
        Ok(task) => json_response(StatusCode::OK, &view(&rest, &task)),
        Err(refused) => *refused,
    }
}

/// `DELETE /v1/jobs/<id>`: stop a running job (its call ends cancelled, audited).
pub(crate) async fn cancel(
    State(rest): State<Rest>,
    Path(id): Path<String>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Response {
    let task = match current(&rest, &principal, &id).await {
        Ok(task) => task,
        Err(refused) => return *refused,
    };
    if task["status"] != "working" {
        return problem(
            StatusCode::CONFLICT,
            "Job already ended",
            format!(
                "job `{id}` has already ended ({})",
                task["status"].as_str().unwrap_or("unknown")
            ),
        );
    }
    if let Err(error) = rest.jobs.cancel(&principal.id, &id).await {
        return problem(
            StatusCode::CONFLICT,
            "Job already ended",
            error.message.to_string(),
        );
    }
    json_response(
        StatusCode::ACCEPTED,
        &json!({ "id": id, "status": "cancelling" }),
    )
}
