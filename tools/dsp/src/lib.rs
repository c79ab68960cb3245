//! `baton-dsp`: the audio pack. Measures files (peaks, BS.1770 loudness, spectrum), filters
//! them through RBJ biquads, separates harmonic and percussive stems, and checks DSP code
//! against a real-time budget.
//!
//! The key design choice: everything that would run inside a host's audio callback — the
//! biquad [`Chain`] — is built up front and then processes blocks in place with no
//! allocation, lock or system call; `dsp_filter` runs files through it block by block exactly
//! as a callback would, and `dsp_latency` proves the budget and the zero allocations with a
//! [`CountingAllocator`]. Analyses follow their reference implementations' conventions
//! (librosa's centred STFT and median filters, BS.1770-4 gating) so results can be checked
//! against them number for number. A user's separation model runs on ONNX Runtime through
//! `baton-onnx` (not the vision pack), so the audio pack pulls in no image code.

mod analyze;
mod audio;
mod biquad;
mod counting;
mod decode;
mod error;
mod hpss;
mod latency;
mod limiter;
mod loudness;
mod masks;
mod monitor;
mod normalize;
mod spectrum;
mod spectrum_file;
mod stft;
mod stream;
mod tools;
mod truepeak;

pub use analyze::{Analysis, Analyzer, CLIP_LEVEL, analyze, analyze_file, integrated_loudness};
pub use audio::{
    Audio, MAX_CHANNELS, MAX_RATE, MAX_SAMPLES, MAX_WAV_SAMPLES, MIN_RATE, encode_wav, read_audio,
    read_audio_within, read_wav, write_wav,
};
pub use biquad::{Chain, Coefficients, FilterSpec, FilterType, MAX_STAGES};
pub use counting::{CountingAllocator, allocations};
pub use error::{DspError, Result};
pub use hpss::{HpssParams, hpss};
pub use latency::{LatencyReport, measure};
pub use limiter::Limiter;
pub use loudness::{Loudness, LoudnessMeter};
pub use masks::{SeparationConfig, Separator};
pub use monitor::{Monitor, Unwatched};
pub use normalize::{Normalized, Prepared, Target, prepare, write_normalized};
pub use spectrum::{Peak, SpectrumResult, average_spectrum, spectrum};
pub use spectrum_file::spectrum_file;
pub use stft::{MAX_OVERLAP, Spectrogram, Stft, Window, within_budget};
pub use stream::{AudioStream, CHUNK_FRAMES};
pub use tools::*;
pub use truepeak::{Bs1770Peak, TruePeak};
