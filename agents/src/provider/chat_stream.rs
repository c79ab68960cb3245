use serde_json::Value;

use super::{Delta, Deltas, ModelResponse, Usage};
use crate::{FunctionCall, Message, ToolCall};

/// A streamed Chat Completion being put together from its chunks (`choices[0].delta`): text
/// and refusal appended, tool calls assembled by their `index`, the finish reason and the
/// usage of the last chunks (`stream_options.include_usage`).
#[derive(Debug, Default)]
pub(super) struct Assembly {
    text: String,
    refusal: Option<String>,
    calls: Vec<ToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl Assembly {
    /// Take one chunk, its pieces going to `deltas`; an error for a chunk that reports one or
    /// that cannot be part of a well-formed completion.
    pub(super) fn take(&mut self, chunk: &Value, deltas: Deltas<'_>) -> Result<(), String> {
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(format!(
                "the stream reported an error: {}",
                error["message"].as_str().unwrap_or("(no message)")
            ));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(
                serde_json::from_value(usage.clone())
                    .map_err(|e| format!("a chunk's `usage` is malformed: {e}"))?,
            );
        }
        let Some(choice) = chunk["choices"]
            .as_array()
            .and_then(|choices| choices.iter().find(|c| c["index"].as_u64() == Some(0)))
        else {
            return Ok(());
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            self.text.push_str(text);
            deltas(Delta::Text(text.to_owned()));
        }
        if let Some(refusal) = delta["refusal"].as_str().filter(|r| !r.is_empty()) {
            self.refusal.get_or_insert_default().push_str(refusal);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            self.call_delta(call, deltas)?;
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        Ok(())
    }

    fn call_delta(&mut self, call: &Value, deltas: Deltas<'_>) -> Result<(), String> {
        let id = call["id"].as_str().filter(|id| !id.is_empty());
        let index = match call["index"].as_u64() {
            Some(index) => usize::try_from(index).unwrap_or(usize::MAX),
            // Some servers (Gemini's) number nothing: a new id starts a call, and a piece
            // without one goes on with the last.
            None => match (id, self.calls.last()) {
                (Some(id), Some(last)) if last.id == id => self.calls.len() - 1,
                (Some(_), _) | (None, None) => self.calls.len(),
                (None, Some(_)) => self.calls.len() - 1,
            },
        };
        // Calls are numbered from 0 as they start; a gap would leave a call never written.
        if index > self.calls.len() {
            return Err(format!(
                "tool call delta {index} arrived while only {} calls had started",
                self.calls.len()
            ));
        }
        if index == self.calls.len() {
            self.calls.push(ToolCall {
                id: String::new(),
                kind: "function".into(),
                function: FunctionCall {
                    name: String::new(),
                    arguments: String::new(),
                },
            });
        }
        let slot = &mut self.calls[index];
        // An id or name is set once: a second, different one under the same index would
        // merge two calls into one with both calls' arguments.
        for (given, kept, what) in [
            (id, &mut slot.id, "id"),
            (
                call["function"]["name"].as_str().filter(|n| !n.is_empty()),
                &mut slot.function.name,
                "name",
            ),
        ] {
            match given {
                Some(given) if kept.is_empty() => given.clone_into(kept),
                Some(given) if given != kept.as_str() => {
                    return Err(format!(
                        "tool call {index} changed its {what} from `{kept}` to `{given}` mid-stream"
                    ));
                }
                Some(_) | None => {}
            }
        }
        if let Some(arguments) = call["function"]["arguments"].as_str() {
            slot.function.arguments.push_str(arguments);
            if !arguments.is_empty() {
                deltas(Delta::ToolArguments {
                    call_id: slot.id.clone(),
                    name: slot.function.name.clone(),
                    delta: arguments.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The assistant's message, once the stream has ended.
    pub(super) fn finish(self) -> Result<ModelResponse, String> {
        if self.finish_reason.is_none() {
            return Err(
                "the stream ended before the completion finished (no `finish_reason`)".into(),
            );
        }
        if let Some((index, _)) = self
            .calls
            .iter()
            .enumerate()
            .find(|(_, call)| call.id.is_empty() || call.function.name.is_empty())
        {
            return Err(format!("streamed tool call {index} has no id or no name"));
        }
        Ok(ModelResponse {
            message: Message::Assistant {
                content: (!self.text.is_empty()).then_some(self.text),
                tool_calls: self.calls,
                refusal: self.refusal,
                responses_output: Vec::new(),
            },
            finish_reason: self.finish_reason,
            usage: self.usage,
        })
    }
}
