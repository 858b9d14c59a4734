//! Sentence embeddings (all-MiniLM-L6-v2 on ONNX Runtime) for `POST /v1/embeddings`.

use std::sync::Arc;

use switchyard_core::{EngineError, Manifest};
use switchyard_engines::onnx::{EmbedderOptions, ExecutionProvider, MiniLmEmbedder};

use switchyard_profiles::Task;

use super::{artifact, Services};

/// Tokens per input: all-MiniLM-L6-v2's `max_seq_length` in sentence-transformers, so the
/// vectors match that reference; longer inputs are truncated the same way.
pub const MAX_TOKENS: usize = 256;

/// Texts per ONNX Runtime run: batching amortises the per-run overhead, while short batches
/// keep padding waste low.
pub const BATCH: usize = 16;

impl Services {
    /// The embedder for `manifest`, loaded on first use.
    pub async fn embedder(&self, manifest: &Manifest) -> Result<Arc<MiniLmEmbedder>, EngineError> {
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
    }
}

/// Embeds `texts` in batches: unit-length vectors in input order, and the tokens counted.
pub fn embed_all(
    embedder: &MiniLmEmbedder,
    texts: &[String],
) -> Result<(Vec<Vec<f32>>, usize), EngineError> {
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
