//! What a person at a terminal sees: `baton tools call` draws the progress a tool reports as a
//! bar on a real pty (stderr), plain lines when stderr is not a terminal, and stdout stays
//! exactly the JSON result either way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::process::Stdio;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::common::Home;

/// A home allowing writes under `out`, with `count` small product photos in `photos/`.
fn photos(count: u32) -> Home {
    let home = Home::new("");
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"out\"]\n",
    )
    .unwrap();
    let dir = home.path().join("photos");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..count {
        std::fs::write(
            dir.join(format!("p{n:03}.png")),
            super::rest_tools::photo(n),
        )
        .unwrap();
    }
    home
}

fn batch_args(home: &Home) -> String {
    json!({ "dir": home.path().join("photos"), "out_dir": home.path().join("out") }).to_string()
}

/// A pseudo-terminal 100 columns wide: the master end, and the terminal end to give a child.
fn pty() -> (std::fs::File, std::fs::File) {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let size = rustix::termios::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&terminal, size).unwrap();
    (std::fs::File::from(master), terminal)
}

#[test]
fn a_batch_of_200_photos_draws_a_bar_to_200_of_200_and_stdout_stays_the_json() {
    let home = photos(200);
    let (mut master, terminal) = pty();
    let mut child = home
        .baton_std(&[
            "tools",
            "call",
            "vision_batch",
            "--args",
            &batch_args(&home),
        ])
        .stdin(terminal.try_clone().unwrap())
        .stderr(terminal)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The terminal end is the child's alone now: reading the master ends (EIO) when it exits.
    let drawn = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut chunk = [0u8; 8192];
        while let Ok(n) = master.read(&mut chunk) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let drawn = drawn.join().unwrap();
    assert!(status.success(), "{drawn}");

    // The bar, redrawn in place, ends at 200/200.
    assert!(drawn.contains("vision_batch ["), "{drawn}");
    assert!(drawn.contains("200/200"), "{drawn}");
    assert!(drawn.contains('\r') || drawn.contains("\x1b["), "{drawn}");
    // stdout is the JSON result and nothing else: no bar, no escape, no log line.
    let result: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (&result["processed"], &result["failed"]),
        (&json!(200), &json!(0))
    );
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\r'),
        "{stdout}"
    );
}

#[test]
fn without_a_terminal_progress_is_plain_lines_on_stderr() {
    let home = photos(12);
    let output = home
        .baton_std(&[
            "tools",
            "call",
            "vision_batch",
            "--args",
            &batch_args(&home),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains('\x1b'), "{stderr}");
    // At most a line a second, and always the last.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("vision_batch: "))
        .collect();
    assert_eq!(
        lines.last(),
        Some(&"vision_batch: 12/12 12 of 12 photos"),
        "{stderr}"
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["processed"], json!(12));
}

/// `baton run ARGS` on the cassette `tape` (which must succeed); the run's id.
fn run_tape(home: &Home, tape: &Value, args: &[&str]) -> String {
    let path = home.path().join("tape.json");
    std::fs::write(&path, tape.to_string()).unwrap();
    let cassette = ["--cassette", path.to_str().unwrap()];
    let ran = home
        .baton_std(&[&["run"][..], args, &cassette].concat())
        .output()
        .unwrap();
    assert!(ran.status.success(), "{ran:?}");
    let listed: Value =
        serde_json::from_str(&stdout_of(home, &["runs", "list", "--json"])).unwrap();
    listed[0]["id"].as_str().unwrap().to_owned()
}

/// What `baton ARGS` printed, which must have succeeded.
fn stdout_of(home: &Home, args: &[&str]) -> String {
    let out = home.baton_std(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `text` with the run id, its times and each step's offset replaced by stable marks.
fn stable(text: &str, run_id: &str) -> String {
    let lines: Vec<String> = text
        .replace(run_id, "[RUN]")
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let label = trimmed.split_whitespace().next().unwrap_or_default();
            match label {
                "created" | "updated" => format!("  {label:8} [TIME]"),
                _ if label.starts_with('+') => {
                    format!("  {:>9}{}", "+[T]", &trimmed[label.len()..])
                }
                _ => line.to_owned(),
            }
        })
        .collect();
    lines.join("\n") + "\n"
}

#[test]
fn runs_show_reads_as_a_timeline_and_lists_take_a_format() {
    let home = Home::new("");
    let repo = home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        home.path().join("policy.toml"),
        "sandbox = \"workspace-write\"\napproval = \"never\"\nwritable_roots = [\"repo\"]\n",
    )
    .unwrap();
    let run_id = run_tape(
        &home,
        &super::telemetry::cassette(),
        &["write the note", "--repo", repo.to_str().unwrap()],
    );
    let text = |args: &[&str]| stdout_of(&home, args);
    let listed: Value = serde_json::from_str(&text(&["runs", "list", "--format", "json"])).unwrap();
    assert_eq!(
        text(&["runs", "list", "--json"]),
        text(&["runs", "list", "--format", "json"])
    );
    assert_eq!(listed[0]["id"], run_id.as_str());
    insta::assert_snapshot!(
        "runs_show_timeline",
        stable(&text(&["runs", "show", &run_id]), &run_id)
    );
    let table = text(&["runs", "list"]);
    assert!(
        table.starts_with("ID  ") && table.contains("  done  "),
        "{table}"
    );

    // Every list takes the same flag; a table is the default; --json and --format disagree.
    for list in [&["tools", "list"][..], &["approvals", "list"], &["workers"]] {
        let as_table = text(&[list, &["--format", "table"]].concat());
        assert_eq!(as_table, text(list), "{list:?}");
        let as_json = text(&[list, &["--format", "json"]].concat());
        serde_json::from_str::<Value>(&as_json).unwrap();
    }
    let both = home
        .baton_std(&["runs", "list", "--json", "--format", "table"])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let said = String::from_utf8_lossy(&both.stderr);
    assert!(
        said.contains("'--json' cannot be used with '--format <FORMAT>'"),
        "{said}"
    );
}

#[test]
fn a_models_escape_sequences_never_reach_the_operators_terminal() {
    let home = Home::new("");
    // Erase the line above, then write the clipboard: what a hostile file could make a
    // model repeat.
    let hostile = "\u{1b}[1A\u{1b}[2K\u{1b}]52;c;aGk=\u{7}all fine";
    let tape = json!({"interactions": [
        {"request": {"messages": [{"role": "user", "content": "Goal: look*"}]},
         "response": {"message": {"role": "assistant", "content": hostile}, "finish_reason": "stop"}}
    ]});
    let run_id = run_tape(&home, &tape, &["look \u{1b}[31mred", "--agent", "builder"]);
    let text = |args: &[&str]| stdout_of(&home, args);
    for shown in [text(&["runs", "show", &run_id]), text(&["runs", "list"])] {
        assert!(!shown.contains(['\u{1b}', '\u{7}']), "{shown:?}");
        assert!(shown.contains('\u{fffd}'), "{shown:?}");
    }
    assert!(text(&["runs", "show", &run_id]).contains("all fine"));
}
