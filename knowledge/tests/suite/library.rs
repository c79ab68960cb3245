#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use baton_knowledge::{Document, KnowledgeError, Library, MAX_DOCUMENT_BYTES};
use pretty_assertions::assert_eq;

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "docs/policies.md",
        "# Policies\n\nIntro text.\n\n## Sandbox modes\n\nread-only is the default sandbox.\n\n\
         ## Approval policy\n\nuntrusted asks before anything but known-safe reads.\n\n\
         ```toml\n# not a heading\napproval = \"untrusted\"\n```\n",
    );
    write(
        root,
        "docs/guides/audio.md",
        "Loudness is measured per EBU R128 with gating.\n",
    );
    write(
        root,
        "rx/schedules.md",
        "# Schedules\n\nCategory 1 is S4; categories 2 to 5 are S8.\n",
    );
    // The crate's own folders are not packs.
    write(root, "src/lib.md", "# Not knowledge\n");
    write(root, "docs/.hidden.md", "# Hidden\n");
    dir
}

#[test]
fn loads_packs_and_splits_sections() {
    let dir = sample();
    let library = Library::load(dir.path()).unwrap();
    let uris: Vec<&str> = library.documents().iter().map(|d| d.uri.as_str()).collect();
    assert_eq!(
        uris,
        vec![
            "knowledge://docs/guides/audio.md",
            "knowledge://docs/policies.md",
            "knowledge://rx/schedules.md",
        ]
    );
    let policies = library.get("knowledge://docs/policies.md").unwrap();
    let sections: Vec<(&str, &str, usize)> = policies
        .sections
        .iter()
        .map(|s| (s.heading.as_str(), s.anchor.as_str(), s.line))
        .collect();
    assert_eq!(
        sections,
        vec![
            ("Policies", "policies", 1),
            ("Sandbox modes", "sandbox-modes", 5),
            ("Approval policy", "approval-policy", 9),
        ]
    );
    // A `#` inside a code fence is code, not a heading.
    assert!(policies.sections[2].text.contains("# not a heading"));
    // No level-1 heading: the title is the file stem.
    assert_eq!(
        library
            .get("knowledge://docs/guides/audio.md")
            .unwrap()
            .title,
        "audio"
    );
}

#[test]
fn search_ranks_sections_and_filters_by_pack() {
    let dir = sample();
    let library = Library::load(dir.path()).unwrap();
    let hits = library.search("sandbox default", None, 5);
    assert_eq!(hits[0].heading, "Sandbox modes");
    assert_eq!(hits[0].uri, "knowledge://docs/policies.md");
    assert_eq!(hits[0].snippet, "read-only is the default sandbox.");

    let hits = library.search("category S8", Some("rx"), 5);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].uri, "knowledge://rx/schedules.md");
    assert!(library.search("category S8", Some("docs"), 5).is_empty());
    assert!(
        library.search("the of and", None, 5).is_empty(),
        "stopwords alone match nothing"
    );
}

#[test]
fn bad_roots_and_documents_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    match Library::load(&missing) {
        Err(KnowledgeError::NoRoot(path)) => assert_eq!(path, missing),
        other => panic!("{other:?}"),
    }

    fs::create_dir_all(dir.path().join("docs")).unwrap();
    fs::write(dir.path().join("docs/bad.md"), b"# Bad\n\xff\xfe\n").unwrap();
    let error = Library::load(dir.path()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "`{}` is not UTF-8 text",
            dir.path().join("docs/bad.md").display()
        )
    );

    fs::write(
        dir.path().join("docs/bad.md"),
        vec![b'a'; MAX_DOCUMENT_BYTES as usize + 1],
    )
    .unwrap();
    assert!(matches!(
        Library::load(dir.path()),
        Err(KnowledgeError::TooLarge { .. })
    ));
}

#[test]
fn parse_is_stable() {
    let document = Document::parse(
        "docs",
        "a/b.md",
        "Lead paragraph.\n\n# Title #\n\n### Deep   heading ###\nbody\n".into(),
    );
    assert_eq!(document.title, "Title");
    let headings: Vec<&str> = document
        .sections
        .iter()
        .map(|s| s.heading.as_str())
        .collect();
    assert_eq!(headings, vec!["Title", "Title", "Deep   heading"]);
    assert_eq!(document.sections[2].anchor, "deep---heading");
}
