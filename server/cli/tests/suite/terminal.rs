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
