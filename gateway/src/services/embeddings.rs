//! Sentence embeddings for `POST /v1/embeddings`: all-MiniLM-L6-v2 on ONNX Runtime, or on
//! llama.cpp (the router's tier B encoder) when the device profile puts `llama.cpp/cpu` first
//! for embeddings.

use std::sync::Arc;

use switchyard_core::{EngineError, Manifest};
use switchyard_engines::onnx::{EmbedderOptions, ExecutionProvider, MiniLmEmbedder};

use switchyard_profiles::Task;

use super::{artifact, Services};
use crate::tier_b::TierBEmbedder;

/// Tokens per input: all-MiniLM-L6-v2's `max_seq_length` in sentence-transformers, so the
/// vectors match that reference; longer inputs are truncated the same way.
pub const MAX_TOKENS: usize = 256;

/// Texts per ONNX Runtime run: batching amortises the per-run overhead, while short batches
/// keep padding waste low.
pub const BATCH: usize = 16;

/// A loaded embedding model.
#[derive(Clone)]
pub enum Embedder {
    /// An ONNX Runtime session.
    Onnx(Arc<MiniLmEmbedder>),
    /// The router's tier B encoder on llama.cpp (the model's Q8_0 GGUF).
    Gguf(Arc<TierBEmbedder>),
}

impl Embedder {
    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        match self {
            Embedder::Onnx(e) => e.dim(),
            Embedder::Gguf(e) => switchyard_intent::tier_b::SentenceEmbedder::dim(e.as_ref()),
        }
    }

    /// `family/device` for traces, metrics and the route header.
    pub fn engine_label(&self) -> &'static str {
        match self {
            Embedder::Onnx(e) => e.execution_provider().engine_label(),
            Embedder::Gguf(_) => LLAMA_CPP_ENGINE,
        }
    }
}

/// Engine label of embeddings served by llama.cpp.
pub const LLAMA_CPP_ENGINE: &str = "llama.cpp/cpu";

impl Services {
    /// The embedder for `manifest`, loaded on first use.
    pub async fn embedder(&self, manifest: &Manifest) -> Result<Embedder, EngineError> {
        if let Some(tier_b) = self.gguf_tier_b_for(manifest) {
            // Loading blocks; once loaded, every later request skips the blocking pool.
            if !tier_b.is_loaded() {
                tokio::task::spawn_blocking({
                    let tier_b = Arc::clone(&tier_b);
                    move || tier_b.load_now()
                })
                .await
                .map_err(|e| EngineError::Load(e.to_string()))?
                .map_err(EngineError::Load)?;
            }
            return Ok(Embedder::Gguf(tier_b));
        }
        self.onnx_runtime()?;
        let model = artifact(manifest, "model")?;
        let tokenizer = artifact(manifest, "tokenizer")?;
        let checked = manifest.clone();
        let placement = self.placement(Task::Embedding, manifest);
        // The router's tier B session, when it holds this very file on the provider this
        // profile puts first for embeddings (tier B runs on the CPU; a GPU-first profile gets
        // its own session).
        let shared = self.tier_b_embedder.clone().filter(|s| {
            s.onnx_model()
                .is_some_and(|m| switchyard_engines::onnx::same_file(m, &model))
                && placement
                    .providers
                    .first()
                    .copied()
                    .unwrap_or(ExecutionProvider::Cpu)
                    == ExecutionProvider::Cpu
        });
        let options = EmbedderOptions {
            threads: self.threads,
            max_tokens: MAX_TOKENS,
            // Spinning ONNX Runtime workers would steal cycles from llama.cpp on small boxes.
            spin: false,
            placement,
        };
        self.embedders
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["model", "tokenizer"])?;
                // Tier B's session, loaded now if tier B has not needed it yet.
                match shared.and_then(|s| s.onnx_session()) {
                    Some(shared) => shared.sharing_session(MAX_TOKENS),
                    None => MiniLmEmbedder::load_with(&model, &tokenizer, &options),
                }
                .map_err(|e| EngineError::Load(e.to_string()))
            })
            .await
            .map(Embedder::Onnx)
    }

    /// The router's tier B when it runs this model's GGUF on llama.cpp (the profile puts
    /// `llama.cpp/cpu` first for embeddings).
    pub(crate) fn gguf_tier_b_for(&self, manifest: &Manifest) -> Option<Arc<TierBEmbedder>> {
        self.tier_b_embedder
            .as_ref()
            .filter(|t| {
                t.gguf_model_dir()
                    .is_some_and(|d| switchyard_engines::onnx::same_file(d, &manifest.dir))
            })
            .cloned()
    }
}

/// Embeds `texts`: unit-length vectors in input order, and the tokens counted. ONNX Runtime
/// runs them in batches; llama.cpp one by one, each over its first [`MAX_TOKENS`] tokens.
pub fn embed_all(
    embedder: &Embedder,
    texts: &[String],
) -> Result<(Vec<Vec<f32>>, usize), EngineError> {
    let embedder = match embedder {
        Embedder::Onnx(session) => session,
        Embedder::Gguf(tier_b) => {
            let encoder = tier_b.gguf_encoder().map_err(EngineError::Unavailable)?;
            let mut vectors = Vec::with_capacity(texts.len());
            let mut tokens = 0;
            for text in texts {
                let (vector, count) = encoder.embed_up_to(text, MAX_TOKENS)?;
                vectors.push(vector);
                tokens += count;
            }
            return Ok((vectors, tokens));
        }
    };
    let mut vectors = Vec::with_capacity(texts.len());
    let mut tokens = 0;
    for chunk in texts.chunks(BATCH) {
        for text in chunk {
            tokens += embedder
                .token_count(text)
                .map_err(|e| EngineError::Inference(e.to_string()))?;
        }
        vectors.extend(
            embedder
                .embed_batch(chunk)
                .map_err(|e| EngineError::Inference(e.to_string()))?,
        );
    }
    Ok((vectors, tokens))
}
