//! Fixture resources, templates, prompts and completions.

use rmcp::ErrorData;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, ImageContent, InputRequests, InputRequiredResult, Prompt,
    PromptArgument, PromptMessage, ReadResourceResult, Reference, Resource, ResourceContents,
    ResourceTemplate, Role,
};
use serde_json::json;

use crate::fixtures::{Conformance, PNG_1X1};
use crate::tools::{elicitation, response};

const TEMPLATE_PREFIX: &str = "test://template/";

impl Conformance {
    /// Fixture resources.
    pub fn resources(&self) -> Vec<Resource> {
        vec![
            Resource::new("test://static-text", "Static Text Resource")
                .with_description("A static text resource for testing")
                .with_mime_type("text/plain"),
            Resource::new("test://static-binary", "Static Binary Resource")
                .with_description("A static binary/blob resource for testing")
                .with_mime_type("image/png"),
        ]
    }

    /// Fixture resource templates.
    pub fn resource_templates(&self) -> Vec<ResourceTemplate> {
        vec![
            ResourceTemplate::new("test://template/{id}/data", "Dynamic Resource")
                .with_description("A dynamic resource with parameter substitution")
                .with_mime_type("application/json"),
        ]
    }

    /// Read a fixture resource.
    pub fn read(&self, uri: &str) -> Option<ReadResourceResult> {
        let contents = match uri {
            "test://static-text" => {
                ResourceContents::text("This is the content of the static text resource.", uri)
            }
            "test://static-binary" => {
                ResourceContents::blob(PNG_1X1, uri).with_mime_type("image/png")
            }
            _ => {
                let id = uri.strip_prefix(TEMPLATE_PREFIX)?.strip_suffix("/data")?;
                let text =
                    json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
                ResourceContents::text(text.to_string(), uri).with_mime_type("application/json")
            }
        };
        Some(ReadResourceResult::new(vec![contents]))
    }

    /// Fixture prompts.
    pub fn prompts(&self) -> Vec<Prompt> {
        vec![
            Prompt::new(
                "test_simple_prompt",
                Some("A simple test prompt with no arguments"),
                None,
            ),
            Prompt::new(
                "test_prompt_with_arguments",
                Some("A test prompt that accepts arguments"),
                Some(vec![
                    PromptArgument::new("arg1")
                        .with_description("First test argument")
                        .with_required(true),
                    PromptArgument::new("arg2")
                        .with_description("Second test argument")
                        .with_required(false),
                ]),
            ),
            Prompt::new(
                "test_prompt_with_embedded_resource",
                Some("A test prompt that includes an embedded resource"),
                None,
            ),
            Prompt::new(
                "test_prompt_with_image",
                Some("A test prompt that includes an image"),
                None,
            ),
            Prompt::new(
                "test_input_required_result_prompt",
                Some("A prompt that requires elicitation input via InputRequiredResult (SEP-2322)"),
                None,
            ),
        ]
    }

    /// `prompts/get` for a fixture prompt; `None` when `request` names none.
    pub fn get_prompt(
        &self,
        request: &GetPromptRequestParams,
    ) -> Option<Result<GetPromptResponse, ErrorData>> {
        let argument = |name: &str| {
            request
                .arguments
                .as_ref()
                .and_then(|args| args.get(name))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let result = match request.name.as_str() {
            "test_simple_prompt" => GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                "This is a simple test prompt.",
            )])
            .with_description("A simple test prompt"),
            "test_prompt_with_arguments" => GetPromptResult::new(vec![PromptMessage::new_text(
                Role::User,
                format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    argument("arg1"),
                    argument("arg2")
                ),
            )])
            .with_description("A prompt with arguments"),
            "test_prompt_with_embedded_resource" => GetPromptResult::new(vec![
                PromptMessage::new_text(Role::User, "Here is a resource:"),
                PromptMessage::new_resource(
                    Role::User,
                    "test://static-text".into(),
                    Some("text/plain".into()),
                    Some("Resource content for prompt".into()),
                    None,
                    None,
                    None,
                ),
            ])
            .with_description("A prompt with an embedded resource"),
            "test_prompt_with_image" => GetPromptResult::new(vec![
                PromptMessage::new_text(Role::User, "Here is an image:"),
                PromptMessage::new(
                    Role::User,
                    ContentBlock::Image(ImageContent::new(PNG_1X1, "image/png")),
                ),
            ])
            .with_description("A prompt with an image"),
            "test_input_required_result_prompt" => {
                let answer = response(request.input_responses.as_ref(), "user_context");
                return Some(Ok(match answer {
                    Some(answer) => {
                        let context = answer
                            .pointer("/content/context")
                            .and_then(serde_json::Value::as_str)
                            .unwrap_or("(no context)");
                        GetPromptResult::new(vec![PromptMessage::new_text(
                            Role::User,
                            format!("Prompt with elicited context: {context}"),
                        )])
                        .with_description("A prompt built from elicited context")
                        .into()
                    }
                    None => {
                        let mut requests = InputRequests::new();
                        requests.insert(
                            "user_context".into(),
                            elicitation("What context should the prompt use?", "context"),
                        );
                        InputRequiredResult::from_input_requests(requests).into()
                    }
                }));
            }
            _ => return None,
        };
        Some(Ok(result.into()))
    }

    /// `completion/complete` for fixture references; `None` when the reference is not ours.
    pub fn complete(
        &self,
        request: &CompleteRequestParams,
    ) -> Option<Result<CompleteResult, ErrorData>> {
        let values: Vec<String> = match &request.r#ref {
            Reference::Resource(resource) if resource.uri.starts_with(TEMPLATE_PREFIX) => {
                if request.argument.name == "id" {
                    vec!["1".into(), "2".into(), "3".into()]
                } else {
                    Vec::new()
                }
            }
            Reference::Prompt(prompt) if prompt.name.starts_with("test_") => {
                match request.argument.name.as_str() {
                    "name" => vec!["Alice".into(), "Bob".into(), "Charlie".into()],
                    "style" => vec!["friendly".into(), "formal".into(), "casual".into()],
                    _ => vec![prompt.name.clone()],
                }
            }
            _ => return None,
        };
        Some(
            CompletionInfo::new(values)
                .map(CompleteResult::new)
                .map_err(|error| ErrorData::internal_error(error, None)),
        )
    }
}
