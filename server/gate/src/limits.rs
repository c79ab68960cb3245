//! How many calls run at once: a principal's own calls, and heavy calls (audio, images) across
//! the server. A call past a limit waits its turn for a bounded time, then is refused as busy —
//! one caller cannot take every core or every byte, and nobody waits forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_kit::ToolError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, shared by every call through one gate.
#[derive(Debug)]
pub struct CallLimits {
    per_principal: usize,
    heavy_max: usize,
    heavy: Arc<Semaphore>,
    wait: Duration,
    principals: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Calls a principal may start a minute (0: no limit), and each one's bucket.
    per_minute: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A token bucket: `per_minute` tokens at most, refilled evenly over the minute.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Room held for one running call; dropping it makes room for the next.
#[derive(Debug)]
pub struct Admitted {
    _principal: OwnedSemaphorePermit,
    _heavy: Option<OwnedSemaphorePermit>,
}

impl CallLimits {
    /// `per_principal` calls of one principal and `heavy` heavy calls at once; a call waits at
    /// most `wait` for room.
    pub fn new(per_principal: usize, heavy: usize, wait: Duration) -> CallLimits {
        CallLimits {
            per_principal: per_principal.max(1),
            heavy_max: heavy.max(1),
            heavy: Arc::new(Semaphore::new(heavy.max(1))),
            wait,
            principals: Mutex::new(HashMap::new()),
            per_minute: 0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// These limits, letting each principal start at most `per_minute` calls a minute (bursts
    /// up to that many); 0 for no limit.
    pub fn pacing(mut self, per_minute: u32) -> CallLimits {
        self.per_minute = per_minute;
        self
    }

    /// Take one call from `principal`'s rate, or refuse it as busy, saying when to come back.
    /// Refused calls are not audited: a flood must not flood the audit log.
    pub fn pace(&self, principal: &str) -> Result<(), ToolError> {
        self.pace_leaving(principal, 0.0)
    }

    /// [`CallLimits::pace`], refusing unless `spare` more calls would still fit after this one
    /// (a job's start leaves room for the job's own call).
    pub fn pace_leaving(&self, principal: &str, spare: f64) -> Result<(), ToolError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let rate = f64::from(self.per_minute) / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| ToolError::failed("the call limits are unavailable"))?;
        let bucket = buckets.entry(principal.to_owned()).or_insert(Bucket {
            tokens: f64::from(self.per_minute),
            at: now,
        });
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = refilled.min(f64::from(self.per_minute));
        bucket.at = now;
        if bucket.tokens >= 1.0 + spare {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 + spare - bucket.tokens) / rate);
        tracing::warn!(principal, "refused a call over the rate limit");
        Err(ToolError::Busy {
            what: format!(
                "`{principal}` is over its {} calls a minute (limits.calls_per_minute); the next \
                 call is possible in {} ms",
                self.per_minute,
                wait.as_millis().max(1)
            ),
            waited: Duration::ZERO,
        })
    }

    /// Wait (at most the configured time) for room for a call of `principal`, heavy or not.
    pub async fn admit(&self, principal: &str, heavy: bool) -> Result<Admitted, ToolError> {
        let started = Instant::now();
        let own = {
            let mut principals = self
                .principals
                .lock()
                .map_err(|_| ToolError::failed("the call limits are unavailable"))?;
            principals
                .entry(principal.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_principal)))
                .clone()
        };
        let busy = |what: String| ToolError::Busy {
            what,
            waited: started.elapsed(),
        };
        let own = tokio::time::timeout(self.wait, own.acquire_owned())
            .await
            .map_err(|_| {
                busy(format!(
                    "`{principal}` already has {} calls running (limits.calls_per_principal)",
                    self.per_principal
                ))
            })?
            .map_err(|_| ToolError::failed("the call limits are closed"))?;
        let heavy = if heavy {
            let left = self.wait.saturating_sub(started.elapsed());
            let permit = tokio::time::timeout(left, self.heavy.clone().acquire_owned())
                .await
                .map_err(|_| {
                    busy(format!(
                        "{} heavy calls (audio, images) are running (limits.heavy_calls)",
                        self.heavy_max
                    ))
                })?
                .map_err(|_| ToolError::failed("the call limits are closed"))?;
            Some(permit)
        } else {
            None
        };
        Ok(Admitted {
            _principal: own,
            _heavy: heavy,
        })
    }
}
