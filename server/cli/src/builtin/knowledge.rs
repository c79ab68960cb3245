use std::sync::Arc;

use baton_kit::{Effect, Tool, ToolContext, ToolError};
use baton_knowledge::Shelf;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `knowledge_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words to look for, e.g. "approval policy untrusted".
    pub query: String,
    /// Only search this pack (e.g. `docs`, `rx`).
    #[serde(default)]
    pub pack: Option<String>,
    /// How many sections to return, 1–20 (default 5).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The best-matching sections of the knowledge packs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SearchResult {
    /// Best first.
    pub hits: Vec<SearchHit>,
    /// How many documents were searched.
    pub documents: usize,
}

/// One matching section.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct SearchHit {
    /// Resource URI of the document; read it with `resources/read`.
    pub uri: String,
    /// The document's title.
    pub title: String,
    /// The section's heading.
    pub heading: String,
    /// 1-based line of the section in the document.
    pub line: usize,
    /// Relevance (BM25); compare only within one result.
    pub score: f64,
    /// The section's opening words.
    pub snippet: String,
}

const DEFAULT_LIMIT: u32 = 5;
const MAX_LIMIT: u32 = 20;

/// `knowledge_search`.
#[derive(Debug)]
pub struct KnowledgeSearch {
    shelf: Arc<Shelf>,
}

impl KnowledgeSearch {
    /// Search the library in force on `shelf`.
    pub fn new(shelf: Arc<Shelf>) -> Self {
        KnowledgeSearch { shelf }
    }
}

impl Tool for KnowledgeSearch {
    type Args = SearchArgs;
    type Output = SearchResult;

    const NAME: &'static str = "knowledge_search";
    const TITLE: Option<&'static str> = Some("Search Baton's knowledge packs");
    const DESCRIPTION: &'static str = "Full-text search (BM25) over the Markdown documents and rule tables of \
        Baton's knowledge packs. Returns the best-matching sections with their document URI, \
        heading and a snippet; read a whole document with resources/read on its URI.";
    const EFFECT: Effect = Effect::Read;

    async fn call(&self, args: SearchArgs, _ctx: ToolContext) -> baton_kit::Result<SearchResult> {
        let library = self.shelf.current();
        if args.query.trim().is_empty() {
            return Err(ToolError::invalid_args(
                "query",
                "must contain at least one word",
            ));
        }
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ToolError::invalid_args(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        if let Some(pack) = &args.pack
            && !library.documents().iter().any(|d| &d.pack == pack)
        {
            let mut packs: Vec<&str> = library
                .documents()
                .iter()
                .map(|d| d.pack.as_str())
                .collect();
            packs.dedup();
            return Err(ToolError::invalid_args(
                "pack",
                format!("no pack `{pack}`; packs: {}", packs.join(", ")),
            ));
        }
        let hits = library
            .search(&args.query, args.pack.as_deref(), limit as usize)
            .into_iter()
            .map(|hit| SearchHit {
                uri: hit.uri,
                title: hit.title,
                heading: hit.heading,
                line: hit.line,
                score: hit.score,
                snippet: hit.snippet,
            })
            .collect();
        Ok(SearchResult {
            hits,
            documents: library.documents().len(),
        })
    }
}
