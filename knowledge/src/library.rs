use std::fs;
use std::path::{Path, PathBuf};

use crate::search::Index;
use crate::{Document, Hit, KnowledgeError, Result};

/// Documents larger than this are refused rather than loaded: a knowledge pack is prose for a
/// model to read, and a stray multi-megabyte file would flood both memory and context.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// Folders of a knowledge root that hold code, not knowledge (the root doubles as the
/// `baton-knowledge` crate folder).
pub(crate) const NOT_PACKS: &[&str] = &["src", "tests", "benches", "target"];

/// An immutable snapshot of every document under a knowledge root.
#[derive(Debug, Clone, Default)]
pub struct Library {
    root: PathBuf,
    documents: Vec<Document>,
    index: Index,
}

impl Library {
    /// Load every Markdown document and TOML table of every pack under `root`.
    pub fn load(root: &Path) -> Result<Library> {
        if !root.is_dir() {
            return Err(KnowledgeError::NoRoot(root.to_owned()));
        }
        let mut documents = Vec::new();
        for entry in sorted_entries(root)? {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !entry.is_dir() || name.starts_with('.') || NOT_PACKS.contains(&name) {
                continue;
            }
            let mut files = Vec::new();
            collect_files(&entry, &mut files)?;
            for file in files {
                let relative = file
                    .strip_prefix(&entry)
                    .unwrap_or(&file)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = read_document(&file)?;
                documents.push(if relative.ends_with(".toml") {
                    Document::table(name, &relative, text)
                } else {
                    Document::parse(name, &relative, text)
                });
            }
        }
        let index = Index::build(&documents);
        Ok(Library {
            root: root.to_owned(),
            documents,
            index,
        })
    }

    /// The folder this snapshot was loaded from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every document, by pack then path.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The TOML tables of `pack`, by path.
    pub fn tables<'a>(&'a self, pack: &'a str) -> impl Iterator<Item = &'a Document> + 'a {
        self.documents
            .iter()
            .filter(move |document| document.pack == pack && document.is_table())
    }

    /// The document at `uri` (`knowledge://<pack>/<path>`).
    pub fn get(&self, uri: &str) -> Option<&Document> {
        self.documents.iter().find(|document| document.uri == uri)
    }

    /// The `limit` best sections for `query`, best first; `pack` narrows to one pack.
    pub fn search(&self, query: &str, pack: Option<&str>, limit: usize) -> Vec<Hit> {
        self.index.search(&self.documents, query, pack, limit)
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |source| KnowledgeError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

/// Whether `path` is a file a knowledge pack is made of.
pub(crate) fn is_knowledge_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "md" || ext == "toml")
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for path in sorted_entries(dir)? {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if is_knowledge_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn read_document(path: &Path) -> Result<String> {
    let io = |source| KnowledgeError::Io {
        path: path.to_owned(),
        source,
    };
    let size = fs::metadata(path).map_err(io)?.len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(KnowledgeError::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let bytes = fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| KnowledgeError::NotUtf8(path.to_owned()))
}
