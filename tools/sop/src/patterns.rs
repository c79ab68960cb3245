//! `patterns_harvest`: find the conventions a repository already encodes — linters,
//! formatters, CI workflows, templates, codemods — so agents follow them instead of guessing.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Folders never scanned: dependencies, build output, VCS and Baton's own records.
const SKIP: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "dist",
    "build",
    ".runs",
    ".worktrees",
    ".baton",
    "patterns",
    "adapters",
];
const MAX_DEPTH: usize = 6;
const MAX_ENTRIES: usize = 50_000;

/// One convention found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Pattern {
    /// `lint`, `format`, `ci`, `template` or `codemod`.
    pub kind: String,
    /// The tool it configures (e.g. `eslint`, `rustfmt`, `github-actions`).
    pub tool: String,
    /// The file, relative to the repository root.
    pub path: String,
    /// The command that applies it, when one is conventional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// SHA-256 of the file, to notice when it changes.
    pub sha256: String,
}

fn classify(
    relative: &str,
    name: &str,
) -> Option<(&'static str, &'static str, Option<&'static str>)> {
    let lower = name.to_ascii_lowercase();
    Some(match lower.as_str() {
        n if n.starts_with(".eslintrc") || n.starts_with("eslint.config.") => {
            ("lint", "eslint", Some("npx eslint ."))
        }
        "ruff.toml" | ".ruff.toml" => ("lint", "ruff", Some("ruff check .")),
        ".pylintrc" | "pylintrc" => ("lint", "pylint", Some("pylint")),
        "clippy.toml" | ".clippy.toml" => (
            "lint",
            "clippy",
            Some("cargo clippy --all-targets -- -D warnings"),
        ),
        ".golangci.yml" | ".golangci.yaml" => ("lint", "golangci-lint", Some("golangci-lint run")),
        ".rubocop.yml" => ("lint", "rubocop", Some("rubocop")),
        n if n.starts_with(".stylelintrc") => {
            ("lint", "stylelint", Some("npx stylelint '**/*.css'"))
        }
        ".flake8" => ("lint", "flake8", Some("flake8")),
        n if n.starts_with(".prettierrc") || n.starts_with("prettier.config.") => {
            ("format", "prettier", Some("npx prettier --check ."))
        }
        "rustfmt.toml" | ".rustfmt.toml" => ("format", "rustfmt", Some("cargo fmt --check")),
        ".editorconfig" => ("format", "editorconfig", None),
        ".clang-format" => (
            "format",
            "clang-format",
            Some("clang-format --dry-run -Werror"),
        ),
        "biome.json" | "biome.jsonc" => ("format", "biome", Some("npx biome check .")),
        ".gitlab-ci.yml" => ("ci", "gitlab-ci", None),
        "jenkinsfile" => ("ci", "jenkins", None),
        "azure-pipelines.yml" => ("ci", "azure-pipelines", None),
        "cookiecutter.json" => ("template", "cookiecutter", None),
        "pull_request_template.md" => ("template", "pull-request", None),
        _ if relative.starts_with(".github/workflows/")
            && (lower.ends_with(".yml") || lower.ends_with(".yaml")) =>
        {
            ("ci", "github-actions", None)
        }
        _ if relative.starts_with(".circleci/") && lower == "config.yml" => {
            ("ci", "circleci", None)
        }
        _ if relative.starts_with(".github/ISSUE_TEMPLATE/") => ("template", "issue", None),
        _ if lower.contains("codemod") || relative.starts_with("codemods/") => {
            ("codemod", "codemod", None)
        }
        _ => return None,
    })
}

/// Walk `root` and list what it encodes, sorted by kind then path.
pub fn harvest(root: &Path) -> crate::Result<Vec<Pattern>> {
    let mut found = Vec::new();
    let mut stack = vec![(root.to_owned(), 0usize)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                break;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                continue;
            }
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if kind.is_dir() {
                if depth < MAX_DEPTH && !SKIP.contains(&name.as_str()) {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if let Some((kind, tool, command)) = classify(&relative, &name) {
                let bytes = std::fs::read(&path).map_err(crate::SopError::io(&path))?;
                found.push(Pattern {
                    kind: kind.into(),
                    tool: tool.into(),
                    path: relative,
                    command: command.map(str::to_owned),
                    sha256: crate::tools::hex(&Sha256::digest(&bytes)),
                });
            }
        }
    }
    found.sort_by(|a, b| (&a.kind, &a.path).cmp(&(&b.kind, &b.path)));
    Ok(found)
}
