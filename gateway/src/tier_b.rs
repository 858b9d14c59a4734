//! Tier B of the intent classifier in the gateway: the sentence-embedding engine (ONNX Runtime
//! with all-MiniLM-L6-v2) adapted to the router's `SentenceEmbedder`, loaded from the models
//! directory when its files are there. Without them tier A decides alone, and `/v1/route`
//! says so in the intent stage's reason.

use std::path::Path;
use std::sync::Arc;

use switchyard_engines::onnx::{EmbedderOptions, MiniLmEmbedder, MiniLmPaths};
use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
use switchyard_router::TierBSetup;

use crate::config::Config;

/// The ONNX embedder seen through the router's trait.
struct OnnxEmbedder(Arc<MiniLmEmbedder>);

impl SentenceEmbedder for OnnxEmbedder {
    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed(text).map_err(|e| e.to_string())
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }
}

/// Tier B as loaded: the router's setup and the embedder under it, which `/v1/embeddings`
/// shares rather than loading the same model a second time.
pub struct LoadedTierB {
    /// Head and embedder for the router.
    pub setup: TierBSetup,
    /// The MiniLM session tier B embeds with.
    pub embedder: Arc<MiniLmEmbedder>,
}

/// Tier B from the models directory, or `None` (tier A alone decides) with the reason logged.
pub fn load(models_dir: &Path, config: &Config) -> Option<LoadedTierB> {
    let paths = MiniLmPaths::in_models_dir(models_dir);
    if !paths.all_present() {
        tracing::warn!(
            dir = %models_dir.display(),
            "intent tier B off: all-minilm-l6-v2 or onnxruntime missing (run `switchyard models fetch`)"
        );
        return None;
    }
    let loaded = (|| -> Result<LoadedTierB, String> {
        let head = TierB::builtin().map_err(|e| e.to_string())?;
        switchyard_engines::onnx::init_runtime(&paths.runtime_library)
            .map_err(|e| e.to_string())?;
        let options = EmbedderOptions {
            threads: config.engine_config().threads as usize,
            // The head was trained on embeddings of this many tokens (and it keeps tier B fast).
            max_tokens: head.max_tokens(),
            // Spinning workers would steal cycles from the llama.cpp decoders on small boxes.
            spin: false,
            ..EmbedderOptions::default()
        };
        let embedder = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options)
            .map_err(|e| e.to_string())?;
        if embedder.dim() != head.dim() {
            return Err(format!(
                "embedder gives {} dimensions, the tier B head expects {}",
                embedder.dim(),
                head.dim()
            ));
        }
        let embedder = Arc::new(embedder);
        Ok(LoadedTierB {
            setup: TierBSetup {
                head: Arc::new(head),
                embedder: Arc::new(OnnxEmbedder(Arc::clone(&embedder))),
            },
            embedder,
        })
    })();
    match loaded {
        Ok(setup) => {
            tracing::info!("intent tier B ready (all-MiniLM-L6-v2 on ONNX Runtime, cpu)");
            Some(setup)
        }
        Err(e) => {
            tracing::warn!(error = %e, "intent tier B off");
            None
        }
    }
}
