//! A linked look-ahead true-peak limiter for offline use.
//!
//! For each frame the meter gives the true peak around it; the gain that frame may have is
//! `r = min(1, ceiling / peak)`. The gain applied is the running minimum of `r` over the
//! next `look` frames, let back up no faster than the release, then averaged over `look`
//! frames. Every value in that average comes from a window that contains the frame, so the
//! average is never above the frame's own `r`: the ceiling holds, while the gain moves
//! smoothly (no step, no click). All channels share one gain, so the image does not shift.

use std::collections::VecDeque;

use crate::truepeak::TruePeak;

/// A limiter that delays its output by `look + TruePeak::DELAY` frames.
#[derive(Debug)]
pub struct Limiter {
    ceiling: f32,
    look: usize,
    /// How far the gain may rise back towards 1 each frame (a fraction of the gap).
    release: f64,
    detector: TruePeak,
    channels: usize,
    /// Per channel, the samples waiting for their gain (from frame `next_out`).
    audio: Vec<VecDeque<f32>>,
    /// Monotonic (index, r) deque: the minimum of the window at its front.
    window: VecDeque<(usize, f64)>,
    /// Index of the next frame whose `r` arrives (the first `look` are padding).
    next_ratio: usize,
    /// Index of the next frame to output (padding included).
    next_out: usize,
    /// The last `look` released gains and their sum.
    recent: VecDeque<f64>,
    sum: f64,
    released: f64,
    /// The smallest gain applied.
    least: f64,
    peaks: Vec<f32>,
}

impl Limiter {
    /// A limiter holding `channels` channels at `rate` Hz under `ceiling` (linear), looking
    /// `look_ms` ahead and releasing over about `release_ms`.
    pub fn new(channels: usize, rate: u32, ceiling: f32, look_ms: f64, release_ms: f64) -> Self {
        let look = ((f64::from(rate) * look_ms / 1000.0).round() as usize).max(1);
        let release = 1.0 - (-1.0 / (f64::from(rate) * release_ms / 1000.0)).exp();
        let mut limiter = Limiter {
            ceiling,
            look,
            release,
            detector: TruePeak::new(channels),
            channels,
            audio: vec![VecDeque::new(); channels],
            window: VecDeque::new(),
            next_ratio: 0,
            next_out: 0,
            recent: VecDeque::from(vec![1.0; look]),
            sum: look as f64,
            released: 1.0,
            least: 1.0,
            peaks: Vec::new(),
        };
        // `look` frames of silence before the signal, so the first frames' windows are whole.
        for _ in 0..look {
            limiter.ratio(1.0, &mut []);
        }
        limiter
    }

    /// Add the next frame's `r`, then output the frame whose window it completes (before
    /// any later `r` enters the window).
    fn ratio(&mut self, r: f64, out: &mut [Vec<f32>]) {
        while self.window.back().is_some_and(|&(_, back)| back >= r) {
            self.window.pop_back();
        }
        self.window.push_back((self.next_ratio, r));
        self.next_ratio += 1;
        self.emit(out);
    }

    /// The smallest gain applied so far (linear).
    pub fn least_gain(&self) -> f64 {
        self.least
    }

    /// Feed frames; append the frames whose gain is known, limited, to `out`.
    pub fn push(&mut self, channels: &[&[f32]], out: &mut [Vec<f32>]) {
        for (queue, samples) in self.audio.iter_mut().zip(channels) {
            queue.extend(samples.iter().copied());
        }
        self.peaks.clear();
        self.detector.push(channels, &mut self.peaks);
        self.take_peaks(out);
    }

    fn take_peaks(&mut self, out: &mut [Vec<f32>]) {
        let peaks = std::mem::take(&mut self.peaks);
        for &peak in &peaks {
            let r = if peak > self.ceiling {
                f64::from(self.ceiling) / f64::from(peak)
            } else {
                1.0
            };
            self.ratio(r, out);
        }
        self.peaks = peaks;
    }

    /// Output every frame whose look-ahead window is complete. Indices count the `look`
    /// padding frames, then the detector's `DELAY` frames before the signal, then the signal.
    fn emit(&mut self, out: &mut [Vec<f32>]) {
        let first_real = self.look + TruePeak::DELAY;
        while self.next_ratio >= self.next_out + self.look {
            let frame = self.next_out;
            while self.window.front().is_some_and(|&(index, _)| index < frame) {
                self.window.pop_front();
            }
            let lowest = self.window.front().map_or(1.0, |&(_, r)| r);
            self.released = lowest.min(self.released + (1.0 - self.released) * self.release);
            self.sum += self.released - self.recent.pop_front().unwrap_or(1.0);
            self.recent.push_back(self.released);
            // A running sum over hours drifts; start it afresh once per window.
            if frame.is_multiple_of(self.look) {
                self.sum = self.recent.iter().sum();
            }
            let gain = (self.sum / self.look as f64).min(1.0);
            self.next_out += 1;
            if frame < first_real || self.audio.first().is_none_or(VecDeque::is_empty) {
                continue;
            }
            self.least = self.least.min(gain);
            for (queue, channel) in self.audio.iter_mut().zip(out.iter_mut()) {
                if let Some(sample) = queue.pop_front() {
                    channel.push((f64::from(sample) * gain) as f32);
                }
            }
        }
    }

    /// Flush: the signal ends in silence; append the remaining frames to `out`.
    pub fn finish(&mut self, out: &mut [Vec<f32>]) {
        self.peaks.clear();
        self.detector.finish(self.channels, &mut self.peaks);
        self.take_peaks(out);
        for _ in 0..self.look + 1 {
            self.ratio(1.0, out);
        }
    }
}
