//! Where the SOP stands: every feature at a glance and one page of its tasks.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{Index, Phase, Status};
use crate::tools::TaskSummary;
use crate::{Result, SCHEMA_VERSION, SopError};

/// Features and a page of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatusOutput {
    /// `schema_version` of the index.
    pub schema_version: u32,
    /// Every feature, with task counts by status.
    pub features: Vec<FeatureSummary>,
    /// This page of tasks.
    pub tasks: Vec<TaskSummary>,
    /// Tasks matching the filters, on all pages.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A feature at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureSummary {
    /// Slug.
    pub feature: String,
    /// Title.
    pub title: String,
    /// Phase.
    pub phase: Phase,
    /// Task counts by status (only non-zero ones).
    pub tasks: BTreeMap<String, usize>,
}

/// Which tasks, and which page of them.
#[derive(Debug)]
pub(crate) struct Page<'a> {
    pub(crate) feature: Option<&'a str>,
    pub(crate) status: Option<Status>,
    /// A `next_cursor` given before: the offset of the page.
    pub(crate) cursor: Option<&'a str>,
    pub(crate) limit: usize,
}

/// Every feature of `index` with its task counts, and the page of tasks `page` asks for.
pub(crate) fn status(index: &Index, page: &Page<'_>) -> Result<StatusOutput> {
    let offset = match page.cursor {
        Some(cursor) => cursor.parse::<usize>().map_err(|_| {
            SopError::invalid(
                "cursor",
                format!("`{cursor}` is not a cursor this tool gave"),
            )
        })?,
        None => 0,
    };
    if let Some(feature) = page.feature {
        index.feature(feature)?;
    }
    let matching: Vec<_> = index
        .tasks
        .iter()
        .filter(|t| page.feature.is_none_or(|f| t.feature == f))
        .filter(|t| page.status.is_none_or(|s| t.status == s))
        .collect();
    let total = matching.len();
    let tasks = matching
        .iter()
        .skip(offset)
        .take(page.limit)
        .map(|t| TaskSummary::of(index, t))
        .collect();
    let features = index
        .features
        .iter()
        .map(|(slug, feature)| {
            let mut counts = BTreeMap::new();
            for task in index.tasks.iter().filter(|t| t.feature == *slug) {
                *counts.entry(task.status.as_str().to_owned()).or_insert(0) += 1;
            }
            FeatureSummary {
                feature: slug.clone(),
                title: feature.title.clone(),
                phase: feature.phase,
                tasks: counts,
            }
        })
        .collect();
    Ok(StatusOutput {
        schema_version: SCHEMA_VERSION,
        features,
        tasks,
        total,
        next_cursor: (offset + page.limit < total).then(|| (offset + page.limit).to_string()),
    })
}
