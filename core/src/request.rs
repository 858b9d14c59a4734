//! Typed generation requests, independent of any wire format.

use serde::{Deserialize, Serialize};

/// One message of a chat conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text content (multi-part content has been flattened by the caller).
    pub content: String,
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A conversation, rendered with the model's own chat template.
    Chat(Vec<ChatMessage>),
    /// Raw text, tokenized as is (the completions API).
    Text(String),
}

/// Sampling parameters (OpenAI's names, plus llama.cpp's `top_k` and `min_p`).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` means greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling mass; `1` disables it.
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables it.
    pub top_k: i32,
    /// Drop tokens whose probability is below `min_p` × the top token's; `0` disables it.
    pub min_p: f32,
    /// Random seed, for reproducible sampling.
    pub seed: Option<u32>,
    /// Penalty for tokens already present (OpenAI semantics, −2..2).
    pub presence_penalty: f32,
    /// Penalty proportional to how often a token appeared (OpenAI semantics, −2..2).
    pub frequency_penalty: f32,
    /// Generation stops before any of these strings; they are not returned.
    pub stop: Vec<String>,
    /// Upper bound on generated tokens.
    pub max_tokens: u32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            seed: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            stop: Vec::new(),
            max_tokens: 256,
        }
    }
}

impl SamplingParams {
    /// True when decoding should pick the most likely token every step.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// A request to generate text from a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// What to continue.
    pub prompt: Prompt,
    /// How to sample.
    pub sampling: SamplingParams,
}

/// Why a generation ended (OpenAI's `finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end-of-generation token or hit a stop sequence.
    Stop,
    /// `max_tokens` or the context size was reached.
    Length,
    /// The caller cancelled (client disconnected); never sent to a client.
    Cancelled,
}

impl FinishReason {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// Token accounting for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt (after templating).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}
