//! Separation by a user's ONNX mask model, run through `baton-onnx`'s ONNX Runtime loader
//! (a process loads the runtime once; nothing is downloaded).
//!
//! The contract: the model takes one channel's STFT magnitude as `[1, bins, frames]` (bins =
//! FFT size / 2 + 1; Hann window, librosa's centred framing) and returns soft masks
//! `[1, stems, bins, frames]` in 0–1. Each stem is the complex STFT times its mask, inverted.
//! Masks that sum to 1 give stems that add back up to the input.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use baton_onnx::TensorModel;

use crate::monitor::Monitor;
use crate::stft::{Spectrogram, Stft, Window};
use crate::{DspError, Result};

/// Where the separation model is: the ONNX Runtime library and the `.onnx` file, with names
/// for its stems in output order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeparationConfig {
    /// `libonnxruntime.so` (the `onnxruntime==1.31.1` wheel's), shared with the vision pack through `baton-onnx`.
    pub runtime: Option<PathBuf>,
    /// The model.
    pub model: Option<PathBuf>,
    /// Stem names in the model's output order; empty: `stem1`, `stem2`…
    pub stems: Vec<String>,
}

/// The configured separation model, loaded on first use and kept.
#[derive(Debug, Default)]
pub struct Separator {
    config: SeparationConfig,
    loaded: Mutex<Option<Arc<TensorModel>>>,
}

fn model_error(message: impl Into<String>) -> DspError {
    DspError::Model(message.into())
}

impl Separator {
    /// The model `config` names (nothing is loaded yet).
    pub fn new(config: SeparationConfig) -> Separator {
        Separator {
            config,
            loaded: Mutex::new(None),
        }
    }

    fn model(&self) -> Result<Arc<TensorModel>> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| model_error("the separation model was poisoned by an earlier failure"))?;
        if let Some(model) = loaded.as_ref() {
            return Ok(model.clone());
        }
        let path = self.config.model.as_deref().ok_or_else(|| {
            model_error(
                "no separation model configured: set `separation_model` under [dsp] in \
                 baton.toml or BATON_SEPARATION_MODEL to an .onnx mask model",
            )
        })?;
        let model = Arc::new(TensorModel::open(
            self.config.runtime.as_deref(),
            path,
            "separation",
        )?);
        *loaded = Some(model.clone());
        Ok(model)
    }

    /// The name of stem `index` (0-based).
    pub fn stem_name(&self, index: usize) -> String {
        self.config
            .stems
            .get(index)
            .cloned()
            .unwrap_or_else(|| format!("stem{}", index + 1))
    }

    /// Split one channel into the model's stems, each as long as `signal`.
    pub fn separate(
        &self,
        signal: &[f32],
        n_fft: usize,
        hop: usize,
        monitor: &dyn Monitor,
    ) -> Result<Vec<Vec<f32>>> {
        let model = self.model()?;
        let stft = Stft::new(n_fft, hop, Window::Hann)?;
        let spectrum = stft.forward(signal);
        let (bins, frames) = (spectrum.bins, spectrum.frames);
        // The spectrogram is frame-major; the model reads bins × frames.
        let mut magnitude = vec![0.0f32; bins * frames];
        for (frame, row) in spectrum.data.chunks_exact(bins).enumerate() {
            for (bin, value) in row.iter().enumerate() {
                magnitude[bin * frames + frame] = value.norm();
            }
        }
        if monitor.cancelled() {
            return Err(DspError::Cancelled);
        }
        let (shape, masks) = model.run(&[1, bins, frames], magnitude)?;
        let stems = match shape.as_slice() {
            [1, stems, b, f]
                if *stems >= 1
                    && usize::try_from(*b).ok() == Some(bins)
                    && usize::try_from(*f).ok() == Some(frames) =>
            {
                usize::try_from(*stems).map_err(|_| model_error("a negative stem count"))?
            }
            other => {
                return Err(model_error(format!(
                    "the model returned {other:?}; masks must be [1, stems, {bins}, {frames}] for \
                     an input of [1, {bins}, {frames}]"
                )));
            }
        };
        if !self.config.stems.is_empty() && self.config.stems.len() != stems {
            return Err(model_error(format!(
                "the model returns {stems} stems but {} are named ({})",
                self.config.stems.len(),
                self.config.stems.join(", ")
            )));
        }
        if let Some((index, value)) = masks
            .iter()
            .enumerate()
            .find(|(_, m)| !(0.0..=1.0).contains(*m))
        {
            let stem = index / (bins * frames);
            return Err(model_error(format!(
                "mask values must be 0–1; the model gave {value} in stem {} ({})",
                stem + 1,
                self.stem_name(stem)
            )));
        }
        monitor.progress(1.0, 2.0, "masks computed");
        let mut out = Vec::with_capacity(stems);
        for stem in 0..stems {
            let mask = &masks[stem * bins * frames..(stem + 1) * bins * frames];
            let mut part = Spectrogram {
                bins,
                frames,
                data: spectrum.data.clone(),
            };
            for (frame, row) in part.data.chunks_exact_mut(bins).enumerate() {
                for (bin, value) in row.iter_mut().enumerate() {
                    *value *= mask[bin * frames + frame];
                }
            }
            out.push(stft.inverse(&part, signal.len()));
        }
        monitor.progress(2.0, 2.0, "stems resynthesised");
        Ok(out)
    }
}
