//! A call's arguments from its request: a JSON object, or a multipart form whose file parts
//! are uploaded and bound, by part name, to the tool's file arguments.

use std::collections::BTreeMap;

use axum::extract::{FromRequest as _, Multipart, Request};
use axum::response::Response;
use baton_kit::{ARTIFACT_URI_PREFIX, Principal, ToolDescriptor};
use http::StatusCode;
use serde_json::{Map, Value};

use crate::Rest;
use crate::problem::{problem, problem_with};

type Refused = Box<Response>;

/// Most parts one form may have: every file part is an upload kept in the store.
const MAX_PARTS: usize = 1000;

fn bad(title: &str, detail: String, part: Option<&str>) -> Refused {
    let extra = match part {
        Some(part) => serde_json::json!({ "part": part }),
        None => Value::Null,
    };
    Box::new(problem_with(StatusCode::BAD_REQUEST, title, detail, extra))
}

/// The arguments of a call of `descriptor` by `principal`, from `request`'s body.
pub(crate) async fn arguments(
    rest: &Rest,
    principal: &Principal,
    descriptor: &ToolDescriptor,
    request: Request,
) -> Result<Value, Refused> {
    let media = match request.headers().get(http::header::CONTENT_TYPE) {
        None => "application/json".to_owned(),
        Some(_) => crate::media::declared(request.headers()).map_err(|why| {
            Box::new(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Bad media type",
                why,
            ))
        })?,
    };
    match media.as_str() {
        "application/json" => json(rest, request).await,
        "multipart/form-data" => {
            let limit = rest.body_timeout;
            match tokio::time::timeout(limit, form(rest, principal, descriptor, request)).await {
                Ok(result) => result,
                Err(_) => Err(crate::artifacts::too_slow(rest)),
            }
        }
        other => Err(Box::new(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad media type",
            format!(
                "a call takes `application/json` (the arguments) or `multipart/form-data` \
                 (files and arguments), not `{other}`"
            ),
        ))),
    }
}

async fn json(rest: &Rest, request: Request) -> Result<Value, Refused> {
    // Arguments are a message, as over MCP; files travel as uploads or form parts.
    let limit = rest.served.settings.server.max_message_bytes;
    let bytes =
        crate::artifacts::read_body(rest, request, limit, "server.max_message_bytes").await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        bad(
            "Body is not JSON",
            format!("the body is not a JSON object of arguments: {e}"),
            None,
        )
    })?;
    if !value.is_object() {
        return Err(bad(
            "Arguments are not an object",
            "the body must be a JSON object of arguments".into(),
            None,
        ));
    }
    Ok(value)
}

/// The schema of argument `name`, when the tool has one by that name.
fn property<'a>(descriptor: &'a ToolDescriptor, name: &str) -> Option<&'a Value> {
    descriptor.input_schema.get("properties")?.get(name)
}

fn takes(schema: &Value, kind: &str) -> bool {
    schema.get("type").and_then(Value::as_str) == Some(kind)
        || schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|branches| {
                branches
                    .iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some(kind))
            })
}

fn argument_names(descriptor: &ToolDescriptor) -> String {
    descriptor
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// A file part bound to file argument `name`: uploaded, its artifact URI.
async fn file_part(
    rest: &Rest,
    principal: &Principal,
    descriptor: &ToolDescriptor,
    name: &str,
    declared: Result<String, String>,
    bytes: Vec<u8>,
) -> Result<Value, Refused> {
    if !descriptor
        .file_args
        .iter()
        .any(|p| p == &format!("/{name}"))
    {
        let takes = descriptor
            .file_args
            .iter()
            .map(|p| p.trim_start_matches('/'))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(bad(
            "File bound to no argument",
            format!(
                "part `{name}` carries a file, but `{name}` is not a file argument of `{}` \
                 (its file arguments: {})",
                descriptor.name,
                if takes.is_empty() { "none" } else { &takes }
            ),
            Some(name),
        ));
    }
    let declared = declared.map_err(|why| {
        Box::new(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad media type",
            why,
        ))
    })?;
    let kept = crate::artifacts::keep(rest, principal, bytes, &declared).await?;
    Ok(Value::String(format!(
        "{ARTIFACT_URI_PREFIX}{}",
        kept.sha256
    )))
}

async fn form(
    rest: &Rest,
    principal: &Principal,
    descriptor: &ToolDescriptor,
    request: Request,
) -> Result<Value, Refused> {
    let tool = &descriptor.name;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| bad("Bad multipart form", e.body_text(), None))?;
    let mut args = Map::new();
    let mut fields = Map::new();
    let mut files: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut total = 0usize;
    let mut parts = 0usize;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(crate::artifacts::too_large(
                    rest.upload_limit,
                    "http.upload_max_bytes",
                ));
            }
            Err(e) => return Err(bad("Bad multipart form", e.body_text(), None)),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(bad(
                "Too many parts",
                format!("the form has more than {MAX_PARTS} parts"),
                None,
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let declared = field.content_type().map_or_else(
            || Ok("application/octet-stream".to_owned()),
            baton_gate::parse_media_type,
        );
        let bytes = match field.bytes().await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(crate::artifacts::too_large(
                    rest.upload_limit,
                    "http.upload_max_bytes",
                ));
            }
            Err(e) => return Err(bad("Bad multipart form", e.body_text(), Some(&name))),
        };
        total += bytes.len();
        if total > rest.upload_limit {
            return Err(crate::artifacts::too_large(
                rest.upload_limit,
                "http.upload_max_bytes",
            ));
        }
        if name == "args" && !is_file {
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(given)) => args.extend(given),
                _ => {
                    return Err(bad(
                        "Bad `args` part",
                        "the `args` part must be a JSON object of arguments".into(),
                        Some(&name),
                    ));
                }
            }
            continue;
        }
        if is_file {
            let uri =
                file_part(rest, principal, descriptor, &name, declared, bytes.to_vec()).await?;
            files.entry(name).or_default().push(uri);
            continue;
        }
        let Some(schema) = property(descriptor, &name) else {
            return Err(bad(
                "Part bound to no argument",
                format!(
                    "part `{name}` is bound to no argument of `{tool}` (its arguments: {}; \
                     or `args`, a JSON object of them)",
                    argument_names(descriptor)
                ),
                Some(&name),
            ));
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let value = if takes(schema, "string") {
            Value::String(text)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        fields.insert(name, value);
    }
    args.extend(fields);
    bind_files(descriptor, args, files)
}

/// The file parts' URIs bound to their arguments: a list for an argument that takes one.
fn bind_files(
    descriptor: &ToolDescriptor,
    mut args: Map<String, Value>,
    files: BTreeMap<String, Vec<Value>>,
) -> Result<Value, Refused> {
    for (name, mut uris) in files {
        let many = property(descriptor, &name).is_some_and(|s| takes(s, "array"));
        let value = match (many, uris.len()) {
            (true, _) => Value::Array(uris),
            (false, 1) => uris.remove(0),
            (false, n) => {
                return Err(bad(
                    "Too many files",
                    format!("{n} files for `{name}`, which takes one"),
                    Some(&name),
                ));
            }
        };
        args.insert(name, value);
    }
    Ok(Value::Object(args))
}
