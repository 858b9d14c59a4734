//! Switchyard engines facade: the registry of engine families compiled into this build.
//!
//! Each family is its own crate behind a cargo feature of the same name (`llamacpp`, `onnx`,
//! `tract`, `whisper`; `mock` for tests), re-exported here under the feature's name; GPU
//! features (`cuda`, `metal`, `vulkan`) are passed down to llama.cpp. The gateway asks this
//! crate which engine serves a model and whether each family can run on this box.

use std::path::Path;
use std::sync::Arc;

pub use switchyard_core::Engine;
use switchyard_core::Manifest;

#[cfg(feature = "llamacpp")]
pub use switchyard_engine_llamacpp as llamacpp;
#[cfg(feature = "onnx")]
pub use switchyard_engine_onnx as onnx;
#[cfg(feature = "tract")]
pub use switchyard_engine_tract as tract;
#[cfg(feature = "whisper")]
pub use switchyard_engine_whisper as whisper;

/// An engine family and whether it can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// Engine name.
    pub name: &'static str,
    /// `Ok` when it can run; `Err` says why not.
    pub status: Result<(), String>,
    /// CPU instruction sets its kernels were built for ([`Engine::cpu_features`]; llama.cpp's
    /// come from scripts/native-cpu.sh at build time). Empty when the family does not say.
    pub cpu_features: Vec<String>,
}

/// What a model file turned out to be, for `switchyard models add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Artifact format (`gguf`).
    pub format: String,
    /// Architecture named in the file (`llama`, `gemma3`, ...).
    pub architecture: String,
    /// Tasks the file can serve.
    pub tasks: Vec<String>,
    /// The model's own name, when the file has one.
    pub name: Option<String>,
    /// License named in the file, when there is one.
    pub license: Option<String>,
}

/// All engine families compiled into this build, in preference order.
#[allow(clippy::vec_init_then_push)] // pushes depend on features
pub fn registry() -> Vec<Arc<dyn Engine>> {
    let mut engines: Vec<Arc<dyn Engine>> = Vec::new();
    #[cfg(feature = "llamacpp")]
    engines.push(Arc::new(switchyard_engine_llamacpp::LlamaCppEngine));
    engines
}

/// The device an engine family runs its models on in this build (`cpu`, or the GPU back-end
/// the build was compiled for). The router plans with `family/device` strings.
pub fn device_of(engine: &str) -> &'static str {
    match engine {
        "llama.cpp" if cfg!(feature = "cuda") => "cuda",
        "llama.cpp" if cfg!(feature = "metal") => "metal",
        "llama.cpp" if cfg!(feature = "vulkan") => "vulkan",
        _ => "cpu",
    }
}

/// The first available engine that reads this model's format.
pub fn engine_for(manifest: &Manifest) -> Result<Arc<dyn Engine>, String> {
    let candidates: Vec<_> = registry()
        .into_iter()
        .filter(|e| e.supports(manifest))
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "no engine in this build reads format '{}' (model '{}')",
            manifest.format, manifest.id
        ));
    }
    let mut reasons = Vec::new();
    for engine in candidates {
        match engine.check() {
            Ok(()) => return Ok(engine),
            Err(why) => reasons.push(format!("{}: {why}", engine.name())),
        }
    }
    Err(format!(
        "no engine can run model '{}' here ({})",
        manifest.id,
        reasons.join("; ")
    ))
}

/// Availability of every compiled engine family: the registry's LLM engines, then the media
/// families (ONNX Runtime needs its shared library in `models_dir`, fetched with the models;
/// whisper.cpp needs its worker executable; tract needs nothing).
pub fn availability(models_dir: &Path) -> Vec<Availability> {
    let mut all: Vec<Availability> = registry()
        .iter()
        .map(|e| Availability {
            name: e.name(),
            status: e.check(),
            cpu_features: e.cpu_features(),
        })
        .collect();
    #[cfg(feature = "onnx")]
    all.push(Availability {
        name: "onnx",
        status: onnx_status(models_dir),
        cpu_features: Vec::new(),
    });
    #[cfg(feature = "tract")]
    all.push(Availability {
        name: "tract",
        status: Ok(()),
        cpu_features: Vec::new(),
    });
    #[cfg(feature = "whisper")]
    all.push(Availability {
        name: "whisper.cpp",
        status: switchyard_engine_whisper::locate_worker(None)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        cpu_features: Vec::new(),
    });
    let _ = models_dir; // read only by the media families
    all
}

/// ONNX Runtime: loaded already, or its library present where the models are.
#[cfg(feature = "onnx")]
fn onnx_status(models_dir: &Path) -> Result<(), String> {
    if switchyard_engine_onnx::runtime().is_some() {
        return Ok(());
    }
    let library = switchyard_engine_onnx::runtime_library_in(models_dir);
    if library.is_file() {
        Ok(())
    } else {
        Err(format!(
            "ONNX Runtime library not found at {}; run `switchyard models fetch`",
            library.display()
        ))
    }
}

/// Reads a model file's header to learn what it is; fails with a clear reason otherwise.
pub fn inspect(path: &Path) -> Result<Inspection, String> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Read::read_exact(&mut file, &mut magic)
        .map_err(|e| format!("{}: too short to be a model file ({e})", path.display()))?;
    match &magic {
        b"GGUF" => inspect_gguf(path),
        _ => Err(format!(
            "{}: unrecognised model format (expected a GGUF file; other formats arrive with their engines)",
            path.display()
        )),
    }
}

#[cfg(feature = "llamacpp")]
fn inspect_gguf(path: &Path) -> Result<Inspection, String> {
    let info = switchyard_engine_llamacpp::inspect_gguf(path)?;
    Ok(Inspection {
        format: "gguf".into(),
        architecture: info.architecture,
        tasks: info.tasks,
        name: info.name,
        license: info.license,
    })
}

#[cfg(not(feature = "llamacpp"))]
fn inspect_gguf(path: &Path) -> Result<Inspection, String> {
    Err(format!(
        "{}: GGUF needs the llamacpp feature",
        path.display()
    ))
}
