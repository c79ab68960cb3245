use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// `path` made absolute (against the working directory) with `.` and `..` resolved lexically.
/// Symlinks are not followed: a tool confining paths must refuse links that escape; this only
/// decides whether the named path is inside a writable root.
pub fn normalize(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            Component::Prefix(_) | Component::RootDir | Component::Normal(_) => {
                out.push(component.as_os_str());
            }
        }
    }
    out
}

/// The paths an argument at `pointer` names: a string, or an array of strings. An absent
/// path argument means the tool's default — the base folder itself — so it is checked as `.`
/// rather than skipped: a tool cannot write outside the roots by leaving its path out.
pub(crate) fn paths_at<'a>(args: &'a Value, pointer: &str) -> Vec<&'a str> {
    match args.pointer(pointer) {
        Some(Value::String(path)) => vec![path.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::Null) | None => vec!["."],
        Some(_) => Vec::new(),
    }
}

/// Whether `path` has a `.git` component.
pub(crate) fn touches_git(path: &Path) -> bool {
    path.components()
        .any(|c| matches!(c, Component::Normal(name) if name == ".git"))
}
