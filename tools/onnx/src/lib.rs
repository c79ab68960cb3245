//! `baton-onnx`: ONNX Runtime for Baton's packs. It owns loading the runtime library the user
//! points at (`ORT_DYLIB_PATH`, the `onnxruntime==1.31.1` wheel's `libonnxruntime.so`) and
//! [`TensorModel`], a model with one float tensor in and one float tensor out. Vision's
//! segmenter and classifier and dsp's separation masks run through it; what their tensors mean
//! stays in their packs.
//!
//! The key design choice: the runtime is loaded at run time (`ort`'s `load-dynamic`), once per
//! process, and nothing is ever downloaded. Without a runtime every model says why it cannot
//! run and the rest of Baton works as before; a process that loads no model never touches the
//! library.

mod error;
mod model;
mod runtime;

pub use error::{OnnxError, Result};
pub use model::TensorModel;
pub use runtime::{RUNTIME_ENV, runtime_from_env, runtime_version};
