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

/// The version of the runtime library at `runtime` (`1.31.1`), once it loaded as the first
/// model would load it: what `baton doctor` reports. The runtime's API tells only its build
/// (`ort` keeps the version string to itself), so the version is read from the library's
/// file name, links followed (`libonnxruntime.so.1.31.1`, as the releases and the PyPI wheel
/// ship it); a name without one is reported with the build line instead.
pub fn runtime_version(runtime: Option<&Path>) -> Result<String> {
    environment(runtime)?;
    let named = runtime
        .and_then(|path| std::fs::canonicalize(path).ok())
        .and_then(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            name.split_once(".so.")
                .map(|(_, version)| version.to_owned())
        });
    Ok(named.unwrap_or_else(|| format!("of unknown version ({})", ort::info())))
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
