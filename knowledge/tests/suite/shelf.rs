#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use baton_knowledge::{Shelf, TOML};
use pretty_assertions::assert_eq;

#[test]
fn tables_are_documents_and_edits_swap_the_whole_library() {
    let root = tempfile::tempdir().unwrap();
    let rx = root.path().join("rx");
    std::fs::create_dir_all(&rx).unwrap();
    std::fs::write(
        rx.join("rules.toml"),
        "# Rule table\n[[rule]]\nid = \"A-1\"\n",
    )
    .unwrap();
    let shelf = Shelf::watch(root.path()).unwrap();
    let library = shelf.current();
    let table = library.get("knowledge://rx/rules.toml").unwrap();
    assert_eq!((table.mime, table.title.as_str()), (TOML, "Rule table"));
    assert_eq!(library.tables("rx").count(), 1);
    let first = shelf.generation();

    std::fs::write(rx.join("more.toml"), "[[rule]]\nid = \"B-1\"\n").unwrap();
    let started = Instant::now();
    while shelf.generation() == first && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(shelf.generation() > first, "no reload within 5 s");
    let paths: Vec<String> = shelf
        .current()
        .tables("rx")
        .map(|d| d.path.clone())
        .collect();
    assert_eq!(paths, vec!["more.toml", "rules.toml"]);
    // The snapshot taken before the edit is untouched.
    assert_eq!(library.tables("rx").count(), 1);

    // A load that fails keeps the last good library and says why.
    std::fs::write(rx.join("bad.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let started = Instant::now();
    while shelf.error().is_none() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        shelf.error().unwrap().contains("not UTF-8"),
        "{:?}",
        shelf.error()
    );
    assert_eq!(shelf.current().tables("rx").count(), 2);
}
