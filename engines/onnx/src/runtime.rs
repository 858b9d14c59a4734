//! Loading the ONNX Runtime shared library (once per process) and the execution providers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::providers::{Placement, ProviderReport};
use crate::OnnxError;

/// The ONNX Runtime loaded into this process.
pub struct Runtime {
    library: PathBuf,
    environment: Environment,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Absolute path of the shared library that was loaded.
    pub fn library(&self) -> &Path {
        &self.library
    }

    /// ONNX Runtime's build description (version, git commit, compile flags).
    pub fn build_info(&self) -> &'static str {
        ort::info()
    }

    pub(crate) fn environment(&self) -> &Environment {
        &self.environment
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Serialises initialisation; `RUNTIME` is only written while this is held.
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `lib_path` (e.g. `<models>/onnxruntime/libonnxruntime.so.1.31.1`)
/// and creates the process-wide environment.
///
/// Call it once per process, before loading any model. Calling it again with the same library
/// returns the runtime already loaded; calling it with another library is an error
/// ([`OnnxError::RuntimeAlreadyLoaded`]), since a process can hold only one. A missing or
/// incompatible library is an error, never a panic, and a failed call can be retried.
pub fn init_runtime(lib_path: &Path) -> Result<&'static Runtime, OnnxError> {
    let requested = std::path::absolute(lib_path).unwrap_or_else(|_| lib_path.to_path_buf());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        if same_file(&runtime.library, &requested) {
            return Ok(runtime);
        }
        return Err(OnnxError::RuntimeAlreadyLoaded {
            loaded: runtime.library.clone(),
            requested,
        });
    }
    if !requested.is_file() {
        return Err(OnnxError::LibraryMissing { path: requested });
    }
    let builder = ort::init_from(&requested).map_err(|e| OnnxError::LibraryLoad {
        path: requested.clone(),
        message: e.to_string(),
    })?;
    let environment = builder
        .with_name("switchyard")
        .with_telemetry(false)
        .build()
        .map_err(|e| OnnxError::Environment(e.to_string()))?;
    tracing::info!(library = %requested.display(), build = ort::info(), "ONNX Runtime loaded");
    Ok(RUNTIME.get_or_init(|| Runtime {
        library: requested,
        environment,
    }))
}

/// The runtime loaded by [`init_runtime`], if any.
pub fn runtime() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Whether `a` and `b` name the same file, however they are spelled (compared as given when
/// either cannot be resolved).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A session for the model at `path`: full graph optimisation, `threads` intra-op threads, one
/// inter-op thread, worker spinning as asked, placed on the first execution provider of
/// `placement` that works (see [`crate::providers`]). [`init_runtime`] must have succeeded
/// first.
pub(crate) fn session(
    path: &Path,
    threads: usize,
    spin: bool,
    placement: &Placement,
) -> Result<(ort::session::Session, ProviderReport), OnnxError> {
    use ort::session::builder::GraphOptimizationLevel;
    let runtime = runtime().ok_or(OnnxError::RuntimeNotInitialized)?;
    let session_error = |e: &dyn std::fmt::Display| OnnxError::Session {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // Builder errors carry the builder (large, not Send): keep only their message.
    let builder = || -> Result<ort::session::builder::SessionBuilder, OnnxError> {
        ort::session::Session::builder(runtime.environment())
            .map_err(|e| session_error(&e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| session_error(&e))?
            .with_intra_threads(threads)
            .map_err(|e| session_error(&e))?
            .with_inter_threads(1)
            .map_err(|e| session_error(&e))?
            .with_intra_op_spinning(spin)
            .map_err(|e| session_error(&e))
    };
    crate::providers::place(path, placement, builder)
}
