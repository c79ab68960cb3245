//! RBJ Audio-EQ-Cookbook biquads (Robert Bristow-Johnson), cascaded into a chain. The chain
//! is built once (coefficients and state allocated up front) and then processes blocks in
//! place with no allocation, no lock and no system call — what a real-time audio callback may
//! do. Coefficients and state are `f64` (a low shelf at 20 Hz in `f32` drifts audibly);
//! samples are `f32`, as hosts deliver them.

use std::f64::consts::PI;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DspError, Result};

/// Most stages in one chain.
pub const MAX_STAGES: usize = 64;

/// The cookbook's filter shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterType {
    /// 12 dB/octave low-pass; `q` sets the resonance (0.7071 = Butterworth).
    Lowpass,
    /// 12 dB/octave high-pass.
    Highpass,
    /// Band-pass with 0 dB peak gain; `q` sets the bandwidth.
    Bandpass,
    /// Notch (band-reject) at `freq_hz`.
    Notch,
    /// Peaking EQ: `gain_db` at `freq_hz`, bandwidth from `q`.
    Peaking,
    /// Low shelf: `gain_db` below `freq_hz`.
    Lowshelf,
    /// High shelf: `gain_db` above `freq_hz`.
    Highshelf,
}

impl FilterType {
    /// Whether `gain_db` means anything for this shape.
    pub fn uses_gain(self) -> bool {
        match self {
            FilterType::Peaking | FilterType::Lowshelf | FilterType::Highshelf => true,
            FilterType::Lowpass
            | FilterType::Highpass
            | FilterType::Bandpass
            | FilterType::Notch => false,
        }
    }
}

/// One biquad of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// The filter shape.
    #[serde(rename = "type")]
    pub kind: FilterType,
    /// Centre or corner frequency in Hz, above 0 and below half the sample rate.
    pub freq_hz: f64,
    /// Quality factor, above 0 and at most 100 (default 0.7071, Butterworth).
    #[serde(default = "default_q")]
    pub q: f64,
    /// Gain in dB, −48 to +48, for peaking and shelf filters only (default 0).
    #[serde(default)]
    pub gain_db: f64,
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

/// Normalised biquad coefficients (`a0` = 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Coefficients {
    /// Feed-forward `b0`.
    pub b0: f64,
    /// Feed-forward `b1`.
    pub b1: f64,
    /// Feed-forward `b2`.
    pub b2: f64,
    /// Feedback `a1`.
    pub a1: f64,
    /// Feedback `a2`.
    pub a2: f64,
}

impl Coefficients {
    /// The cookbook coefficients of `spec` at `sample_rate`; `at` names the spec in errors.
    pub fn rbj(spec: &FilterSpec, sample_rate: f64, at: &str) -> Result<Coefficients> {
        let nyquist = sample_rate / 2.0;
        if !(spec.freq_hz.is_finite() && spec.freq_hz > 0.0 && spec.freq_hz < nyquist) {
            return Err(DspError::parameter(
                format!("{at}.freq_hz"),
                format!(
                    "{} Hz must be above 0 and below half the sample rate ({nyquist} Hz)",
                    spec.freq_hz
                ),
            ));
        }
        if !(spec.q.is_finite() && spec.q > 0.0 && spec.q <= 100.0) {
            return Err(DspError::parameter(
                format!("{at}.q"),
                format!("{} must be above 0 and at most 100", spec.q),
            ));
        }
        if !(spec.gain_db.is_finite() && spec.gain_db.abs() <= 48.0) {
            return Err(DspError::parameter(
                format!("{at}.gain_db"),
                format!("{} dB must be from −48 to +48", spec.gain_db),
            ));
        }
        if spec.gain_db != 0.0 && !spec.kind.uses_gain() {
            return Err(DspError::parameter(
                format!("{at}.gain_db"),
                "only peaking and shelf filters have a gain; leave it out or use 0",
            ));
        }
        let w0 = 2.0 * PI * spec.freq_hz / sample_rate;
        let (sin, cos) = w0.sin_cos();
        let alpha = sin / (2.0 * spec.q);
        let a = 10f64.powf(spec.gain_db / 40.0);
        let root = 2.0 * a.sqrt() * alpha;
        let [b0, b1, b2, a0, a1, a2] = match spec.kind {
            FilterType::Lowpass => [
                (1.0 - cos) / 2.0,
                1.0 - cos,
                (1.0 - cos) / 2.0,
                1.0 + alpha,
                -2.0 * cos,
                1.0 - alpha,
            ],
            FilterType::Highpass => [
                (1.0 + cos) / 2.0,
                -(1.0 + cos),
                (1.0 + cos) / 2.0,
                1.0 + alpha,
                -2.0 * cos,
                1.0 - alpha,
            ],
            FilterType::Bandpass => [alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * cos, 1.0 - alpha],
            FilterType::Notch => [1.0, -2.0 * cos, 1.0, 1.0 + alpha, -2.0 * cos, 1.0 - alpha],
            FilterType::Peaking => [
                1.0 + alpha * a,
                -2.0 * cos,
                1.0 - alpha * a,
                1.0 + alpha / a,
                -2.0 * cos,
                1.0 - alpha / a,
            ],
            FilterType::Lowshelf => [
                a * ((a + 1.0) - (a - 1.0) * cos + root),
                2.0 * a * ((a - 1.0) - (a + 1.0) * cos),
                a * ((a + 1.0) - (a - 1.0) * cos - root),
                (a + 1.0) + (a - 1.0) * cos + root,
                -2.0 * ((a - 1.0) + (a + 1.0) * cos),
                (a + 1.0) + (a - 1.0) * cos - root,
            ],
            FilterType::Highshelf => [
                a * ((a + 1.0) + (a - 1.0) * cos + root),
                -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
                a * ((a + 1.0) + (a - 1.0) * cos - root),
                (a + 1.0) - (a - 1.0) * cos + root,
                2.0 * ((a - 1.0) - (a + 1.0) * cos),
                (a + 1.0) - (a - 1.0) * cos - root,
            ],
        };
        Ok(Coefficients {
            b0: b0 / a0,
            b1: b1 / a0,
            b2: b2 / a0,
            a1: a1 / a0,
            a2: a2 / a0,
        })
    }

    /// The complex response at angular frequency `w` (radians per sample): `(re, im)`.
    fn response(&self, w: f64) -> (f64, f64) {
        // H = (b0 + b1 z⁻¹ + b2 z⁻²) / (1 + a1 z⁻¹ + a2 z⁻²) with z⁻¹ = e^{−jw}.
        let (s1, c1) = w.sin_cos();
        let (s2, c2) = (2.0 * w).sin_cos();
        let (nr, ni) = (
            self.b0 + self.b1 * c1 + self.b2 * c2,
            -self.b1 * s1 - self.b2 * s2,
        );
        let (dr, di) = (
            1.0 + self.a1 * c1 + self.a2 * c2,
            -self.a1 * s1 - self.a2 * s2,
        );
        let d = dr * dr + di * di;
        ((nr * dr + ni * di) / d, (ni * dr - nr * di) / d)
    }
}

/// A cascade of biquads with per-channel state, ready for real-time processing.
#[derive(Debug, Clone)]
pub struct Chain {
    stages: Vec<Coefficients>,
    /// `channels × stages` transposed-direct-form-II states.
    state: Vec<[f64; 2]>,
    channels: usize,
}

impl Chain {
    /// Build a chain for `channels` channels at `sample_rate`.
    pub fn new(specs: &[FilterSpec], sample_rate: f64, channels: usize) -> Result<Chain> {
        if specs.len() > MAX_STAGES {
            return Err(DspError::parameter(
                "chain",
                format!("{} filters; at most {MAX_STAGES}", specs.len()),
            ));
        }
        let stages = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| Coefficients::rbj(spec, sample_rate, &format!("chain[{index}]")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Chain {
            state: vec![[0.0; 2]; stages.len() * channels],
            stages,
            channels,
        })
    }

    /// The stages' coefficients.
    pub fn stages(&self) -> &[Coefficients] {
        &self.stages
    }

    /// Forget the signal so far (silence before the next block).
    pub fn reset(&mut self) {
        self.state.fill([0.0; 2]);
    }

    /// Filter one block of `channel` in place. Allocation-free and lock-free.
    pub fn process(&mut self, channel: usize, block: &mut [f32]) {
        let count = self.stages.len();
        let Some(states) = self.state.get_mut(channel * count..(channel + 1) * count) else {
            return;
        };
        for (c, s) in self.stages.iter().zip(states) {
            let [mut s1, mut s2] = *s;
            for sample in block.iter_mut() {
                let x = f64::from(*sample);
                let y = c.b0 * x + s1;
                s1 = c.b1 * x - c.a1 * y + s2;
                s2 = c.b2 * x - c.a2 * y;
                *sample = y as f32;
            }
            *s = [s1, s2];
        }
    }

    /// Channels the chain keeps state for.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Magnitude (dB) and phase (radians, −π..π) of the whole chain at `freq_hz`.
    pub fn response_at(&self, freq_hz: f64, sample_rate: f64) -> (f64, f64) {
        let w = 2.0 * PI * freq_hz / sample_rate;
        let (mut re, mut im) = (1.0, 0.0);
        for stage in &self.stages {
            let (r, i) = stage.response(w);
            (re, im) = (re * r - im * i, re * i + im * r);
        }
        (10.0 * (re * re + im * im).log10(), im.atan2(re))
    }
}
