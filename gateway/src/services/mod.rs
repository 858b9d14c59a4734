//! The non-LLM model services (embeddings, OCR, voice activity, speech in and out): which
//! engine family runs each model, and the models themselves, loaded on first use off the async
//! executor and kept for the life of the process.

pub mod embeddings;
pub mod speech;
pub mod vision;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::{EngineError, Manifest};
use switchyard_engines::onnx::{Placement, ProviderReport};
use switchyard_profiles::{DeviceProfile, Task};
use tokio::sync::OnceCell;

/// The engine (`family/device`) that serves a non-LLM model, from its tasks and format; `None`
/// for models the LLM engines serve (GGUF) and for runtimes.
pub fn media_engine(manifest: &Manifest) -> Option<&'static str> {
    media_engine_on(manifest, None)
}

/// [`media_engine`] under `device`: OCR runs on ONNX Runtime (`onnx/cpu` here, the provider
/// actually used once loaded) when the profile lists an `onnx/*` engine before `tract/cpu`
/// for it.
pub fn media_engine_on(
    manifest: &Manifest,
    device: Option<&DeviceProfile>,
) -> Option<&'static str> {
    let has = |task: &str| manifest.tasks.iter().any(|t| t == task);
    match manifest.format.as_str() {
        "onnx" if has("ocr") && device.is_some_and(ocr_on_onnx) => Some("onnx/cpu"),
        "onnx"
            if has("embedding")
                && device.is_some_and(embedding_on_llama_cpp)
                && manifest
                    .artifact(crate::models::derive::ENCODER_GGUF_ROLE)
                    .is_some() =>
        {
            Some(embeddings::LLAMA_CPP_ENGINE)
        }
        "onnx" if has("ocr") || has("vad") => Some("tract/cpu"),
        "onnx" if has("tts") || has("embedding") => Some("onnx/cpu"),
        "ctranslate2" | "ggml" if has("stt") => Some("whisper.cpp/cpu"),
        _ => None,
    }
}

/// Whether `device` puts an ONNX Runtime engine before tract for OCR.
pub fn ocr_on_onnx(device: &DeviceProfile) -> bool {
    first_family(device, Task::Ocr, &["onnx", "tract"]) == Some("onnx")
}

/// Whether `device` puts llama.cpp before ONNX Runtime for embeddings (then an embedding model
/// with a derived GGUF runs on llama.cpp, as the router's tier B does).
pub fn embedding_on_llama_cpp(device: &DeviceProfile) -> bool {
    first_family(device, Task::Embedding, &["onnx", "llama.cpp"]) == Some("llama.cpp")
}

/// The first of `families` among `device`'s engines for `task` (engines read `family/backend`).
fn first_family<'a>(device: &'a DeviceProfile, task: Task, families: &[&str]) -> Option<&'a str> {
    device.preference(task).and_then(|p| {
        p.engines
            .iter()
            .map(|e| e.split('/').next().unwrap_or(e.as_str()))
            .find(|family| families.contains(family))
    })
}

/// Models of one kind, loaded once per id.
pub(crate) struct LoadedOnce<T> {
    cells: Mutex<HashMap<String, Arc<OnceCell<Arc<T>>>>>,
}

impl<T: Send + Sync + 'static> LoadedOnce<T> {
    fn new() -> Self {
        Self {
            cells: Mutex::new(HashMap::new()),
        }
    }

    /// The model `id`, loading it with `load` on a blocking thread the first time.
    pub(crate) async fn get(
        &self,
        id: &str,
        load: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
    ) -> Result<Arc<T>, EngineError> {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cells.entry(id.to_owned()).or_default())
        };
        let span = tracing::info_span!("load_model", model = %id);
        let loaded = cell
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let started = std::time::Instant::now();
                    let model = load()?;
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "model ready"
                    );
                    Ok::<_, EngineError>(Arc::new(model))
                })
                .await
                .map_err(|e| EngineError::Load(format!("loader panicked: {e}")))?
            })
            .await?;
        Ok(Arc::clone(loaded))
    }

    /// The models loaded so far, by id.
    pub(crate) fn loaded_models(&self) -> Vec<(String, Arc<T>)> {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let mut models: Vec<(String, Arc<T>)> = cells
            .iter()
            .filter_map(|(id, c)| c.get().map(|m| (id.clone(), Arc::clone(m))))
            .collect();
        models.sort_by(|a, b| a.0.cmp(&b.0));
        models
    }

    /// Ids of the models loaded so far.
    pub(crate) fn loaded_ids(&self) -> Vec<String> {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<String> = cells
            .iter()
            .filter(|(_, c)| c.initialized())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// Every non-LLM service of the gateway.
pub struct Services {
    /// The models directory (for the ONNX Runtime library).
    pub models_dir: PathBuf,
    /// Threads each service's engine may use (the configured engine threads).
    pub threads: usize,
    /// ONNX Runtime execution providers per task, from the device profile's `[[prefer]]`
    /// order (`onnx/tensorrt`, `onnx/cuda`, `onnx/cpu`, `onnx/coreml`).
    pub(crate) placements: HashMap<Task, Placement>,
    /// OCR runs on ONNX Runtime (the profile lists `onnx/*` before `tract/cpu` for it).
    pub(crate) ocr_on_onnx: bool,
    pub(crate) embedders: LoadedOnce<switchyard_engines::onnx::MiniLmEmbedder>,
    /// The router's tier B embedder (also reported by `/health`): `/v1/embeddings` shares its
    /// ONNX Runtime session for the same file on the CPU instead of loading the model again.
    pub(crate) tier_b_embedder: Option<Arc<crate::tier_b::TierBEmbedder>>,
    pub(crate) ocr: LoadedOnce<vision::OcrService>,
    pub(crate) vad: LoadedOnce<switchyard_engines::tract::vad::VadModel>,
    pub(crate) stt: LoadedOnce<switchyard_engines::whisper::WhisperHost>,
    pub(crate) tts: LoadedOnce<switchyard_engines::onnx::piper::PiperVoice>,
}

impl Services {
    /// Services over `models_dir`, each engine with `threads` threads, ONNX Runtime sessions
    /// on the CPU.
    pub fn new(models_dir: PathBuf, threads: usize) -> Self {
        Self {
            models_dir,
            threads: threads.max(1),
            placements: HashMap::new(),
            ocr_on_onnx: false,
            embedders: LoadedOnce::new(),
            tier_b_embedder: None,
            ocr: LoadedOnce::new(),
            vad: LoadedOnce::new(),
            stt: LoadedOnce::new(),
            tts: LoadedOnce::new(),
        }
    }

    /// Places ONNX Runtime sessions by `device`'s per-task engine order. An `onnx/<name>`
    /// that names no provider is an error (profile validation already refuses it).
    pub fn with_profile(mut self, device: &DeviceProfile) -> anyhow::Result<Self> {
        for preference in &device.prefer {
            let placement = Placement::from_engines(preference.engines.iter().map(String::as_str))
                .map_err(|e| anyhow::anyhow!("device profile {}: {e}", device.name))?;
            self.placements.insert(preference.task, placement);
        }
        self.ocr_on_onnx = ocr_on_onnx(device);
        Ok(self)
    }

    /// Where the ONNX Runtime session of `manifest` for `task` goes: the profile's providers,
    /// with TensorRT engines cached in the model's folder (`tensorrt-cache/`).
    pub(crate) fn placement(&self, task: Task, manifest: &Manifest) -> Placement {
        let mut placement = self.placements.get(&task).cloned().unwrap_or_default();
        placement.tensorrt_cache = Some(manifest.dir.join(TENSORRT_CACHE_DIR));
        placement
    }

    /// Initialises ONNX Runtime from the models directory (once per process).
    pub(crate) fn onnx_runtime(&self) -> Result<(), EngineError> {
        let library = switchyard_engines::onnx::runtime_library_in(&self.models_dir);
        switchyard_engines::onnx::init_runtime(&library)
            .map(|_| ())
            .map_err(|e| {
                EngineError::Unavailable(format!(
                    "ONNX Runtime is not available ({e}); run `switchyard models fetch`"
                ))
            })
    }

    /// The loaded non-LLM models with their engines (`onnx/<provider actually used>` for ONNX
    /// Runtime models) and, for those, the providers passed over, for health and metrics.
    pub fn loaded(&self) -> Vec<LoadedService> {
        let mut loaded = Vec::new();
        let mut add = |ids: Vec<String>, engine: &'static str| {
            loaded.extend(ids.into_iter().map(|id| LoadedService {
                id,
                engine,
                provider: None,
                fallback: None,
            }));
        };
        add(self.vad.loaded_ids(), speech::VAD_ENGINE);
        add(self.stt.loaded_ids(), speech::STT_ENGINE);
        for (id, model) in self.ocr.loaded_models() {
            loaded.push(match &model.provider {
                Some(report) => LoadedService::onnx(id, report),
                None => LoadedService {
                    id,
                    engine: model.engine,
                    provider: None,
                    fallback: model.fallback.clone(),
                },
            });
        }
        for (id, model) in self.embedders.loaded_models() {
            loaded.push(LoadedService::onnx(id, model.provider_report()));
        }
        // The embedding model the router's tier B holds on llama.cpp (it serves
        // `/v1/embeddings` too when the profile puts llama.cpp first).
        if let Some(dir) = self
            .tier_b_embedder
            .as_ref()
            .filter(|t| t.is_loaded())
            .and_then(|t| t.gguf_model_dir())
        {
            if let Some(id) = dir.file_name().and_then(|n| n.to_str()) {
                if !loaded.iter().any(|l| l.id == id) {
                    loaded.push(LoadedService {
                        id: id.to_owned(),
                        engine: embeddings::LLAMA_CPP_ENGINE,
                        provider: None,
                        fallback: None,
                    });
                }
            }
        }
        for (id, model) in self.tts.loaded_models() {
            loaded.push(LoadedService::onnx(id, model.provider_report()));
        }
        loaded.sort_by(|a, b| a.id.cmp(&b.id));
        loaded
    }
}

/// Folder, inside a model's folder, where TensorRT keeps the engines it built for it.
pub const TENSORRT_CACHE_DIR: &str = "tensorrt-cache";

/// A loaded non-LLM model, as health reports it.
#[derive(Debug, Clone)]
pub struct LoadedService {
    /// Model id.
    pub id: String,
    /// `family/device` that serves it.
    pub engine: &'static str,
    /// For ONNX Runtime models: the provider in use and the ones passed over.
    pub provider: Option<ProviderReport>,
    /// Why a later engine of the profile's list serves the model, when the first could not.
    pub fallback: Option<String>,
}

impl LoadedService {
    fn onnx(id: String, report: &ProviderReport) -> Self {
        LoadedService {
            id,
            engine: report.used.engine_label(),
            provider: Some(report.clone()),
            fallback: None,
        }
    }
}

/// The path of the artifact with `role` in `manifest`, or a clear load error.
pub(crate) fn artifact(manifest: &Manifest, role: &str) -> Result<PathBuf, EngineError> {
    let artifact = manifest.artifact(role).ok_or_else(|| {
        EngineError::Load(format!(
            "model '{}' has no '{role}' artifact in {}",
            manifest.id,
            manifest.dir.display()
        ))
    })?;
    Ok(manifest.resolve(artifact))
}

/// Checks the files of `roles` against their recorded size and sha256 before a model is
/// loaded: one that changed since it was recorded (corrupt, truncated, replaced) is refused
/// with the reason, never loaded. Runs once per model, in its loader.
pub(crate) fn verify_roles(manifest: &Manifest, roles: &[&str]) -> Result<(), EngineError> {
    for role in roles {
        if let Some(artifact) = manifest.artifact(role) {
            switchyard_core::manifest::verify_artifact(&manifest.resolve(artifact), artifact, true)
                .map_err(EngineError::Load)?;
        }
    }
    Ok(())
}

/// A media decoding error as the engine error the API turns into a status: the caller's
/// fault (400 naming `param`) unless the decoder itself failed.
pub(crate) fn media_error(error: switchyard_media::MediaError, param: &str) -> EngineError {
    if error.is_client_error() {
        EngineError::invalid(format!("{param}: {error}"), Some(param))
    } else {
        EngineError::Inference(format!("{param}: {error}"))
    }
}
