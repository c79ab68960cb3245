//! The one hot-reload mechanism on its own: a watched file parsed with the caller's parser, the
//! last good value kept through a bad edit (and why said), a value derived from the shelf once
//! per reload. Real files in temporary folders, a real file watcher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use baton_knowledge::{Derived, LastGood, Shelf, Watched};
use pretty_assertions::assert_eq;

fn number(path: &Path) -> Result<u32, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| format!("not a number: {e}")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error.to_string()),
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(done(), "{what}: not within 5 s");
}

#[test]
fn a_watched_file_keeps_its_last_good_value_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limit.txt");
    std::fs::write(&file, "7\n").unwrap();
    let first = LastGood::new("limit", number(&file).unwrap());
    let watched = Watched::file(&file, first, number).unwrap();
    assert_eq!((*watched.current(), watched.error()), (7, None));
    assert_eq!(watched.path(), file);

    let generation = watched.generation();
    std::fs::write(&file, "12\n").unwrap();
    wait_for("the edit", || watched.generation() > generation);
    assert_eq!(*watched.current(), 12);

    // A bad edit: the value stays, the reason is kept.
    std::fs::write(&file, "twelve\n").unwrap();
    wait_for("the bad edit", || watched.error().is_some());
    assert_eq!(*watched.current(), 12);
    assert!(watched.error().unwrap().starts_with("not a number"));

    // Other files in the folder are not the watched one.
    let generation = watched.generation();
    std::fs::write(dir.path().join("other.txt"), "99\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(watched.generation(), generation);

    // Replaced by renaming over it, as editors do: picked up, the reason cleared.
    let fixed = dir.path().join("limit.txt.new");
    std::fs::write(&fixed, "3\n").unwrap();
    std::fs::rename(&fixed, &file).unwrap();
    wait_for("the fix", || watched.generation() > generation);
    assert_eq!((*watched.current(), watched.error()), (3, None));
}

#[test]
fn a_fixed_value_and_an_explicit_offer() {
    let fixed = Watched::fixed("fixed", 5u32);
    fixed.reload();
    assert_eq!((*fixed.current(), fixed.generation()), (5, 1));

    let slot = LastGood::fallback("slot", 0u32, "nothing loaded yet");
    assert_eq!(slot.error().as_deref(), Some("nothing loaded yet"));
    assert!(slot.offer(Ok::<_, String>(4)));
    assert_eq!(
        (*slot.current(), slot.generation(), slot.error()),
        (4, 2, None)
    );
    assert!(!slot.offer(Err("broken")));
    assert_eq!(
        (*slot.current(), slot.generation(), slot.error().as_deref()),
        (4, 2, Some("broken"))
    );
}

#[test]
fn a_derived_value_is_computed_once_per_reload_and_kept_when_it_fails() {
    let root = tempfile::tempdir().unwrap();
    let pack = root.path().join("rx");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(pack.join("limits.toml"), "max = 3\n").unwrap();
    let shelf = Arc::new(Shelf::watch(root.path()).unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let derived = Derived::new("max", shelf.clone(), move |library| {
        counter.fetch_add(1, Ordering::SeqCst);
        let text = &library.get("knowledge://rx/limits.toml").unwrap().text;
        text.trim()
            .strip_prefix("max = ")
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("cannot read {text:?}"))
    });
    assert_eq!(runs.load(Ordering::SeqCst), 0, "derived on first use only");
    assert_eq!(derived.get().as_deref(), Some(&3));
    assert_eq!(derived.get().as_deref(), Some(&3));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "once per generation");

    let generation = shelf.generation();
    std::fs::write(pack.join("limits.toml"), "max = lots\n").unwrap();
    wait_for("the reload", || shelf.generation() > generation);
    assert_eq!(derived.get().as_deref(), Some(&3));
    assert!(derived.error().unwrap().contains("lots"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    let generation = shelf.generation();
    std::fs::write(pack.join("limits.toml"), "max = 9\n").unwrap();
    wait_for("the reload", || shelf.generation() > generation);
    assert_eq!(derived.get().as_deref(), Some(&9));
    assert_eq!(derived.error(), None);
}
