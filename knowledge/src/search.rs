use std::collections::HashMap;

use crate::Document;

/// One search result: a section of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The document's URI.
    pub uri: String,
    /// The document's title.
    pub title: String,
    /// The section's heading.
    pub heading: String,
    /// Anchor of the section inside the document.
    pub anchor: String,
    /// 1-based line of the section in the document.
    pub line: usize,
    /// BM25 score; only comparable within one search.
    pub score: f64,
    /// The section's first words, for a reader to judge the hit.
    pub snippet: String,
}

const K1: f64 = 1.2;
const B: f64 = 0.75;
/// Heading words count this many times: a section titled "Approvals" is about approvals.
const HEADING_WEIGHT: u32 = 3;
const SNIPPET_CHARS: usize = 280;

/// BM25 over sections.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    /// (document, section) per indexed section.
    sections: Vec<(usize, usize)>,
    lengths: Vec<f64>,
    average_length: f64,
    /// term → (section number, term frequency)
    postings: HashMap<String, Vec<(usize, u32)>>,
}

impl Index {
    pub(crate) fn build(documents: &[Document]) -> Index {
        let mut index = Index::default();
        for (d, document) in documents.iter().enumerate() {
            for (s, section) in document.sections.iter().enumerate() {
                let number = index.sections.len();
                let mut counts: HashMap<String, u32> = HashMap::new();
                let mut length = 0u32;
                for term in terms(&section.heading) {
                    *counts.entry(term).or_default() += HEADING_WEIGHT;
                    length += HEADING_WEIGHT;
                }
                for term in terms(&section.text) {
                    *counts.entry(term).or_default() += 1;
                    length += 1;
                }
                for (term, count) in counts {
                    index
                        .postings
                        .entry(term)
                        .or_default()
                        .push((number, count));
                }
                index.sections.push((d, s));
                index.lengths.push(f64::from(length));
            }
        }
        let total: f64 = index.lengths.iter().sum();
        index.average_length = if index.lengths.is_empty() {
            0.0
        } else {
            total / index.lengths.len() as f64
        };
        index
    }

    pub(crate) fn search(
        &self,
        documents: &[Document],
        query: &str,
        pack: Option<&str>,
        limit: usize,
    ) -> Vec<Hit> {
        let n = self.sections.len() as f64;
        let mut scores: HashMap<usize, f64> = HashMap::new();
        let mut query_terms = terms(query);
        query_terms.sort();
        query_terms.dedup();
        for term in &query_terms {
            let Some(postings) = self.postings.get(term) else {
                continue;
            };
            let df = postings.len() as f64;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(number, tf) in postings {
                let tf = f64::from(tf);
                let norm = 1.0 - B + B * self.lengths[number] / self.average_length.max(1.0);
                *scores.entry(number).or_default() += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores
            .into_iter()
            .filter(|&(number, _)| {
                pack.is_none_or(|pack| documents[self.sections[number].0].pack == pack)
            })
            .collect();
        // Ties break on position so results are stable from run to run.
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(limit)
            .map(|(number, score)| {
                let (d, s) = self.sections[number];
                let document = &documents[d];
                let section = &document.sections[s];
                Hit {
                    uri: document.uri.clone(),
                    title: document.title.clone(),
                    heading: section.heading.clone(),
                    anchor: section.anchor.clone(),
                    line: section.line,
                    score: (score * 1000.0).round() / 1000.0,
                    snippet: snippet(&section.text),
                }
            })
            .collect()
    }
}

/// Lowercased alphanumeric words, without the commonest English words.
pub(crate) fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .collect()
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "of",
    "on", "or", "that", "the", "this", "to", "was", "what", "when", "where", "which", "with",
];

fn snippet(text: &str) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if words.chars().count() <= SNIPPET_CHARS {
        return words;
    }
    let cut: String = words.chars().take(SNIPPET_CHARS).collect();
    match cut.rfind(' ') {
        Some(space) => format!("{}…", &cut[..space]),
        None => format!("{cut}…"),
    }
}
