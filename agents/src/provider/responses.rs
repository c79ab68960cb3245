use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::openai::{ATTEMPTS, retried};
use super::{Delta, Deltas, ModelRequest, ModelResponse, Provider, Usage};
use crate::{AgentError, FunctionCall, Message, Result, ToolCall};

/// Any endpoint speaking OpenAI's Responses API (`POST /responses`, streamed as server-sent
/// events), through `async-openai`. Retries are async-openai's, as for Chat Completions.
///
/// A conversation that goes on from one of this provider's answers is chained: the request
/// names that response (`previous_response_id`) and sends only what came after it. A server
/// that refuses a chained request (a 404, or a 400 naming `previous_response_id`: it keeps no
/// responses, or not that one) gets
/// it again with the whole conversation, and from then on only whole conversations, so any
/// server that speaks the API works. A new process starts unchained, so a resumed run sends
/// its journal's history whole.
#[derive(Debug)]
pub struct ResponsesProvider {
    client: Client<OpenAIConfig>,
    base: String,
    chain: std::sync::Mutex<Chain>,
}

/// The responses a conversation can go on from, by a keyed hash of the conversation up to
/// and including each one's answer (keyed per process, so no one can aim a collision).
#[derive(Debug, Default)]
struct Chain {
    keys: std::hash::RandomState,
    responses: std::collections::HashMap<u64, String>,
    refused: bool,
}

impl Chain {
    /// `None` for a conversation that cannot be serialized: it is then never chained.
    fn key<'m>(&self, messages: impl IntoIterator<Item = &'m Message>) -> Option<u64> {
        use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
        let mut hasher = self.keys.build_hasher();
        for message in messages {
            serde_json::to_string(message).ok()?.hash(&mut hasher);
        }
        Some(hasher.finish())
    }

    /// Remember `id` as the answer `answer` to `messages`.
    fn remember(&mut self, messages: &[Message], answer: &Message, id: String) {
        if let Some(key) = self.key(messages.iter().chain([answer])) {
            self.responses.insert(key, id);
        }
    }

    /// The response `messages` go on from, and the index of the first message after it.
    fn previous(&self, messages: &[Message]) -> Option<(String, usize)> {
        if self.refused {
            return None;
        }
        let last = messages
            .iter()
            .rposition(|m| matches!(m, Message::Assistant { .. }))?;
        let id = self.responses.get(&self.key(&messages[..=last])?)?;
        (last + 1 < messages.len()).then(|| (id.clone(), last + 1))
    }
}

impl ResponsesProvider {
    /// An endpoint at `base_url` (e.g. `https://api.openai.com/v1`) with `api_key`.
    pub fn new(base_url: &str, api_key: &str) -> ResponsesProvider {
        let config = OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(api_key);
        ResponsesProvider {
            client: Client::with_config(config),
            base: base_url.to_owned(),
            chain: std::sync::Mutex::default(),
        }
    }

    fn chain(&self) -> std::sync::MutexGuard<'_, Chain> {
        // The chain is a cache: one poisoned by a panic elsewhere is still usable.
        self.chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn failed(&self, message: String) -> AgentError {
        AgentError::Provider {
            provider: self.base.clone(),
            message,
        }
    }
}

/// The Responses API request for `request`: the first system message as `instructions`, the
/// rest as input items, tools as function tools, an output schema as `text.format`.
pub(crate) fn body(request: &ModelRequest) -> Value {
    body_from(request, 0)
}

/// [`body`] with only the messages from index `from` on as input items (the server has the
/// rest, from a previous response); `instructions` are sent whatever `from` is, as the server
/// does not carry them over.
fn body_from(request: &ModelRequest, from: usize) -> Value {
    let mut instructions = None;
    let mut input = Vec::new();
    for (at, message) in request.messages.iter().enumerate() {
        if instructions.is_none()
            && let Message::System { content } = message
        {
            instructions = Some(content.clone());
            continue;
        }
        if at < from {
            continue;
        }
        match message {
            Message::System { content } => {
                input.push(json!({"role": "system", "content": content}));
            }
            Message::User { content } => input.push(json!({"role": "user", "content": content})),
            Message::Assistant {
                content,
                tool_calls,
                refusal: _,
                responses_output,
            } if !responses_output.is_empty() => input.extend(responses_output.iter().cloned()),
            Message::Assistant {
                content,
                tool_calls,
                refusal: _,
                responses_output: _,
            } => {
                if let Some(text) = content.as_ref().filter(|t| !t.is_empty()) {
                    input.push(json!({"type": "message", "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}));
                }
                for call in tool_calls {
                    input.push(json!({"type": "function_call", "call_id": call.id,
                        "name": call.function.name, "arguments": call.function.arguments}));
                }
            }
            Message::Tool {
                tool_call_id,
                content,
            } => input.push(
                json!({"type": "function_call_output", "call_id": tool_call_id, "output": content}),
            ),
        }
    }
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|tool| {
            json!({"type": "function", "name": tool.function.name,
                "description": tool.function.description,
                "parameters": tool.function.parameters, "strict": false})
        })
        .collect();
    let mut body = json!({"model": request.model, "input": input, "stream": true});
    if let Some(instructions) = instructions {
        body["instructions"] = json!(instructions);
    }
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    if let Some(format) = &request.response_format {
        body["text"] = json!({"format": {"type": "json_schema",
            "name": format.json_schema.name, "schema": format.json_schema.schema,
            "strict": format.json_schema.strict}});
    }
    body
}

/// A response being read from its events: the output items as they finish, and the end.
#[derive(Default)]
struct Reading {
    items: Vec<Value>,
    completed: Option<Value>,
    /// Function calls being written, by output item id: their call id and tool name.
    calls: std::collections::HashMap<String, (String, String)>,
}

impl Reading {
    /// Take one event (its pieces go to `deltas`); an error for one that says the response
    /// failed.
    fn take(&mut self, event: Value, deltas: Deltas<'_>) -> std::result::Result<(), String> {
        let text = |key: &str| event[key].as_str().unwrap_or_default().to_owned();
        match event["type"].as_str().unwrap_or_default() {
            "response.output_text.delta" => deltas(Delta::Text(text("delta"))),
            "response.output_item.added" if event["item"]["type"] == "function_call" => {
                let item = &event["item"];
                self.calls.insert(
                    item["id"].as_str().unwrap_or_default().to_owned(),
                    (
                        item["call_id"].as_str().unwrap_or_default().to_owned(),
                        item["name"].as_str().unwrap_or_default().to_owned(),
                    ),
                );
            }
            "response.function_call_arguments.delta" => {
                if let Some((call_id, name)) = self.calls.get(&text("item_id")) {
                    deltas(Delta::ToolArguments {
                        call_id: call_id.clone(),
                        name: name.clone(),
                        delta: text("delta"),
                    });
                }
            }
            "response.output_item.done" => self.items.push(event["item"].clone()),
            "response.completed" | "response.incomplete" => {
                self.completed = Some(event["response"].clone());
            }
            "response.failed" => {
                return Err(event["response"]["error"]["message"]
                    .as_str()
                    .unwrap_or("the response failed")
                    .to_owned());
            }
            "error" => {
                return Err(event["message"]
                    .as_str()
                    .unwrap_or("the server sent an error event")
                    .to_owned());
            }
            _ => {}
        }
        Ok(())
    }

    /// The assistant's message, as the conversation keeps it.
    fn finish(self) -> std::result::Result<ModelResponse, String> {
        let Some(response) = self.completed else {
            return Err("the event stream ended before `response.completed`".into());
        };
        let items = if self.items.is_empty() {
            response["output"].as_array().cloned().unwrap_or_default()
        } else {
            self.items
        };
        parse(&response, &items)
    }
}

/// The assistant's message a response holds: `response` for its status and usage, `items`
/// for its output.
pub(crate) fn parse(
    response: &Value,
    items: &[Value],
) -> std::result::Result<ModelResponse, String> {
    let mut text = String::new();
    let mut refusal = None;
    let mut tool_calls = Vec::new();
    for item in items {
        match item["type"].as_str().unwrap_or_default() {
            "message" => {
                for part in item["content"].as_array().into_iter().flatten() {
                    match part["type"].as_str().unwrap_or_default() {
                        "output_text" => text.push_str(part["text"].as_str().unwrap_or("")),
                        "refusal" => refusal = part["refusal"].as_str().map(str::to_owned),
                        _ => {}
                    }
                }
            }
            "function_call" => tool_calls.push(ToolCall {
                id: string(item, "call_id")?,
                kind: "function".into(),
                function: FunctionCall {
                    name: string(item, "name")?,
                    arguments: string(item, "arguments")?,
                },
            }),
            // Reasoning, and the server's own tools' items, go back only as the whole
            // output kept below.
            _ => {}
        }
    }
    let usage = response
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| Usage {
            prompt_tokens: u["input_tokens"].as_u64().unwrap_or(0),
            completion_tokens: u["output_tokens"].as_u64().unwrap_or(0),
        });
    let finish_reason = match response["status"].as_str() {
        Some("incomplete") => Some("length".to_owned()),
        _ if !tool_calls.is_empty() => Some("tool_calls".to_owned()),
        _ => Some("stop".to_owned()),
    };
    Ok(ModelResponse {
        message: Message::Assistant {
            content: (!text.is_empty()).then_some(text),
            tool_calls,
            refusal,
            responses_output: if items.iter().any(|item| item["type"] == "reasoning") {
                items.to_vec()
            } else {
                Vec::new()
            },
        },
        finish_reason,
        usage,
    })
}

/// `response` as the Responses API's `response` object holds it: its kept output items, or
/// else a message item with its text and refusal and a `function_call` item per tool call;
/// the status and the usage. The inverse of [`parse`].
pub(crate) fn wire(response: &ModelResponse) -> Value {
    let output = match &response.message {
        Message::Assistant {
            responses_output, ..
        } if !responses_output.is_empty() => responses_output.clone(),
        Message::Assistant {
            content,
            tool_calls,
            refusal,
            responses_output: _,
        } => {
            let mut output = Vec::new();
            let mut parts = Vec::new();
            if let Some(text) = content {
                parts.push(json!({"type": "output_text", "text": text, "annotations": []}));
            }
            if let Some(refusal) = refusal {
                parts.push(json!({"type": "refusal", "refusal": refusal}));
            }
            if !parts.is_empty() {
                output.push(json!({"type": "message", "role": "assistant",
                    "status": "completed", "content": parts}));
            }
            for call in tool_calls {
                output.push(json!({"type": "function_call", "call_id": call.id,
                    "name": call.function.name, "arguments": call.function.arguments,
                    "status": "completed"}));
            }
            output
        }
        Message::System { .. } | Message::User { .. } | Message::Tool { .. } => Vec::new(),
    };
    let status = if response.finish_reason.as_deref() == Some("length") {
        "incomplete"
    } else {
        "completed"
    };
    let mut wire = json!({"status": status, "output": output});
    if let Some(usage) = response.usage {
        wire["usage"] = json!({"input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens});
    }
    wire
}

fn string(item: &Value, key: &str) -> std::result::Result<String, String> {
    item[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("a `{}` output item has no `{key}`", item["type"]))
}

/// Whether `error`, the answer to a chained request, says the server cannot go on from the
/// response named: it has no such response (404), or refuses the parameter itself (400
/// naming `previous_response_id`). Any other error is the request's own, and is not retried.
fn refused_chain(error: &async_openai::error::ApiErrorResponse) -> bool {
    match error.status_code.as_u16() {
        404 => true,
        400 => error.api_error.param.as_deref() == Some("previous_response_id"),
        _ => false,
    }
}

impl Provider for ResponsesProvider {
    fn name(&self) -> &str {
        &self.base
    }

    fn complete<'a>(&'a self, request: &'a ModelRequest) -> BoxFuture<'a, Result<ModelResponse>> {
        self.stream(request, &|_| {})
    }

    fn stream<'a>(
        &'a self,
        request: &'a ModelRequest,
        deltas: Deltas<'a>,
    ) -> BoxFuture<'a, Result<ModelResponse>> {
        Box::pin(async move {
            let previous = self.chain().previous(&request.messages);
            let first = match &previous {
                Some((id, from)) => {
                    let mut chained = body_from(request, *from);
                    chained["previous_response_id"] = json!(id);
                    chained
                }
                None => body(request),
            };
            let responses = self.client.responses();
            let mut events = match responses.create_stream_byot::<Value, Value>(first).await {
                Err(OpenAIError::ApiError(error))
                    if previous.is_some() && refused_chain(&error) =>
                {
                    tracing::info!(server = %self.base, error = %error.api_error.message,
                        "the server refused a chained request: sending whole conversations");
                    self.chain().refused = true;
                    responses.create_stream_byot(body(request)).await
                }
                sent => sent,
            }
            .map_err(|error| {
                if retried(&error) {
                    self.failed(format!("{error} (gave up after {ATTEMPTS} attempts)"))
                } else {
                    self.failed(error.to_string())
                }
            })?;
            let mut reading = Reading::default();
            while let Some(event) = events.next().await {
                let event = event.map_err(|e| self.failed(e.to_string()))?;
                reading.take(event, deltas).map_err(|e| self.failed(e))?;
                if reading.completed.is_some() {
                    break;
                }
            }
            let id = reading
                .completed
                .as_ref()
                .and_then(|r| r["id"].as_str())
                .map(str::to_owned);
            let response = reading.finish().map_err(|e| self.failed(e))?;
            if let Some(id) = id {
                self.chain()
                    .remember(&request.messages, &response.message, id);
            }
            Ok(response)
        })
    }
}
