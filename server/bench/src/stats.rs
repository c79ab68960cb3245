use std::time::Duration;

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Completed calls per second over the measured window.
    pub calls_per_s: f64,
    /// Median round trip.
    pub p50: Duration,
    /// 99th-percentile round trip.
    pub p99: Duration,
    /// Calls measured.
    pub calls: usize,
    /// The server process's CPU (user + system) over the measured window per call, in
    /// microseconds: what a call costs whatever the machine's load. `None` where the load
    /// generator starts the server itself (stdio).
    pub cpu_us_per_call: Option<f64>,
}

impl Measured {
    /// Summarise `samples` taken over `window`.
    pub fn from_samples(mut samples: Vec<Duration>, window: Duration) -> Measured {
        samples.sort_unstable();
        let at = |q: f64| -> Duration {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[index.min(samples.len() - 1)]
        };
        Measured {
            calls_per_s: samples.len() as f64 / window.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            calls: samples.len(),
            cpu_us_per_call: None,
        }
    }

    /// With `cpu_seconds` of the server's CPU spent over the window.
    pub fn with_server_cpu(mut self, cpu_seconds: Option<f64>) -> Measured {
        self.cpu_us_per_call = cpu_seconds
            .filter(|_| self.calls > 0)
            .map(|cpu| cpu * 1e6 / self.calls as f64);
        self
    }
}

/// CPU seconds process `pid` has used so far (`/proc/<pid>/stat` utime + stime, all its
/// threads); `None` when it cannot be read.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |n: usize| fields.get(n).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name, in
    // USER_HZ ticks (100 a second on Linux, whatever the kernel's own tick).
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The median of `items` by `key` (the upper middle one of an even count), whole: a run
/// keeps its own latencies beside its calls/s. `None` when empty.
pub fn median_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = items.len() / 2;
    (middle < items.len()).then(|| items.swap_remove(middle))
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}
