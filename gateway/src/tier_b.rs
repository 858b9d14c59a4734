//! Tier B of the intent classifier in the gateway: all-MiniLM-L6-v2 adapted to the router's
//! `SentenceEmbedder`. Without its files tier A decides alone, and `/v1/route` says so in the
//! intent stage's reason.
//!
//! - **Engine**: the device profile's `embedding` engines, in order. `onnx/*` runs the int8
//!   ONNX model on ONNX Runtime (~160 MB resident; `/v1/embeddings` shares the session);
//!   `llama.cpp/cpu` runs the Q8_0 GGUF that `models fetch` derives (25 MB of mapped weights,
//!   about 2× slower per text on a 2-core x86 box; `/v1/embeddings` then runs on the same
//!   encoder). The first one whose files are here wins.
//! - **When it loads**: on the first request tier A is unsure about (or the first
//!   `/v1/embeddings`, which shares it), like any model, unless `preload` names
//!   `all-minilm-l6-v2`. The gateway therefore starts with no model resident. A failed load is
//!   logged once and not retried: tier A keeps deciding, and the route trace says why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use switchyard_core::Manifest;
use switchyard_engines::llamacpp::encoder::{EncoderOptions, SentenceEncoder};
use switchyard_engines::onnx::{EmbedderOptions, MiniLmEmbedder, MiniLmPaths, MINILM_ID};
use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
use switchyard_profiles::{DeviceProfile, Task};
use switchyard_router::TierBSetup;

use crate::config::Config;
use crate::models::derive::ENCODER_GGUF_ROLE;

/// Which engine tier B runs on, and its files.
#[derive(Debug, Clone)]
enum Choice {
    /// The int8 ONNX model on ONNX Runtime (CPU).
    Onnx(MiniLmPaths),
    /// The Q8_0 GGUF on llama.cpp, with the manifest that records its size and sha256 (and
    /// whose `dir` is the model's folder).
    Gguf(Box<Manifest>, PathBuf),
}

impl Choice {
    fn engine(&self) -> &'static str {
        match self {
            Choice::Onnx(_) => "onnxruntime",
            Choice::Gguf(..) => "llama.cpp",
        }
    }
}

/// A loaded tier B embedder.
enum Loaded {
    Onnx(Arc<MiniLmEmbedder>),
    Gguf(SentenceEncoder),
}

/// Tier B's embedder, loaded on first use (or at start when preloaded). `/v1/embeddings`
/// shares its ONNX Runtime session rather than holding the same model twice.
pub struct TierBEmbedder {
    choice: Choice,
    /// The head's width and token limit: what the loaded model must give.
    dim: usize,
    max_tokens: usize,
    threads: u32,
    loaded: OnceLock<Result<Loaded, String>>,
}

impl TierBEmbedder {
    /// Loads the model now (preload); the error says why it could not.
    pub fn load_now(&self) -> Result<(), String> {
        self.get().map(|_| ())
    }

    /// Whether the model is resident.
    pub fn is_loaded(&self) -> bool {
        matches!(self.loaded.get(), Some(Ok(_)))
    }

    /// Why the model could not load, once a load was tried and failed.
    pub fn load_error(&self) -> Option<&str> {
        match self.loaded.get() {
            Some(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// The ONNX model file tier B runs, when it runs on ONNX Runtime.
    pub fn onnx_model(&self) -> Option<&Path> {
        match &self.choice {
            Choice::Onnx(paths) => Some(&paths.model),
            Choice::Gguf(..) => None,
        }
    }

    /// The model folder whose GGUF tier B runs on llama.cpp (`None` on ONNX Runtime): when the
    /// profile puts llama.cpp first for embeddings, `/v1/embeddings` serves that model on this
    /// same encoder.
    pub fn gguf_model_dir(&self) -> Option<&Path> {
        match &self.choice {
            Choice::Gguf(manifest, _) => Some(&manifest.dir),
            Choice::Onnx(_) => None,
        }
    }

    /// Tier B's llama.cpp encoder (loaded now if it was not); an error on ONNX Runtime or when
    /// it could not load.
    pub fn gguf_encoder(&self) -> Result<&SentenceEncoder, String> {
        match self.get()? {
            Loaded::Gguf(encoder) => Ok(encoder),
            Loaded::Onnx(_) => Err("tier B runs on ONNX Runtime".into()),
        }
    }

    /// Tier B's ONNX Runtime session (loaded now if it was not), for `/v1/embeddings` to
    /// share; `None` when tier B runs on llama.cpp or could not load.
    pub fn onnx_session(&self) -> Option<Arc<MiniLmEmbedder>> {
        match self.get() {
            Ok(Loaded::Onnx(session)) => Some(Arc::clone(session)),
            _ => None,
        }
    }

    fn get(&self) -> Result<&Loaded, String> {
        self.loaded
            .get_or_init(|| {
                let started = Instant::now();
                let loaded = self.load();
                match &loaded {
                    Ok(_) => tracing::info!(
                        engine = self.choice.engine(),
                        ms = started.elapsed().as_millis() as u64,
                        "intent tier B loaded (all-MiniLM-L6-v2)"
                    ),
                    Err(e) => tracing::warn!(error = %e, "intent tier B could not load"),
                }
                loaded
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load(&self) -> Result<Loaded, String> {
        let (loaded, dim) = match &self.choice {
            Choice::Onnx(paths) => {
                switchyard_engines::onnx::init_runtime(&paths.runtime_library)
                    .map_err(|e| e.to_string())?;
                let options = EmbedderOptions {
                    threads: self.threads as usize,
                    max_tokens: self.max_tokens,
                    // Spinning workers would steal cycles from the llama.cpp decoders.
                    spin: false,
                    ..EmbedderOptions::default()
                };
                let session = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options)
                    .map_err(|e| e.to_string())?;
                let dim = session.dim();
                (Loaded::Onnx(Arc::new(session)), dim)
            }
            Choice::Gguf(manifest, gguf) => {
                crate::services::verify_roles(manifest, &[ENCODER_GGUF_ROLE])
                    .map_err(|e| e.to_string())?;
                let options = EncoderOptions {
                    threads: i32::try_from(self.threads.max(1)).unwrap_or(1),
                    max_tokens: self.max_tokens,
                    // `/v1/embeddings` embeds up to this many tokens on the same encoder.
                    context: crate::services::embeddings::MAX_TOKENS,
                };
                let encoder = SentenceEncoder::load(gguf, &options).map_err(|e| e.to_string())?;
                let dim = encoder.dim();
                (Loaded::Gguf(encoder), dim)
            }
        };
        if dim != self.dim {
            return Err(format!(
                "embedder gives {dim} dimensions, the tier B head expects {}",
                self.dim
            ));
        }
        Ok(loaded)
    }
}

impl SentenceEmbedder for TierBEmbedder {
    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        match self.get()? {
            Loaded::Onnx(session) => session.embed(text).map_err(|e| e.to_string()),
            Loaded::Gguf(encoder) => encoder.embed(text).map_err(|e| e.to_string()),
        }
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn engine(&self) -> &str {
        self.choice.engine()
    }
}

/// Tier B as set up: the router's setup and the embedder under it.
pub struct LoadedTierB {
    /// Head and embedder for the router.
    pub setup: TierBSetup,
    /// The embedder, for `/v1/embeddings` to share and `/health` to report.
    pub embedder: Arc<TierBEmbedder>,
}

/// Tier B from the models directory, on the engine `device` puts first among those whose files
/// are here, or `None` (tier A alone decides) with the reason logged. The model loads on first
/// use, or at start through `AppState::preload`.
pub fn load(
    models_dir: &Path,
    config: &Config,
    device: Option<&DeviceProfile>,
) -> Option<LoadedTierB> {
    let head = match TierB::builtin() {
        Ok(head) => head,
        Err(e) => {
            tracing::warn!(error = %e, "intent tier B off");
            return None;
        }
    };
    let Some(choice) = choose(models_dir, device) else {
        tracing::warn!(
            dir = %models_dir.display(),
            "intent tier B off: all-minilm-l6-v2 (ONNX with onnxruntime, or its GGUF) missing \
             (run `switchyard models fetch`)"
        );
        return None;
    };
    let embedder = Arc::new(TierBEmbedder {
        choice,
        dim: head.dim(),
        max_tokens: head.max_tokens(),
        threads: config.engine_config().threads,
        loaded: OnceLock::new(),
    });
    tracing::info!(
        engine = embedder.engine(),
        "intent tier B set up (all-MiniLM-L6-v2; loads on first use unless preloaded)"
    );
    Some(LoadedTierB {
        setup: TierBSetup {
            head: Arc::new(head),
            embedder: Arc::clone(&embedder) as Arc<dyn SentenceEmbedder>,
        },
        embedder,
    })
}

/// The first engine of the profile's embedding order (ONNX Runtime, then llama.cpp, without a
/// profile) whose files are in `models_dir`.
fn choose(models_dir: &Path, device: Option<&DeviceProfile>) -> Option<Choice> {
    let order: Vec<String> = device
        .and_then(|d| d.preference(Task::Embedding))
        .map(|p| p.engines.clone())
        .unwrap_or_else(|| vec!["onnx/cpu".into(), "llama.cpp/cpu".into()]);
    order.iter().find_map(|engine| {
        if engine.starts_with("onnx/") {
            let paths = MiniLmPaths::in_models_dir(models_dir);
            paths.all_present().then_some(Choice::Onnx(paths))
        } else if engine.starts_with("llama.cpp/") {
            let manifest = Manifest::load(&models_dir.join(MINILM_ID)).ok()?;
            let path = manifest.resolve(manifest.artifact(ENCODER_GGUF_ROLE)?);
            path.is_file()
                .then(|| Choice::Gguf(Box::new(manifest), path))
        } else {
            None
        }
    })
}
