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
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}
