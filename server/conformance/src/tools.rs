//! Fixture tool behaviours.

// Sampling and logging are deprecated by SEP-2577 but still in the 2025-11-25 suite.
#![allow(deprecated)]

use std::time::Duration;

use baton_kit::{Outcome, Principal};
use rmcp::model::{
    AudioContent, CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities,
    ContentBlock, CreateMessageRequestParams, ElicitRequestParams, ElicitationAction,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses,
    LoggingLevel, LoggingMessageNotificationParam, PromptListChangedNotification, ResourceContents,
    SamplingMessage, ServerNotification, ToolListChangedNotification,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};

use crate::fixtures::{Conformance, PNG_1X1, WAV_EMPTY};
use baton_gate::Gate;
use baton_mcp::{ProgressRelay, error_to_mcp};

const STEP: Duration = Duration::from_millis(50);

/// An elicitation input request asking for one string field.
pub(crate) fn elicitation(message: &str, field: &str) -> InputRequest {
    input_request(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: { "type": "string" } },
                "required": [field]
            }
        }
    }))
}

fn boolean_elicitation(message: &str, field: &str) -> InputRequest {
    input_request(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": { field: { "type": "boolean" } },
                "required": [field]
            }
        }
    }))
}

fn sampling(prompt: &str) -> InputRequest {
    input_request(json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt } }],
            "maxTokens": 100
        }
    }))
}

fn list_roots() -> InputRequest {
    input_request(json!({ "method": "roots/list" }))
}

fn input_request(value: Value) -> InputRequest {
    // The shapes above are fixed protocol messages; one that does not parse is a bug here.
    match serde_json::from_value(value) {
        Ok(request) => request,
        Err(error) => panic_free_fallback(error),
    }
}

fn panic_free_fallback(error: serde_json::Error) -> InputRequest {
    tracing::error!(%error, "conformance fixture input request does not parse");
    InputRequest::ListRoots(Default::default())
}

/// The client's answer to input request `key`, when it is an object (anything else counts as
/// missing, so the request is asked again).
pub(crate) fn response<'a>(responses: Option<&'a InputResponses>, key: &str) -> Option<&'a Value> {
    responses.and_then(|r| r.get(key)).filter(|v| v.is_object())
}

fn text(text: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
}

fn action_name(action: &ElicitationAction) -> &'static str {
    match action {
        ElicitationAction::Accept => "accept",
        ElicitationAction::Decline => "decline",
        ElicitationAction::Cancel => "cancel",
        _ => "unknown",
    }
}

impl Conformance {
    /// Call a fixture tool through the gate.
    pub async fn call(
        &self,
        gate: &Gate,
        principal: &Principal,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(descriptor) = self.descriptors.get(request.name.as_ref()) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                None,
            ));
        };
        let args = Value::Object(request.arguments.clone().unwrap_or_default());
        let outcome = gate
            .run(principal, descriptor, &args, None, async {
                Ok(self.run(request, context).await)
            })
            .await;
        match outcome {
            Ok(Outcome::Completed(response)) => response,
            Ok(Outcome::PendingApproval(pending)) => {
                Ok(CallToolResult::structured(json!({ "pending_approval": pending })).into())
            }
            Err(error) => error_to_mcp(error).map(Into::into),
        }
    }

    async fn run(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        if name.starts_with("test_input_required_result_") {
            return self.input_required(&request, &context);
        }
        let arg = |key: &str| {
            request
                .arguments
                .as_ref()
                .and_then(|args| args.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match name {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                Ok(CallToolResult::success(vec![ContentBlock::image(PNG_1X1, "image/png")]).into())
            }
            "test_audio_content" => Ok(CallToolResult::success(vec![ContentBlock::Audio(
                AudioContent::new(WAV_EMPTY, "audio/wav"),
            )])
            .into()),
            "test_embedded_resource" => Ok(CallToolResult::success(vec![ContentBlock::resource(
                ResourceContents::text(
                    "This is an embedded resource content.",
                    "test://embedded-resource",
                ),
            )])
            .into()),
            "test_multiple_content_types" => Ok(CallToolResult::success(vec![
                ContentBlock::text("Multiple content types test:"),
                ContentBlock::image(PNG_1X1, "image/png"),
                ContentBlock::resource(
                    ResourceContents::text(
                        json!({ "test": "data", "value": 123 }).to_string(),
                        "test://mixed-content-resource",
                    )
                    .with_mime_type("application/json"),
                ),
            ])
            .into()),
            "test_tool_with_logging" => {
                for message in [
                    "Tool execution started",
                    "Tool processing data",
                    "Tool execution completed",
                ] {
                    self.log(&context, LoggingLevel::Info, message).await;
                    tokio::time::sleep(STEP).await;
                }
                text("Logging test completed")
            }
            "test_error_handling" => Ok(CallToolResult::error(vec![ContentBlock::text(
                "This tool intentionally returns an error for testing",
            )])
            .into()),
            "test_tool_with_progress" => {
                let relay = ProgressRelay::start(&context);
                if let Some(relay) = &relay {
                    let sink = relay.sink();
                    for (progress, message) in
                        [(0.0, "Starting"), (50.0, "Halfway"), (100.0, "Complete")]
                    {
                        sink.report(baton_kit::Progress {
                            progress,
                            total: Some(100.0),
                            message: Some(message.into()),
                        });
                        tokio::time::sleep(STEP).await;
                    }
                }
                if let Some(relay) = relay {
                    relay.finish().await;
                }
                text("Progress test completed")
            }
            "test_custom_header" => match arg("value") {
                Some(value) => text(value),
                None => Err(ErrorData::invalid_params("value must be a string", None)),
            },
            "test_sampling" => {
                let prompt = arg("prompt").unwrap_or_else(|| "Hello".into());
                let params =
                    CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
                match context.peer.create_message(params).await {
                    Ok(result) => {
                        let reply = result
                            .message
                            .content
                            .first()
                            .and_then(|c| c.as_text())
                            .map_or_else(|| "No text response".to_owned(), |t| t.text.clone());
                        text(format!("LLM response: {reply}"))
                    }
                    Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "Sampling error: {error}"
                    ))])
                    .into()),
                }
            }
            "test_elicitation"
            | "test_elicitation_sep1034_defaults"
            | "test_elicitation_sep1330_enums" => self.elicit(name, arg("message"), &context).await,
            "json_schema_2020_12_tool" => text(format!(
                "Hello, {}!",
                arg("name").unwrap_or_else(|| "world".into())
            )),
            "test_reconnection" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                text("Reconnection test completed")
            }
            "test_trigger_tool_change" => {
                self.broadcast(ServerNotification::ToolListChangedNotification(
                    ToolListChangedNotification::default(),
                ))
                .await;
                text("Tool list change triggered")
            }
            "test_trigger_prompt_change" => {
                self.broadcast(ServerNotification::PromptListChangedNotification(
                    PromptListChangedNotification::default(),
                ))
                .await;
                text("Prompt list change triggered")
            }
            "test_missing_capability" => {
                let capabilities = context.meta.client_capabilities().unwrap_or_default();
                if capabilities.sampling.is_none() {
                    return Err(ErrorData::missing_required_client_capability(
                        ClientCapabilities::builder().enable_sampling().build(),
                    ));
                }
                text("Required capability declared")
            }
            "test_streaming_elicitation" => {
                let mut requests = InputRequests::new();
                requests.insert(
                    "streaming_elicitation".into(),
                    elicitation("Provide a value", "value"),
                );
                Ok(InputRequiredResult::from_input_requests(requests).into())
            }
            "test_logging_tool" => {
                if let Some(level) = context.meta.log_level() {
                    self.log(&context, level, "logLevel was requested").await;
                }
                text("Logging tool completed")
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool `{other}`"),
                None,
            )),
        }
    }

    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, message: &str) {
        let param = LoggingMessageNotificationParam::new(level, json!(message))
            .with_logger("baton-conformance");
        let _ = context.peer.notify_logging_message(param).await;
    }

    async fn elicit(
        &self,
        name: &str,
        message: Option<String>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let schema = self.elicitation_schemas.get(name).cloned().ok_or_else(|| {
            ErrorData::internal_error(format!("no elicitation schema for `{name}`"), None)
        })?;
        let schema: ElicitationSchema = serde_json::from_value(schema).map_err(|error| {
            ErrorData::internal_error(format!("elicitation schema: {error}"), None)
        })?;
        let message = match name {
            "test_elicitation" => {
                message.unwrap_or_else(|| "Please provide your information".into())
            }
            "test_elicitation_sep1034_defaults" => {
                "Please provide values (all have defaults)".into()
            }
            _ => "Test enum schema improvements".into(),
        };
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message,
            requested_schema: schema,
        };
        match context.peer.create_elicitation(params).await {
            Ok(result) => {
                let action = action_name(&result.action);
                let content = result
                    .content
                    .map_or_else(|| "None".to_owned(), |c| c.to_string());
                text(match name {
                    "test_elicitation" => {
                        format!("User response: action={action}, content={content}")
                    }
                    "test_elicitation_sep1034_defaults" => {
                        format!("Elicitation completed: action={action}, content={content}")
                    }
                    _ => format!("Enum elicitation completed: action={action}"),
                })
            }
            Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "Elicitation error: {error}"
            ))])
            .into()),
        }
    }

    /// SEP-2322 (`InputRequiredResult`) fixtures.
    fn input_required(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let responses = request.input_responses.as_ref();
        let tampered =
            || ErrorData::invalid_params("requestState failed integrity verification", None);
        let seal = |state: Value| {
            self.request_state
                .seal_json(&state)
                .map_err(|error| ErrorData::internal_error(error.to_string(), None))
        };
        let ask = |requests: InputRequests,
                   state: Option<String>|
         -> Result<CallToolResponse, ErrorData> {
            Ok(InputRequiredResult::new(Some(requests), state).into())
        };
        match request.name.as_ref() {
            "test_input_required_result_elicitation" => match response(responses, "user_name") {
                Some(answer) => {
                    let name = answer
                        .pointer("/content/name")
                        .and_then(Value::as_str)
                        .unwrap_or("friend");
                    text(format!("Hello, {name}!"))
                }
                None => ask(
                    InputRequests::from([(
                        "user_name".into(),
                        elicitation("What is your name?", "name"),
                    )]),
                    None,
                ),
            },
            "test_input_required_result_sampling" => {
                match response(responses, "capital_question") {
                    Some(answer) => {
                        let reply = answer
                            .pointer("/content/text")
                            .and_then(Value::as_str)
                            .unwrap_or("(no sampling text)");
                        text(format!("Sampling response: {reply}"))
                    }
                    None => ask(
                        InputRequests::from([(
                            "capital_question".into(),
                            sampling("What is the capital of France?"),
                        )]),
                        None,
                    ),
                }
            }
            "test_input_required_result_list_roots" => match response(responses, "client_roots") {
                Some(answer) => {
                    let roots: Vec<&str> = answer
                        .get("roots")
                        .and_then(Value::as_array)
                        .map(|roots| {
                            roots
                                .iter()
                                .filter_map(|r| r.get("uri").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    text(format!("Client roots: [{}]", roots.join(", ")))
                }
                None => ask(
                    InputRequests::from([("client_roots".into(), list_roots())]),
                    None,
                ),
            },
            "test_input_required_result_request_state"
            | "test_input_required_result_tampered_state" => {
                match request.request_state.as_deref() {
                    None => ask(
                        InputRequests::from([(
                            "confirm".into(),
                            boolean_elicitation("Please confirm", "ok"),
                        )]),
                        Some(seal(json!({ "stage": "confirm" }))?),
                    ),
                    Some(sealed) => {
                        self.request_state.open(sealed).map_err(|_| tampered())?;
                        text("Confirmed: state-ok")
                    }
                }
            }
            "test_input_required_result_multiple_inputs" => {
                if let Some(sealed) = request.request_state.as_deref() {
                    self.request_state.open(sealed).map_err(|_| tampered())?;
                }
                let all = ["user_name", "greeting", "client_roots"]
                    .iter()
                    .all(|key| response(responses, key).is_some());
                if all && request.request_state.is_some() {
                    text("All inputs received")
                } else {
                    ask(
                        InputRequests::from([
                            (
                                "user_name".into(),
                                elicitation("What is your name?", "name"),
                            ),
                            ("greeting".into(), sampling("Generate a greeting")),
                            ("client_roots".into(), list_roots()),
                        ]),
                        Some(seal(json!({ "stage": "gather" }))?),
                    )
                }
            }
            "test_input_required_result_multi_round" => {
                let round = match request.request_state.as_deref() {
                    None => 0,
                    Some(sealed) => {
                        let state: Value = self
                            .request_state
                            .open_json(sealed)
                            .map_err(|_| tampered())?;
                        state.get("round").and_then(Value::as_i64).unwrap_or(0)
                    }
                };
                match round {
                    0 => ask(
                        InputRequests::from([(
                            "step1".into(),
                            elicitation("Step 1: What is your name?", "name"),
                        )]),
                        Some(seal(json!({ "round": 1 }))?),
                    ),
                    1 => ask(
                        InputRequests::from([(
                            "step2".into(),
                            elicitation("Step 2: What is your favorite color?", "color"),
                        )]),
                        Some(seal(json!({ "round": 2 }))?),
                    ),
                    _ => text("Multi-round flow complete"),
                }
            }
            "test_input_required_result_capabilities" => {
                if responses.is_some() {
                    return text("Capability-aware flow complete");
                }
                let capabilities = context.meta.client_capabilities().unwrap_or_default();
                let mut requests = InputRequests::new();
                if capabilities.elicitation.is_some() {
                    requests.insert(
                        "user_name".into(),
                        elicitation("What is your name?", "name"),
                    );
                }
                if capabilities.sampling.is_some() {
                    requests.insert("greeting".into(), sampling("Generate a greeting"));
                }
                if capabilities.roots.is_some() {
                    requests.insert("client_roots".into(), list_roots());
                }
                if requests.is_empty() {
                    text("Client declared no MRTR-capable capabilities")
                } else {
                    ask(requests, None)
                }
            }
            other => Err(ErrorData::invalid_params(
                format!("unknown tool `{other}`"),
                None,
            )),
        }
    }
}
