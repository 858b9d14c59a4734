//! Offline inspection of a GGUF model through llama.cpp: tokenisation with the model's own
//! vocabulary and teacher-forced logits at every position of a token sequence.
//!
//! These are reference tools for converters and parity tests, not a serving path: each call
//! loads the model, builds one context sized for the request and drops both on return.

use std::num::NonZeroU32;
use std::path::Path;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use switchyard_core::EngineError;

use crate::backend;

/// Tokens decoded per `llama_decode` call by [`sequence_logits`].
const CHUNK: usize = 512;

fn load(model: &Path, vocab_only: bool) -> Result<LlamaModel, EngineError> {
    let backend = backend()?;
    let params = LlamaModelParams::default().with_vocab_only(vocab_only);
    LlamaModel::load_from_file(backend, model, &params)
        .map_err(|e| EngineError::Load(format!("{}: {e}", model.display())))
}

/// Token ids for `text` with the model's own vocabulary (`add_bos` as llama.cpp decides when true).
///
/// With `add_bos`, llama.cpp adds the BOS token only when the GGUF asks for it
/// (`tokenizer.ggml.add_bos_token`). Special-token text in `text` (e.g. `<|im_start|>`) is
/// parsed as the special token, as it is for rendered chat prompts. Only the vocabulary is
/// loaded, not the weights.
pub fn tokenize(model: &Path, text: &str, add_bos: bool) -> Result<Vec<i32>, EngineError> {
    let llama = load(model, true)?;
    let vocab = llama.vocab();
    let add_special = add_bos && vocab.should_add_bos();
    Ok(vocab
        .tokenize(text.as_bytes(), add_special, true)
        .into_iter()
        .map(|t| t.0)
        .collect())
}

/// Logits at every position of `tokens` (teacher forcing): row i is the distribution after tokens[..=i]. `threads` is the llama.cpp thread count.
///
/// Every row has the model's vocabulary size. Token ids outside the vocabulary, an empty
/// sequence, a sequence longer than the model's training context and `threads < 1` are
/// refused with [`EngineError::InvalidRequest`].
pub fn sequence_logits(
    model: &Path,
    tokens: &[i32],
    threads: i32,
) -> Result<Vec<Vec<f32>>, EngineError> {
    if tokens.is_empty() {
        return Err(EngineError::invalid(
            "no tokens to evaluate",
            Some("tokens"),
        ));
    }
    if threads < 1 {
        return Err(EngineError::invalid(
            format!("threads must be at least 1, got {threads}"),
            Some("threads"),
        ));
    }
    let llama = load(model, false)?;
    let n_vocab = llama.vocab().n_tokens();
    if let Some((at, bad)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &t)| t < 0 || t >= n_vocab)
    {
        return Err(EngineError::invalid(
            format!(
                "token {bad} at position {at} is outside the vocabulary of {} ({n_vocab} tokens)",
                model.display()
            ),
            Some("tokens"),
        ));
    }
    let n_ctx_train = usize::try_from(llama.n_ctx_train()).unwrap_or(usize::MAX);
    if tokens.len() > n_ctx_train {
        return Err(EngineError::invalid(
            format!(
                "{} tokens exceed the training context of {} ({n_ctx_train})",
                tokens.len(),
                model.display()
            ),
            Some("tokens"),
        ));
    }
    let too_long = || EngineError::invalid("token sequence too long", Some("tokens"));
    let n_ctx = u32::try_from(tokens.len()).map_err(|_| too_long())?;
    let chunk = tokens.len().min(CHUNK);
    let chunk_u32 = u32::try_from(chunk).map_err(|_| too_long())?;
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx.max(16)))
        .with_n_batch(chunk_u32)
        .with_n_ubatch(chunk_u32)
        .with_n_seq_max(1)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = llama
        .new_context(backend()?, params)
        .map_err(|e| EngineError::Load(format!("cannot create context: {e}")))?;

    let mut rows = Vec::with_capacity(tokens.len());
    let mut batch = LlamaBatch::new(chunk, 1);
    for (chunk_index, part) in tokens.chunks(chunk).enumerate() {
        batch.clear();
        for (offset, &token) in part.iter().enumerate() {
            let pos = i32::try_from(chunk_index * chunk + offset).map_err(|_| too_long())?;
            batch
                .add(LlamaToken(token), pos, &[0], true)
                .map_err(|e| EngineError::Inference(format!("batch: {e}")))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| EngineError::Inference(format!("decode failed: {e}")))?;
        for offset in 0..part.len() {
            let index = i32::try_from(offset).map_err(|_| too_long())?;
            rows.push(ctx.get_logits_ith(index).to_vec());
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of the largest value (the greedy token of a logits row); `None` when empty.
    fn argmax(row: &[f32]) -> Option<usize> {
        row.iter()
            .enumerate()
            .fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((i, v)),
            })
            .map(|(i, _)| i)
    }

    #[test]
    fn argmax_picks_first_maximum() {
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.5, 2.0, -1.0, 2.0]), Some(1));
    }

    #[test]
    fn missing_model_is_a_load_error_naming_the_file() {
        let err = tokenize(Path::new("/nonexistent/model.gguf"), "hi", true).unwrap_err();
        assert!(matches!(err, EngineError::Load(ref m) if m.contains("/nonexistent/model.gguf")));
        let err = sequence_logits(Path::new("/nonexistent/model.gguf"), &[], 1).unwrap_err();
        assert!(matches!(err, EngineError::InvalidRequest { .. }));
    }

    fn smollm2() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("SWITCHYARD_MODELS_DIR")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))?;
        let path = dir
            .join("smollm2-135m-instruct")
            .join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if path.is_file() {
            return Some(path);
        }
        let message = format!(
            "{} not found (run `switchyard models fetch`)",
            path.display()
        );
        assert!(std::env::var_os("CI").is_none(), "FAILED {message}");
        eprintln!("SKIPPED {message}");
        None
    }

    #[test]
    fn teacher_forced_rows_match_incremental_prefixes() {
        let Some(model) = smollm2() else { return };
        let tokens = tokenize(&model, "The capital of France is", true).unwrap();
        assert!(tokens.len() >= 4, "{tokens:?}");
        let special = tokenize(&model, "<|im_start|>user", false).unwrap();
        assert_eq!(
            special.len(),
            2,
            "special token text parses as one token: {special:?}"
        );

        let rows = sequence_logits(&model, &tokens, 2).unwrap();
        assert_eq!(rows.len(), tokens.len());
        assert!(rows
            .iter()
            .all(|r| r.len() == rows[0].len() && r.len() > 40_000));
        // Row i only sees tokens[..=i]: the logits of a shorter prefix agree with it.
        let prefix = sequence_logits(&model, &tokens[..3], 2).unwrap();
        let max_diff = prefix[2]
            .iter()
            .zip(&rows[2])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-2, "prefix logits differ by {max_diff}");
        let next = argmax(&rows[tokens.len() - 1]).unwrap();
        let paris = tokenize(&model, " Paris", false).unwrap();
        assert_eq!(i32::try_from(next).unwrap(), paris[0]);

        let err = sequence_logits(&model, &[0, 1_000_000], 1).unwrap_err();
        assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    }
}
