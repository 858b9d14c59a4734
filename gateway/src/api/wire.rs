//! OpenAI wire types for chat completions, completions and models, and their validation into
//! the core's typed request.

use serde::{Deserialize, Serialize};
use switchyard_core::{ChatMessage, SamplingParams};

use crate::config::LimitsSection;
use crate::error::ApiError;

/// `stop`: one string or up to four.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with token usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// A content part of a message.
#[derive(Debug, Deserialize)]
pub struct ContentPart {
    /// `text`, `image_url`, `input_audio`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    pub text: Option<String>,
    /// `image_url` parts: `{"url": "data:image/png;base64,...", "detail": ...}`.
    pub image_url: Option<serde_json::Value>,
    /// `input_audio` parts: `{"data": "<base64>", "format": "wav"}`.
    pub input_audio: Option<serde_json::Value>,
}

/// Message content: a string or a list of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<ContentPart>),
}

/// One request message.
#[derive(Debug, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The content (may be null for assistant tool calls).
    pub content: Option<MessageContent>,
}

/// Sampling fields shared by chat completions and completions. Parsed from the same body as
/// the request (not `#[serde(flatten)]`ed, which would lose the field names in errors).
#[derive(Debug, Deserialize)]
pub struct SamplingFields {
    /// 0–2; 0 is greedy.
    pub temperature: Option<f32>,
    /// 0–1.
    pub top_p: Option<f32>,
    /// llama.cpp extension: keep the k most likely tokens (0 = off).
    pub top_k: Option<i32>,
    /// llama.cpp extension: 0–1.
    pub min_p: Option<f32>,
    /// Seed for reproducible sampling.
    pub seed: Option<i64>,
    /// Stop sequences.
    pub stop: Option<Stop>,
    /// Generation limit.
    pub max_tokens: Option<u32>,
    /// Newer name of `max_tokens` (chat).
    pub max_completion_tokens: Option<u32>,
    /// −2..2.
    pub presence_penalty: Option<f32>,
    /// −2..2.
    pub frequency_penalty: Option<f32>,
    /// Number of choices; only 1 is supported.
    pub n: Option<u32>,
    /// Whether to stream.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
    /// Log probabilities (not supported yet).
    pub logprobs: Option<serde_json::Value>,
    /// Token biases (not supported yet).
    pub logit_bias: Option<serde_json::Value>,
    /// Output format; only `{"type": "text"}` is supported so far.
    pub response_format: Option<serde_json::Value>,
}

/// `POST /v1/chat/completions` body.
#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model id, or `auto`.
    pub model: String,
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Tools (not supported yet).
    pub tools: Option<serde_json::Value>,
    /// Output modalities (`["text"]`, `["text", "audio"]`).
    pub modalities: Option<Vec<String>>,
    /// Spoken-answer settings (`{"voice", "format"}`) when `modalities` has `audio`.
    pub audio: Option<serde_json::Value>,
}

/// `prompt` of the completions API.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CompletionPrompt {
    /// One prompt.
    One(String),
    /// A batch of prompts (only one is supported).
    Many(Vec<String>),
}

/// `POST /v1/completions` body.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// Model id, or `auto`.
    pub model: String,
    /// The text to continue.
    pub prompt: CompletionPrompt,
    /// Echo the prompt before the completion.
    #[serde(default)]
    pub echo: bool,
    /// Text after the completion (not supported).
    pub suffix: Option<String>,
}

/// Parses a JSON body into `T`, naming the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(
                format!("We could not parse the JSON body of your request: {inner}"),
                None,
            )
        } else {
            let param = (path != ".").then_some(path.as_str());
            ApiError::bad_request(
                match param {
                    Some(p) => format!("Invalid value for '{p}': {inner}"),
                    None => format!("Invalid request body: {inner}"),
                },
                param,
            )
        }
    })?;
    de.end().map_err(|e| {
        ApiError::bad_request(format!("Trailing data after the JSON body: {e}"), None)
    })?;
    Ok(value)
}

/// `null`, `[]` and `{}` ask for nothing.
fn is_empty_json(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn in_range(value: Option<f32>, lo: f32, hi: f32, name: &str) -> Result<(), ApiError> {
    match value {
        Some(v) if !(lo..=hi).contains(&v) || v.is_nan() => Err(ApiError::bad_request(
            format!("'{name}' must be between {lo} and {hi}, got {v}"),
            Some(name),
        )),
        _ => Ok(()),
    }
}

impl SamplingFields {
    /// Whether the client asked for a stream.
    pub fn streaming(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    /// Whether the final stream chunk should carry usage.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// Validates and converts to the engine's sampling parameters.
    pub fn to_params(&self, limits: &LimitsSection) -> Result<SamplingParams, ApiError> {
        in_range(self.temperature, 0.0, 2.0, "temperature")?;
        in_range(self.top_p, 0.0, 1.0, "top_p")?;
        in_range(self.min_p, 0.0, 1.0, "min_p")?;
        in_range(self.presence_penalty, -2.0, 2.0, "presence_penalty")?;
        in_range(self.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
        if let Some(k) = self.top_k.filter(|k| *k < 0) {
            return Err(ApiError::bad_request(
                format!("'top_k' must be 0 or more, got {k}"),
                Some("top_k"),
            ));
        }
        if let Some(n) = self.n.filter(|n| *n != 1) {
            return Err(ApiError::bad_request(
                format!("only n=1 is supported, got n={n}"),
                Some("n"),
            ));
        }
        if self
            .logprobs
            .as_ref()
            .is_some_and(|v| !matches!(v, serde_json::Value::Bool(false) | serde_json::Value::Null))
        {
            return Err(ApiError::bad_request(
                "logprobs are not supported yet",
                Some("logprobs"),
            ));
        }
        if self.logit_bias.as_ref().is_some_and(|v| !is_empty_json(v)) {
            return Err(ApiError::bad_request(
                "logit_bias is not supported yet",
                Some("logit_bias"),
            ));
        }
        if let Some(format) = self.response_format.as_ref().filter(|v| !v.is_null()) {
            if format.get("type").and_then(|t| t.as_str()) != Some("text") {
                return Err(ApiError::bad_request(
                    "only response_format {\"type\": \"text\"} is supported yet (no JSON mode or schemas)",
                    Some("response_format"),
                ));
            }
        }
        let (max_tokens, param) = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) => (m, "max_completion_tokens"),
            (None, Some(m)) => (m, "max_tokens"),
            (None, None) => (limits.default_max_tokens, "max_tokens"),
        };
        if max_tokens == 0 || max_tokens > limits.max_tokens_cap {
            return Err(ApiError::bad_request(
                format!(
                    "'{param}' must be between 1 and {} on this server, got {max_tokens}",
                    limits.max_tokens_cap
                ),
                Some(param),
            ));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 4 {
            return Err(ApiError::bad_request(
                format!("'stop' may hold at most 4 sequences, got {}", stop.len()),
                Some("stop"),
            ));
        }
        // llama.cpp seeds are 32-bit; fold larger ones deterministically.
        let seed = self.seed.map(|s| (s as u64 % u64::from(u32::MAX)) as u32);
        Ok(SamplingParams {
            temperature: self.temperature.unwrap_or(1.0),
            top_p: self.top_p.unwrap_or(1.0),
            top_k: self.top_k.unwrap_or(0),
            min_p: self.min_p.unwrap_or(0.0),
            seed,
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            stop,
            max_tokens,
        })
    }
}

impl ChatCompletionRequest {
    /// Flattens the messages into plain-text chat messages. Image and audio parts are taken
    /// out into `media`, each leaving a [`super::chat_media::placeholder`] where it stood, for
    /// the pipeline's OCR or speech-to-text text to replace.
    pub fn chat_messages(
        &self,
        media: &mut Vec<super::chat_media::MediaPart>,
        remote: &super::remote_image::RemoteImages,
    ) -> Result<Vec<ChatMessage>, ApiError> {
        if self.messages.is_empty() {
            return Err(ApiError::bad_request(
                "'messages' must not be empty",
                Some("messages"),
            ));
        }
        if self.tools.as_ref().is_some_and(|t| !is_empty_json(t)) {
            return Err(ApiError::bad_request(
                "tools are not supported yet",
                Some("tools"),
            ));
        }
        self.messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = match m.role.as_str() {
                    "system" | "developer" => "system",
                    "user" => "user",
                    "assistant" => "assistant",
                    "tool" => "tool",
                    other => {
                        return Err(ApiError::bad_request(
                            format!("messages[{i}].role '{other}' is not one of system, developer, user, assistant, tool"),
                            Some(&format!("messages[{i}].role")),
                        ))
                    }
                };
                let content = match &m.content {
                    None => String::new(),
                    Some(MessageContent::Text(t)) => t.clone(),
                    Some(MessageContent::Parts(parts)) => {
                        let mut text = String::new();
                        for (j, part) in parts.iter().enumerate() {
                            match (part.kind.as_str(), &part.text) {
                                ("text", Some(t)) => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(t);
                                }
                                ("text", None) => {
                                    return Err(ApiError::bad_request(
                                        format!("messages[{i}].content[{j}] is a text part without 'text'"),
                                        Some(&format!("messages[{i}].content[{j}].text")),
                                    ))
                                }
                                ("image_url" | "input_audio", _) => {
                                    let param = format!("messages[{i}].content[{j}]");
                                    let part = super::chat_media::MediaPart::from_wire(part, &param, remote)?;
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(&super::chat_media::placeholder(media.len()));
                                    media.push(part);
                                }
                                (kind, _) => {
                                    return Err(ApiError::bad_request(
                                        format!("content parts of type '{kind}' are not supported (text, image_url, input_audio)"),
                                        Some(&format!("messages[{i}].content[{j}].type")),
                                    ))
                                }
                            }
                        }
                        text
                    }
                };
                Ok(ChatMessage {
                    role: role.to_owned(),
                    content,
                })
            })
            .collect()
    }
}

impl CompletionRequest {
    /// The single prompt string.
    pub fn prompt_text(&self) -> Result<String, ApiError> {
        if self.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::bad_request(
                "'suffix' is not supported",
                Some("suffix"),
            ));
        }
        match &self.prompt {
            CompletionPrompt::One(p) => Ok(p.clone()),
            CompletionPrompt::Many(v) if v.len() == 1 => Ok(v[0].clone()),
            CompletionPrompt::Many(v) => Err(ApiError::bad_request(
                format!("only one prompt per request is supported, got {}", v.len()),
                Some("prompt"),
            )),
        }
    }
}

/// Token usage (OpenAI's `CompletionUsage`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UsageBody {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Sum of both.
    pub total_tokens: u32,
}

impl From<switchyard_core::Usage> for UsageBody {
    fn from(u: switchyard_core::Usage) -> Self {
        UsageBody {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
        }
    }
}

/// The assistant message of a chat completion.
#[derive(Debug, Serialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The generated text.
    pub content: String,
    /// Always null (no refusals here).
    pub refusal: Option<String>,
    /// Spoken answer (`modalities: ["text", "audio"]`): `{id, data, expires_at, transcript}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<serde_json::Value>,
}

/// One choice of a chat completion.
#[derive(Debug, Serialize)]
pub struct ChatChoice {
    /// 0.
    pub index: u32,
    /// The message.
    pub message: ResponseMessage,
    /// Always null.
    pub logprobs: Option<()>,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
}

/// `chat.completion`.
#[derive(Debug, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Model id.
    pub model: String,
    /// Identifies the serving configuration.
    pub system_fingerprint: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Token usage.
    pub usage: UsageBody,
    /// Switchyard's pipeline trace, when the request ran more than the LLM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switchyard: Option<serde_json::Value>,
}

/// The delta of a stream chunk.
#[derive(Debug, Serialize)]
pub struct Delta {
    /// `assistant` on the first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// Text delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a stream chunk.
#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    /// 0.
    pub index: u32,
    /// The delta.
    pub delta: Delta,
    /// Always null.
    pub logprobs: Option<()>,
    /// Set on the last content chunk.
    pub finish_reason: Option<&'static str>,
}

/// `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub struct ChatCompletionChunk {
    /// Same id on every chunk of a stream.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Model id.
    pub model: String,
    /// Identifies the serving configuration.
    pub system_fingerprint: String,
    /// Zero (usage chunk) or one choice.
    pub choices: Vec<ChunkChoice>,
    /// Null, except on the usage chunk when `include_usage` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageBody>>,
}

/// One choice of a text completion.
#[derive(Debug, Serialize)]
pub struct CompletionChoice {
    /// The text.
    pub text: String,
    /// 0.
    pub index: u32,
    /// Always null.
    pub logprobs: Option<()>,
    /// `stop` or `length` (null on intermediate stream chunks).
    pub finish_reason: Option<&'static str>,
}

/// `text_completion`.
#[derive(Debug, Serialize)]
pub struct Completion {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// Model id.
    pub model: String,
    /// Identifies the serving configuration.
    pub system_fingerprint: String,
    /// Zero (usage chunk) or one choice.
    pub choices: Vec<CompletionChoice>,
    /// Usage (null on intermediate stream chunks with include_usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<UsageBody>>,
}

/// An entry of `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelObject {
    /// Model id.
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// `switchyard`.
    pub owned_by: &'static str,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    /// `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<ModelObject>,
}
