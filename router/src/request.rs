//! What the router sees of a request: its endpoint, its parts (text and raw bytes), limits and
//! hints. The gateway builds it from the wire format; nothing here knows HTTP.

use std::sync::Arc;

use serde::Serialize;

/// The API endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// `POST /v1/audio/transcriptions`.
    AudioTranscriptions,
    /// `POST /v1/audio/speech`.
    AudioSpeech,
    /// `POST /v1/images/ocr`.
    ImagesOcr,
}

impl Endpoint {
    /// Parses an endpoint path (`/v1/chat/completions`).
    pub fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path.trim_end_matches('/') {
            "/v1/chat/completions" => Endpoint::ChatCompletions,
            "/v1/completions" => Endpoint::Completions,
            "/v1/embeddings" => Endpoint::Embeddings,
            "/v1/audio/transcriptions" => Endpoint::AudioTranscriptions,
            "/v1/audio/speech" => Endpoint::AudioSpeech,
            "/v1/images/ocr" => Endpoint::ImagesOcr,
            _ => return None,
        })
    }

    /// The path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Embeddings => "/v1/embeddings",
            Endpoint::AudioTranscriptions => "/v1/audio/transcriptions",
            Endpoint::AudioSpeech => "/v1/audio/speech",
            Endpoint::ImagesOcr => "/v1/images/ocr",
        }
    }
}

/// What a binary part claims to be (from its field: `image_url`, `input_audio`, `file`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Claimed {
    /// Sent as an image.
    Image,
    /// Sent as audio.
    Audio,
}

/// One part of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Text.
    Text(String),
    /// Raw bytes that claim to be an image or audio; the router sniffs what they really are.
    Bytes {
        /// What the client said they are.
        claimed: Claimed,
        /// The bytes (shared, never copied by the router).
        data: Arc<[u8]>,
        /// Where in the request they came from (`messages[0].content[1]`), for errors.
        field: String,
    },
}

/// Routing hints as the client sent them (raw strings; stage 1 validates them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// `public`, `internal` or `airgap`.
    pub security: Option<String>,
    /// `low`, `normal` or `high`.
    pub priority: Option<String>,
    /// Latency target in milliseconds.
    pub slo_ms: Option<String>,
}

/// A request as the router sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The `model` field (`auto` lets the router choose).
    pub model: String,
    /// Text and binary parts, in order.
    pub parts: Vec<Part>,
    /// The requested generation limit, if any.
    pub max_tokens: Option<u32>,
    /// Routing hints.
    pub hints: Hints,
}

impl RouteRequest {
    /// A text-only request (tests, simple callers).
    pub fn text(endpoint: Endpoint, model: &str, text: &str) -> RouteRequest {
        RouteRequest {
            endpoint,
            model: model.to_owned(),
            parts: vec![Part::Text(text.to_owned())],
            max_tokens: None,
            hints: Hints::default(),
        }
    }

    /// All text parts joined with newlines.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            if let Part::Text(t) = part {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(t);
            }
        }
        out
    }
}
