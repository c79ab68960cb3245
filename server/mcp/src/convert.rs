use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use baton_kit::{Attachment, ToolDescriptor, ToolError, ToolErrorKind, ToolOutput};
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, Resource, Tool, ToolAnnotations};
use serde_json::json;

/// The MCP `Tool` for a descriptor, with hints derived from its effect.
pub fn descriptor_to_tool(descriptor: &ToolDescriptor) -> Tool {
    let effect = descriptor.effect;
    let mut annotations = ToolAnnotations::new()
        .read_only(effect.is_read_only())
        .open_world(effect.is_open_world());
    // `destructiveHint` only means something when the tool is not read-only.
    if !effect.is_read_only() {
        annotations = annotations.destructive(effect.is_destructive());
    }
    if let Some(title) = &descriptor.title {
        annotations.title = Some(title.clone());
    }
    let mut tool = Tool::new(
        descriptor.name.clone(),
        descriptor.description.clone(),
        descriptor.input_schema.clone(),
    )
    .with_annotations(annotations);
    if let Some(title) = &descriptor.title {
        tool = tool.with_title(title.clone());
    }
    if let Some(output) = &descriptor.output_schema {
        tool = tool.with_raw_output_schema(output.clone());
    }
    tool
}

/// A successful call: the structured result, its JSON as text for clients that read only
/// content, then any attachments.
pub fn output_to_result(output: ToolOutput) -> CallToolResult {
    let mut result = CallToolResult::structured(output.structured);
    result
        .content
        .extend(output.attachments.into_iter().map(attachment_to_content));
    result
}

fn attachment_to_content(attachment: Attachment) -> ContentBlock {
    match attachment {
        Attachment::Image { mime_type, data } => {
            ContentBlock::image(BASE64.encode(data), mime_type)
        }
        Attachment::Audio { mime_type, data } => {
            ContentBlock::audio(BASE64.encode(data), mime_type)
        }
        Attachment::Link {
            uri,
            name,
            mime_type,
        } => {
            let mut resource = Resource::new(uri, name);
            if let Some(mime_type) = mime_type {
                resource = resource.with_mime_type(mime_type);
            }
            ContentBlock::resource_link(resource)
        }
    }
}

/// How a failed call reaches the client. Arguments that do not fit the schema are a protocol
/// error (`-32602`, with the JSON path in `data`), as is a cancelled request; everything the
/// tool or the policy decided is a tool result with `isError`, so the model reads why.
pub fn error_to_mcp(error: ToolError) -> Result<CallToolResult, ErrorData> {
    let kind = error.kind();
    match kind {
        ToolErrorKind::InvalidArgs => {
            let data = match &error {
                ToolError::InvalidArgs { path, message } => {
                    json!({ "kind": kind.as_str(), "path": path, "message": message })
                }
                _ => json!({ "kind": kind.as_str() }),
            };
            Err(ErrorData::invalid_params(error.to_string(), Some(data)))
        }
        ToolErrorKind::Cancelled => Err(ErrorData::new(
            ErrorCode(-32800),
            "request cancelled",
            Some(json!({ "kind": kind.as_str() })),
        )),
        ToolErrorKind::NotFound
        | ToolErrorKind::Denied
        | ToolErrorKind::Failed
        | ToolErrorKind::Timeout
        | ToolErrorKind::Busy
        | ToolErrorKind::Unavailable => Ok(CallToolResult::error(vec![ContentBlock::text(
            format!("{}: {error}", kind.as_str()),
        )])),
    }
}
