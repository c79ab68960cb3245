//! Knowledge documents as MCP resources, and the `knowledge_brief` prompt built on them.

use baton_knowledge::Library;
use rmcp::ErrorData;
use rmcp::model::{
    GetPromptResult, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, Role,
};
use serde_json::json;

const MARKDOWN: &str = "text/markdown";
/// How many sections `knowledge_brief` embeds: enough to answer from, few enough not to flood
/// the model's context.
const BRIEF_SECTIONS: usize = 3;

/// The name of the knowledge prompt.
pub(crate) const BRIEF: &str = "knowledge_brief";

/// Every document as a resource.
pub(crate) fn resources(library: &Library) -> Vec<Resource> {
    library
        .documents()
        .iter()
        .map(|document| {
            Resource::new(
                document.uri.clone(),
                format!("{}/{}", document.pack, document.path),
            )
            .with_title(document.title.clone())
            .with_description(format!("Knowledge pack `{}`", document.pack))
            .with_mime_type(document.mime)
            .with_size(document.text.len() as u64)
        })
        .collect()
}

/// The document at `uri`, if it is one of ours.
pub(crate) fn read(library: &Library, uri: &str) -> Option<ReadResourceResult> {
    let document = library.get(uri)?;
    Some(ReadResourceResult::new(vec![
        ResourceContents::text(document.text.clone(), uri).with_mime_type(document.mime),
    ]))
}

/// The prompts this module serves.
pub(crate) fn prompts() -> Vec<Prompt> {
    vec![
        Prompt::new(
            BRIEF,
            Some(
                "Brief the model on a topic from Baton's knowledge packs: the best-matching \
             sections are embedded, with instructions to answer from them and cite their URIs.",
            ),
            Some(vec![
                PromptArgument::new("topic")
                    .with_description("What to be briefed on, in a few words")
                    .with_required(true),
                PromptArgument::new("pack")
                    .with_description("Only use this knowledge pack (e.g. `docs`)")
                    .with_required(false),
            ]),
        )
        .with_title("Knowledge brief"),
    ]
}

/// `knowledge_brief {topic, pack?}`.
pub(crate) fn brief(
    library: &Library,
    arguments: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<GetPromptResult, ErrorData> {
    let argument = |name: &str| {
        arguments
            .and_then(|args| args.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let Some(topic) = argument("topic") else {
        return Err(ErrorData::invalid_params(
            "prompt `knowledge_brief`: argument `topic` is required",
            Some(json!({ "argument": "topic" })),
        ));
    };
    let pack = argument("pack");
    let hits = library.search(topic, pack, BRIEF_SECTIONS);
    let mut messages = vec![PromptMessage::new_text(
        Role::User,
        if hits.is_empty() {
            format!(
                "I want to know about: {topic}. Baton's knowledge packs have nothing on it; say \
                 so plainly rather than guessing."
            )
        } else {
            format!(
                "I want to know about: {topic}. Answer from the {} knowledge sections below only, \
                 and cite the URI of each section you use. If they do not answer it, say so.",
                hits.len()
            )
        },
    )];
    for hit in &hits {
        let Some(document) = library.get(&hit.uri) else {
            continue;
        };
        let section = document
            .sections
            .iter()
            .find(|section| section.line == hit.line)
            .map_or(document.text.as_str(), |section| section.text.as_str());
        messages.push(PromptMessage::new_resource(
            Role::User,
            format!("{}#{}", hit.uri, hit.anchor),
            Some(MARKDOWN.into()),
            Some(format!("## {}\n\n{}", hit.heading, section.trim())),
            None,
            None,
            None,
        ));
    }
    Ok(GetPromptResult::new(messages).with_description(format!("Knowledge brief: {topic}")))
}
