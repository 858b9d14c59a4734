//! llama.cpp's side of the MLX parity check: each prompt followed by a fixed continuation
//! text, tokenised by llama.cpp, and llama.cpp's teacher-forced top-1 next token at every
//! position. One model pass per sequence, so it stays quick on a busy CPU.

use std::path::Path;

use switchyard_core::EngineError;
use switchyard_engine_llamacpp::inspect;

/// One case: a prompt (already chat-formatted when wanted) and the text that follows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReferenceCase {
    /// Prompt text, tokenised with BOS as the GGUF asks and special tokens parsed.
    pub prompt: String,
    /// Continuation text, tokenised on its own (no BOS) and appended.
    pub continuation: String,
}

/// One case's reference.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ReferenceSequence {
    /// Prompt tokens followed by continuation tokens.
    pub tokens: Vec<i32>,
    /// How many of `tokens` are the prompt.
    pub prompt_tokens: usize,
    /// llama.cpp's top-1 next token after `tokens[..=i]`, for every `i` (teacher forcing).
    pub top1: Vec<i32>,
}

fn argmax(row: &[f32]) -> Option<i32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in row.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.and_then(|(i, _)| i32::try_from(i).ok())
}

/// Tokenises every case with llama.cpp and records its teacher-forced top-1 at every position.
pub fn llama_reference(
    model: &Path,
    cases: &[ReferenceCase],
    threads: i32,
) -> Result<Vec<ReferenceSequence>, EngineError> {
    let mut out = Vec::with_capacity(cases.len());
    for case in cases {
        let mut tokens = inspect::tokenize(model, &case.prompt, true)?;
        let prompt_tokens = tokens.len();
        tokens.extend(inspect::tokenize(model, &case.continuation, false)?);
        let rows = inspect::sequence_logits(model, &tokens, threads)?;
        let top1 = rows
            .iter()
            .map(|r| argmax(r).ok_or_else(|| EngineError::Inference("empty logits row".into())))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(ReferenceSequence {
            tokens,
            prompt_tokens,
            top1,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_largest() {
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), Some(1));
    }
}
