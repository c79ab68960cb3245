//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of this face, built from the registry —
//! each tool's request and response schemas are the very JSON Schemas (draft 2020-12, which
//! OpenAPI 3.1 takes as they are) its MCP descriptor publishes. Nothing is written twice.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use baton_kit::ToolDescriptor;
use http::header;
use serde_json::{Map, Value, json};

use crate::Rest;

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    })
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// The multipart form a tool with file arguments takes: each file argument as a file part
/// (several parts for a list), `args` for the rest, as JSON.
fn form_schema(descriptor: &ToolDescriptor) -> Value {
    let mut properties = Map::new();
    for pointer in &descriptor.file_args {
        let name = pointer.trim_start_matches('/');
        let file = json!({ "type": "string", "contentMediaType": "application/octet-stream" });
        let many = descriptor.input_schema["properties"][name]["type"] == "array";
        properties.insert(
            name.to_owned(),
            if many {
                json!({ "type": "array", "items": file })
            } else {
                file
            },
        );
    }
    properties.insert(
        "args".into(),
        json!({
            "type": "object",
            "description": "The other arguments, as a JSON object (plain text parts named after an argument work too).",
            "additionalProperties": true,
        }),
    );
    json!({ "type": "object", "properties": properties })
}

fn operation(descriptor: &ToolDescriptor) -> Value {
    let mut content = Map::new();
    content.insert(
        "application/json".into(),
        json!({ "schema": Value::Object((*descriptor.input_schema).clone()) }),
    );
    if !descriptor.file_args.is_empty() {
        content.insert(
            "multipart/form-data".into(),
            json!({ "schema": form_schema(descriptor) }),
        );
    }
    let output = descriptor.output_schema.as_ref().map_or_else(
        || json!({ "type": "object" }),
        |s| Value::Object((**s).clone()),
    );
    let mut responses = Map::new();
    if descriptor.long {
        responses.insert(
            "202".into(),
            json_response(
                "Started as a job: follow it at `GET /v1/jobs/{id}`; its `result` has the tool's result schema.",
                json!({ "$ref": "#/components/schemas/JobStarted" }),
            ),
        );
    } else {
        responses.insert("200".into(), json_response("The tool's result.", output));
        responses.insert(
            "202".into(),
            json_response(
                "The call needs a reviewer's approval; nothing ran.",
                json!({ "$ref": "#/components/schemas/PendingApproval" }),
            ),
        );
    }
    responses.insert(
        "default".into(),
        problem_response("What was wrong (RFC 9457 problem details)."),
    );
    json!({
        "operationId": descriptor.name,
        "summary": descriptor.title.clone().unwrap_or_else(|| descriptor.name.clone()),
        "description": descriptor.description,
        "tags": [descriptor.pack],
        "parameters": [{
            "name": "approval_id",
            "in": "query",
            "required": false,
            "description": "The approval a reviewer granted for exactly this call, when calling again.",
            "schema": { "type": "string" },
        }],
        "requestBody": { "required": false, "content": content },
        "responses": responses,
    })
}

fn components() -> Value {
    json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        "schemas": {
            "Problem": {
                "type": "object",
                "description": "RFC 9457 problem details; `argument`, `part` or `rule` name what was at fault when one was.",
                "properties": {
                    "type": { "type": "string" },
                    "title": { "type": "string" },
                    "status": { "type": "integer" },
                    "detail": { "type": "string" },
                    "argument": { "type": "string" },
                    "part": { "type": "string" },
                    "rule": { "type": "string" },
                    "kind": { "type": "string" }
                },
                "required": ["title", "status", "detail"]
            },
            "Artifact": {
                "type": "object",
                "properties": {
                    "uri": { "type": "string" },
                    "sha256": { "type": "string" },
                    "size": { "type": "integer", "minimum": 0 },
                    "media_type": { "type": "string" }
                },
                "required": ["uri", "sha256", "size", "media_type"]
            },
            "PendingApproval": {
                "type": "object",
                "properties": {
                    "status": { "const": "pending_approval" },
                    "approval_id": { "type": "string" },
                    "reason": { "type": "string" },
                    "tool": { "type": "string" },
                    "retry": { "type": "object", "additionalProperties": true },
                    "instructions": { "type": "string" },
                    "console": { "type": "string" }
                },
                "required": ["status", "approval_id", "reason", "tool", "retry"]
            },
            "JobStarted": {
                "type": "object",
                "properties": { "job": { "type": "object", "properties": {
                    "id": { "type": "string" },
                    "status": { "type": "string" },
                    "tool": { "type": "string" },
                    "url": { "type": "string" }
                }, "required": ["id", "status", "url"] } },
                "required": ["job"]
            },
            "Job": {
                "type": "object",
                "properties": {
                    "id": { "type": "string" },
                    "status": { "enum": ["working", "completed", "pending_approval", "failed", "cancelled"] },
                    "message": { "type": ["string", "null"] },
                    "created": { "type": "string" },
                    "updated": { "type": "string" },
                    "poll_ms": { "type": "integer" },
                    "result": { "type": "object", "additionalProperties": true },
                    "pending_approval": { "$ref": "#/components/schemas/PendingApproval" },
                    "error": { "type": "string" },
                    "argument": { "type": "string", "description": "The argument at fault, when a bad one failed the job." }
                },
                "required": ["id", "status"]
            }
        }
    })
}

fn fixed_paths() -> Map<String, Value> {
    let id = |name: &str, what: &str| json!([{ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } }]);
    let mut paths = Map::new();
    paths.insert("/v1/artifacts".into(), json!({ "post": {
        "operationId": "artifacts_upload",
        "summary": "Upload bytes as an artifact",
        "description": "Keep the body (a photo, a recording, a prescription) as a content-addressed artifact; pass its `uri` to any file argument.",
        "tags": ["artifacts"],
        "requestBody": { "required": true, "content": { "*/*": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } } },
        "responses": {
            "201": json_response("Kept.", json!({ "$ref": "#/components/schemas/Artifact" })),
            "default": problem_response("Refused: too large, a media type Baton does not read, over quota.")
        }
    }}));
    paths.insert("/v1/artifacts/{sha256}".into(), json!({ "get": {
        "operationId": "artifacts_download",
        "summary": "Download an artifact",
        "description": "The bytes, with their media type, the digest as ETag, and one byte range on request.",
        "tags": ["artifacts"],
        "parameters": id("sha256", "The artifact's SHA-256, 64 lowercase hex digits."),
        "responses": {
            "200": { "description": "The bytes.", "content": { "*/*": { "schema": { "type": "string", "contentMediaType": "application/octet-stream" } } } },
            "206": { "description": "The range asked for." },
            "304": { "description": "Not modified (If-None-Match)." },
            "default": problem_response("No such artifact, or a bad range.")
        }
    }}));
    paths.insert(
        "/v1/jobs/{id}".into(),
        json!({
            "get": {
                "operationId": "jobs_get",
                "summary": "Follow a job",
                "tags": ["jobs"],
                "parameters": id("id", "The job id."),
                "responses": {
                    "200": json_response("The job.", json!({ "$ref": "#/components/schemas/Job" })),
                    "default": problem_response("No such job of yours.")
                }
            },
            "delete": {
                "operationId": "jobs_cancel",
                "summary": "Cancel a job",
                "tags": ["jobs"],
                "parameters": id("id", "The job id."),
                "responses": {
                    "202": json_response("Cancelling.", json!({ "type": "object" })),
                    "default": problem_response("No such job of yours, or it has ended.")
                }
            }
        }),
    );
    paths
}

/// The document for this server's registry.
pub(crate) fn build(rest: &Rest) -> Value {
    let mut paths = fixed_paths();
    let mut descriptors: Vec<&ToolDescriptor> = rest.served.gate.registry().descriptors().collect();
    descriptors.sort_by(|a, b| a.name.cmp(&b.name));
    for descriptor in descriptors {
        paths.insert(
            format!("/v1/tools/{}", descriptor.name),
            json!({ "post": operation(descriptor) }),
        );
    }
    let mut servers = vec![json!({ "url": "/" })];
    if let Some(url) = &rest.served.settings.http.public_url {
        servers.insert(0, json!({ "url": url }));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Baton",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every Baton tool over plain HTTP, through the same gate as MCP: policy, approval, audit. Bytes travel as artifacts (`baton://artifacts/<sha256>`).",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": servers,
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": components(),
    })
}

/// `GET /v1/openapi.json`.
pub(crate) async fn document(State(rest): State<Rest>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        build(&rest).to_string(),
    )
        .into_response()
}
