//! Mini-specs (`tasks/specs/<id>.md`): TOML front matter saying when and at which commit the
//! spec was last reviewed and which files it governs, then Markdown.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::git::git;
use crate::{Result, SopError};

const FENCE: &str = "+++";

/// The front matter of a mini-spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecMeta {
    /// The task's id.
    pub task: String,
    /// When it was last reviewed (`YYYY-MM-DD`).
    pub last_review: String,
    /// The commit it was reviewed at; files it names that changed since make it stale.
    #[serde(default)]
    pub reviewed_ref: Option<String>,
    /// The files it governs, relative to the repository root.
    #[serde(default)]
    pub files: Vec<String>,
}

/// Why a spec is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Staleness {
    /// Not reviewed for longer than allowed.
    Age {
        /// Days since `last_review`.
        days: i64,
    },
    /// Files it names changed after its reviewed commit.
    Changed {
        /// Those files.
        files: Vec<String>,
    },
    /// Its reviewed commit is not in the repository (rebased away, or never was).
    UnknownRef {
        /// The commit named.
        reviewed_ref: String,
    },
}

impl Staleness {
    /// In words.
    pub fn describe(&self) -> String {
        match self {
            Staleness::Age { days } => {
                format!("last reviewed {days} days ago")
            }
            Staleness::Changed { files } => format!(
                "{} changed since the commit it was reviewed at",
                files.join(", ")
            ),
            Staleness::UnknownRef { reviewed_ref } => {
                format!("it was reviewed at `{reviewed_ref}`, which this repository does not have")
            }
        }
    }
}

/// Render a spec file.
pub fn render(meta: &SpecMeta, body: &str) -> Result<String> {
    let front = toml::to_string(meta).map_err(|e| SopError::invalid("spec", e.to_string()))?;
    Ok(format!("{FENCE}\n{front}{FENCE}\n\n{body}"))
}

/// Read a spec file's front matter.
pub fn read_meta(path: &Path) -> Result<SpecMeta> {
    let text = std::fs::read_to_string(path).map_err(SopError::io(path))?;
    let unreadable = |why: String| SopError::Corrupt {
        file: path.to_owned(),
        detail: why,
    };
    let rest = text
        .strip_prefix(FENCE)
        .and_then(|rest| rest.strip_prefix('\n'))
        .ok_or_else(|| unreadable(format!("does not start with `{FENCE}` front matter")))?;
    let end = rest
        .find(&format!("\n{FENCE}"))
        .ok_or_else(|| unreadable(format!("its front matter has no closing `{FENCE}`")))?;
    let meta: SpecMeta = toml::from_str(&rest[..=end])
        .map_err(|e| unreadable(format!("front matter: {}", e.message())))?;
    jiff::civil::Date::strptime("%Y-%m-%d", &meta.last_review).map_err(|_| {
        unreadable(format!(
            "`last_review = \"{}\"` is not a YYYY-MM-DD date",
            meta.last_review
        ))
    })?;
    Ok(meta)
}

/// Whether the spec `meta` (in the repository at `root`) is stale on `today`.
pub async fn staleness(
    root: &Path,
    meta: &SpecMeta,
    today: jiff::civil::Date,
    max_age_days: i64,
) -> Result<Vec<Staleness>> {
    let mut found = Vec::new();
    if let Ok(reviewed) = jiff::civil::Date::strptime("%Y-%m-%d", &meta.last_review) {
        // Civil-date spans default to whole days.
        let days = reviewed
            .until(today)
            .map_or(0, |span| i64::from(span.get_days()));
        if days > max_age_days {
            found.push(Staleness::Age { days });
        }
    }
    if let Some(reviewed_ref) = &meta.reviewed_ref
        && !meta.files.is_empty()
    {
        let verify = format!("{reviewed_ref}^{{commit}}");
        if git(root, &["rev-parse", "--verify", "--quiet", &verify])
            .await
            .is_err()
        {
            found.push(Staleness::UnknownRef {
                reviewed_ref: reviewed_ref.clone(),
            });
        } else {
            let mut args = vec!["diff", "--name-only", reviewed_ref.as_str(), "--"];
            args.extend(meta.files.iter().map(String::as_str));
            let changed = git(root, &args).await?;
            let mut files: Vec<String> = changed.lines().map(str::to_owned).collect();
            // New files the spec names count too, committed or not.
            let mut untracked = vec!["ls-files", "--others", "--exclude-standard", "--"];
            untracked.extend(meta.files.iter().map(String::as_str));
            files.extend(git(root, &untracked).await?.lines().map(str::to_owned));
            files.sort();
            files.dedup();
            if !files.is_empty() {
                found.push(Staleness::Changed { files });
            }
        }
    }
    Ok(found)
}
