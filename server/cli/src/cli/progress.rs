//! The progress a tool reports, shown while `baton tools call` waits for it: a bar on a
//! terminal, plain lines otherwise (a log, CI), always on stderr — stdout stays the JSON
//! result, byte for byte.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_kit::{Progress, ProgressSink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Shortest time between two plain lines: a batch of thousands writes a line a second, not
/// one per item.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Shows one call's progress on stderr.
#[derive(Debug)]
pub(super) enum Shown {
    /// A terminal: a bar redrawn in place.
    Bar(ProgressBar),
    /// Anything else: `tool: done/total message` lines, at most one a second and the last.
    Lines {
        tool: String,
        last: Mutex<Option<Instant>>,
    },
}

impl Shown {
    /// A bar when stderr is a terminal, lines otherwise.
    pub(super) fn for_stderr(tool: &str) -> Shown {
        if !std::io::stderr().is_terminal() {
            return Shown::Lines {
                tool: tool.to_owned(),
                last: Mutex::new(None),
            };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(spinner());
        bar.set_prefix(tool.to_owned());
        Shown::Bar(bar)
    }

    /// Leave the bar at its last state, drawn (a call that reported nothing draws nothing).
    pub(super) fn finish(&self) {
        match self {
            Shown::Bar(bar) if bar.position() > 0 || bar.length().is_some() => bar.abandon(),
            Shown::Bar(bar) => bar.finish_and_clear(),
            Shown::Lines { .. } => {}
        }
    }
}

fn spinner() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {prefix} {pos} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bar() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl ProgressSink for Shown {
    fn report(&self, update: Progress) {
        // A tool's words reach the terminal: no control character may move its cursor.
        let message = super::timeline::printable(&update.message.unwrap_or_default());
        match self {
            Shown::Bar(bar) => {
                if let Some(total) = update.total
                    && bar.length() != Some(total as u64)
                {
                    bar.set_style(self::bar());
                    bar.set_length(total as u64);
                }
                bar.set_message(message);
                bar.set_position(update.progress as u64);
            }
            Shown::Lines { tool, last } => {
                let finished = update.total.is_some_and(|total| update.progress >= total);
                let Ok(mut last) = last.lock() else { return };
                if !finished && last.is_some_and(|at| at.elapsed() < LINE_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
                let done = match update.total {
                    Some(total) => format!("{}/{}", update.progress, total),
                    None => format!("{}", update.progress),
                };
                // Progress is best effort: a closed stderr does not fail the call.
                let _ = writeln!(std::io::stderr().lock(), "{tool}: {done} {message}");
            }
        }
    }
}
