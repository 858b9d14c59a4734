//! Sentence embeddings through llama.cpp, and a load check for converted models.
//!
//! [`embed`] loads a GGUF embedding model (e.g. a BERT encoder converted by
//! `switchyard-convert hf-gguf`), tokenizes each text with the model's own vocabulary (special
//! tokens added as the GGUF says: `[CLS] … [SEP]` for BERT), runs several texts per decode as
//! separate sequences, pools each sequence as the GGUF's `{arch}.pooling_type` says (mean when
//! it says nothing) and returns unit-length (L2-normalised) vectors, as sentence-transformers
//! does. Each call loads the model and drops it on return: a reference tool for converters and
//! parity tests, not a serving path.

use std::num::NonZeroU32;
use std::path::Path;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use switchyard_core::EngineError;

use crate::backend;

/// Longest input, in tokens, [`embed`] runs (longer texts are truncated, keeping the final
/// separator); the model's training context caps it further.
pub const MAX_TOKENS: usize = 8192;

/// Sequences decoded together at most.
const MAX_SEQUENCES: usize = 32;

/// What llama.cpp reports about a model it loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelDescription {
    /// `general.architecture`.
    pub architecture: String,
    /// Vocabulary size.
    pub n_vocab: i32,
    /// Embedding width (the output dimension of an embedding model).
    pub n_embd: i32,
    /// Layers.
    pub n_layer: u32,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Parameter count.
    pub n_params: u64,
    /// `{arch}.pooling_type` as written in the GGUF (`None` when absent).
    pub pooling_type: Option<u32>,
}

pub(crate) fn load(model: &Path, params: &LlamaModelParams) -> Result<LlamaModel, EngineError> {
    let backend = backend()?;
    LlamaModel::load_from_file(backend, model, params).map_err(|e| {
        EngineError::Load(format!(
            "{}: llama.cpp could not load it ({e}; set SWITCHYARD_LLAMA_LOGS=1 for its log)",
            model.display()
        ))
    })
}

fn pooling_type(llama: &LlamaModel) -> Option<u32> {
    let arch = llama.meta_val_str("general.architecture").ok()?;
    llama
        .meta_val_str(&format!("{arch}.pooling_type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Loads `model` in llama.cpp without reading its weights (`no_alloc`) and describes it.
///
/// llama.cpp still parses the header, builds the vocabulary from the tokenizer metadata, and
/// checks every tensor against the architecture: names, shapes, types, that none is missing
/// or left over, and that each one's data lies within the file. Memory stays near the
/// metadata's size whatever the model's, so a converter can run it on every output.
pub fn describe(model: &Path) -> Result<ModelDescription, EngineError> {
    let llama = load(model, &LlamaModelParams::default().with_no_alloc(true))?;
    Ok(ModelDescription {
        architecture: llama
            .meta_val_str("general.architecture")
            .unwrap_or_default(),
        n_vocab: llama.n_vocab(),
        n_embd: llama.n_embd(),
        n_layer: llama.n_layer(),
        n_ctx_train: llama.n_ctx_train(),
        n_params: llama.n_params(),
        pooling_type: pooling_type(&llama),
    })
}

/// Unit-length sentence embeddings of `texts` with the GGUF embedding model `model`, one
/// vector per text, in order. `threads` is the llama.cpp thread count.
///
/// Texts longer than the model's context (at most [`MAX_TOKENS`]) are truncated. An empty
/// list gives an empty result; `threads < 1` and a reranker (rank pooling) are refused.
pub fn embed(model: &Path, texts: &[&str], threads: i32) -> Result<Vec<Vec<f32>>, EngineError> {
    if threads < 1 {
        return Err(EngineError::invalid(
            format!("threads must be at least 1, got {threads}"),
            Some("threads"),
        ));
    }
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let llama = load(model, &LlamaModelParams::default())?;
    let pooling = pooling(&llama, model)?;
    let limit = usize::try_from(llama.n_ctx_train())
        .unwrap_or(MAX_TOKENS)
        .clamp(1, MAX_TOKENS);
    let mut sequences = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let tokens = tokenize_truncated(&llama, text, limit);
        if tokens.is_empty() {
            return Err(EngineError::invalid(
                format!("text {i} gives no tokens"),
                Some("texts"),
            ));
        }
        sequences.push(tokens);
    }

    let longest = sequences.iter().map(Vec::len).max().unwrap_or(1);
    let n_seq = texts.len().min(MAX_SEQUENCES);
    // A multiple of the sequence count: llama.cpp's worst-case graph reservation rounds the
    // batch up to one, and with pooling its output count then no longer matches
    // (GGML_ASSERT(ggml_can_mul_mat) in the mean-pooling product).
    let capacity = longest.max(512.min(limit)).div_ceil(n_seq) * n_seq;
    let too_big = || EngineError::invalid("batch too large", Some("texts"));
    let capacity_u32 = u32::try_from(capacity).map_err(|_| too_big())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(capacity_u32))
        .with_n_batch(capacity_u32)
        .with_n_ubatch(capacity_u32)
        .with_n_seq_max(u32::try_from(n_seq).map_err(|_| too_big())?)
        .with_kv_unified(true)
        .with_embeddings(true)
        .with_pooling_type(pooling)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = llama
        .new_context(backend()?, params)
        .map_err(|e| EngineError::Load(format!("cannot create an embedding context: {e}")))?;

    let mut out = Vec::with_capacity(texts.len());
    let mut batch = LlamaBatch::new(capacity, i32::try_from(n_seq).map_err(|_| too_big())?);
    let mut group: Vec<&[LlamaToken]> = Vec::with_capacity(n_seq);
    let mut group_tokens = 0;
    let mut run = |group: &mut Vec<&[LlamaToken]>, out: &mut Vec<Vec<f32>>| {
        batch.clear();
        for (seq, tokens) in group.iter().enumerate() {
            let seq = i32::try_from(seq).map_err(|_| too_big())?;
            for (pos, &token) in tokens.iter().enumerate() {
                let pos = i32::try_from(pos).map_err(|_| too_big())?;
                batch
                    .add(token, pos, &[seq], true)
                    .map_err(|e| EngineError::Inference(format!("batch: {e}")))?;
            }
        }
        ctx.clear_kv_cache();
        ctx.decode(&mut batch)
            .map_err(|e| EngineError::Inference(format!("decode failed: {e}")))?;
        for seq in 0..group.len() {
            let seq = i32::try_from(seq).map_err(|_| too_big())?;
            let vector = ctx
                .embeddings_seq_ith(seq)
                .map_err(|e| EngineError::Inference(format!("no pooled embedding: {e}")))?;
            out.push(normalized(vector));
        }
        group.clear();
        Ok::<(), EngineError>(())
    };
    for tokens in &sequences {
        if !group.is_empty() && (group_tokens + tokens.len() > capacity || group.len() == n_seq) {
            run(&mut group, &mut out)?;
            group_tokens = 0;
        }
        group.push(tokens);
        group_tokens += tokens.len();
    }
    if !group.is_empty() {
        run(&mut group, &mut out)?;
    }
    Ok(out)
}

/// How `llama` pools a sequence into one vector, from its GGUF's `{arch}.pooling_type` (mean
/// when unset); a reranker's rank pooling is refused, naming `model`.
pub(crate) fn pooling(llama: &LlamaModel, model: &Path) -> Result<LlamaPoolingType, EngineError> {
    match pooling_type(llama) {
        None | Some(0) | Some(1) => Ok(LlamaPoolingType::Mean),
        Some(2) => Ok(LlamaPoolingType::Cls),
        Some(3) => Ok(LlamaPoolingType::Last),
        Some(other) => Err(EngineError::Load(format!(
            "{}: pooling type {other} does not give sentence embeddings (a reranker?)",
            model.display()
        ))),
    }
}

/// `text` in `llama`'s vocabulary with its special tokens, cut to `limit` tokens while keeping
/// the closing separator / end token the tokenizer added.
pub(crate) fn tokenize_truncated(llama: &LlamaModel, text: &str, limit: usize) -> Vec<LlamaToken> {
    let vocab = llama.vocab();
    let mut tokens = vocab.tokenize(text.as_bytes(), true, false);
    if tokens.len() > limit && limit > 0 {
        let last = tokens[tokens.len() - 1];
        let closing = last == vocab.sep() || last == vocab.eos();
        tokens.truncate(limit);
        if closing {
            tokens[limit - 1] = last;
        }
    }
    tokens
}

pub(crate) fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
    } else {
        v.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_normalised() {
        let v = normalized(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn bad_arguments_are_refused_before_loading() {
        assert!(embed(Path::new("/nonexistent.gguf"), &[], 1)
            .unwrap()
            .is_empty());
        let err = embed(Path::new("/nonexistent.gguf"), &["x"], 0).unwrap_err();
        assert!(matches!(err, EngineError::InvalidRequest { .. }));
        let err = embed(Path::new("/nonexistent.gguf"), &["x"], 1).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.gguf"), "{err}");
    }
}
