//! A model with one float tensor in and one out.

use std::path::Path;
use std::sync::Mutex;

use ort::session::Session;
use ort::value::Tensor;

use crate::runtime::environment;
use crate::{OnnxError, Result};

/// Any ONNX model with one float input and one float output, on the process's one ONNX
/// Runtime (a process may load the library once, so every pack runs its models through here).
pub struct TensorModel {
    session: Mutex<Session>,
    input: String,
    output: String,
}

impl std::fmt::Debug for TensorModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TensorModel")
            .field("input", &self.input)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl TensorModel {
    /// Open `model` (a `what` model, named in errors) on the runtime library at `runtime`.
    pub fn open(runtime: Option<&Path>, model: &Path, what: &str) -> Result<TensorModel> {
        let environment = environment(runtime)?;
        let failed = |source: ort::Error| OnnxError::Open {
            what: what.to_owned(),
            path: model.to_owned(),
            source,
        };
        let session = Session::builder(environment)
            .map_err(failed)?
            .commit_from_file(model)
            .map_err(failed)?;
        let named = |outlet: Option<&str>, side: &'static str| {
            outlet
                .map(str::to_owned)
                .ok_or_else(|| OnnxError::NoOutlet {
                    what: what.to_owned(),
                    path: model.to_owned(),
                    side,
                })
        };
        let input = named(session.inputs().first().map(|o| o.name()), "input")?;
        let output = named(session.outputs().first().map(|o| o.name()), "output")?;
        Ok(TensorModel {
            session: Mutex::new(session),
            input,
            output,
        })
    }

    /// The input's name.
    pub fn input_name(&self) -> &str {
        &self.input
    }

    /// The input's declared shape (`-1` for a dynamic side).
    pub fn input_shape(&self) -> Result<Vec<i64>> {
        let session = self.session.lock().map_err(|_| OnnxError::Poisoned)?;
        Ok(session
            .inputs()
            .first()
            .and_then(|outlet| outlet.dtype().tensor_shape().map(|s| s.to_vec()))
            .unwrap_or_default())
    }

    /// Run on `data` of `shape` (row-major): the first output's shape and values.
    pub fn run(&self, shape: &[usize], data: Vec<f32>) -> Result<(Vec<i64>, Vec<f32>)> {
        let tensor = Tensor::from_array((shape.to_vec(), data)).map_err(OnnxError::Run)?;
        let mut session = self.session.lock().map_err(|_| OnnxError::Poisoned)?;
        let outputs = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(OnnxError::Run)?;
        let (shape, values) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(OnnxError::Run)?;
        Ok((shape.to_vec(), values.to_vec()))
    }
}
