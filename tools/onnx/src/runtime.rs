//! The process's one ONNX Runtime environment.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;

use crate::{OnnxError, Result};

/// The environment variable naming the runtime library.
pub const RUNTIME_ENV: &str = "ORT_DYLIB_PATH";

/// The runtime library the environment names (`ORT_DYLIB_PATH`), if it names one.
pub fn runtime_from_env() -> Option<PathBuf> {
    std::env::var_os(RUNTIME_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// The library can be loaded once per process; the first load's answer is kept.
static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The process's environment on the library at `runtime` (loaded by the first caller).
///
/// A path that does not exist is refused before the process-wide load, so a mistyped path
/// never spoils the runtime for a later, correct one.
pub(crate) fn environment(runtime: Option<&Path>) -> Result<&'static Environment> {
    let runtime = runtime.ok_or(OnnxError::NoRuntime)?;
    if !runtime.exists() {
        return Err(OnnxError::RuntimeMissing(runtime.to_owned()));
    }
    let environment = ENVIRONMENT.get_or_init(|| {
        ort::init_from(runtime)
            .map_err(|error| format!("cannot load `{}`: {error}", runtime.display()))?
            .with_name("baton")
            .build()
            .map_err(|error| format!("`{}` did not start: {error}", runtime.display()))
    });
    environment
        .as_ref()
        .map_err(|why| OnnxError::RuntimeFailed(why.clone()))
}
