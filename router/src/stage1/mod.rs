//! Stage 1: heuristics over the typed request, no model and no I/O. Finds the modalities
//! (binary parts sniffed by content), estimates the prompt size, detects code and language,
//! validates hints, and decides obvious requests outright (early exit).

pub mod hints;
pub mod sniff;
pub mod text;

use serde::Serialize;

use crate::request::{Claimed, Endpoint, Part, RouteRequest};
pub use hints::{HintError, ParsedHints, Priority, SecurityLevel};
pub use sniff::{SniffError, Sniffed};
pub use text::{CodeSignal, Language};

/// Which modalities a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Modalities {
    /// Non-empty text present.
    pub text: bool,
    /// Number of image parts.
    pub images: usize,
    /// Number of audio parts.
    pub audio: usize,
}

/// A decision stage 1 can take alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EarlyExit {
    /// The pipeline (`stt`, `tts`, `embedding`, `ocr`, `stt-llm`).
    pub pipeline: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// Everything stage 1 found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Features {
    /// Modalities present.
    pub modalities: Modalities,
    /// What each binary part is.
    pub media: Vec<Sniffed>,
    /// Bytes of text.
    pub text_bytes: usize,
    /// Estimated prompt tokens.
    pub prompt_tokens: u32,
    /// Requested generation limit.
    pub max_tokens: Option<u32>,
    /// Code detection.
    pub code: CodeSignal,
    /// Language detection.
    pub language: Option<Language>,
    /// Validated hints.
    pub hints: ParsedHints,
    /// Set when stage 1 decided alone.
    pub early_exit: Option<EarlyExit>,
    /// Pipeline prefix forced by the inputs (`ocr` for images, `stt` for audio) that the
    /// text pipeline is appended to.
    pub input_steps: Vec<&'static str>,
}

/// Why a request cannot be routed at all (the gateway answers 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage1Error {
    /// No text and no media.
    NoContent,
    /// A binary part is not what it claims, or nothing known.
    Media {
        /// Where it was in the request.
        field: String,
        /// What is wrong.
        error: SniffError,
    },
    /// A hint has an unknown value.
    Hint(HintError),
}

impl std::fmt::Display for Stage1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = |c: &Claimed| match c {
            Claimed::Image => "image",
            Claimed::Audio => "audio",
        };
        match self {
            Stage1Error::NoContent => write!(f, "the request has no content: send text, an image or audio"),
            Stage1Error::Media { field, error } => match error {
                SniffError::Empty => write!(f, "{field}: the data is empty"),
                SniffError::Unknown => write!(
                    f,
                    "{field}: the data is not a recognised format (images: png, jpeg, webp, gif, bmp; audio: wav, mp3, flac, ogg, m4a)"
                ),
                SniffError::Mismatch { claimed, actual } => write!(
                    f,
                    "{field}: sent as {} but the data is {} ({})",
                    kind(claimed),
                    kind(&actual.kind),
                    actual.format
                ),
            },
            Stage1Error::Hint(h) => write!(
                f,
                "unknown {} hint '{}': expected {}",
                h.hint, h.value, h.expected
            ),
        }
    }
}

/// Runs stage 1.
pub fn run(request: &RouteRequest) -> Result<Features, Stage1Error> {
    let hints = hints::parse(&request.hints).map_err(Stage1Error::Hint)?;
    let mut modalities = Modalities::default();
    let mut media = Vec::new();
    let mut text_bytes = 0;
    let mut prompt_tokens = 0u32;
    for part in &request.parts {
        match part {
            Part::Text(t) => {
                if !t.trim().is_empty() {
                    modalities.text = true;
                }
                text_bytes += t.len();
                prompt_tokens = prompt_tokens.saturating_add(text::estimate_tokens(t));
            }
            Part::Bytes {
                claimed,
                data,
                field,
            } => {
                let sniffed = sniff::check(*claimed, data).map_err(|error| Stage1Error::Media {
                    field: field.clone(),
                    error,
                })?;
                match sniffed.kind {
                    Claimed::Image => modalities.images += 1,
                    Claimed::Audio => modalities.audio += 1,
                }
                media.push(sniffed);
            }
        }
    }
    let text_only_endpoint = matches!(
        request.endpoint,
        Endpoint::AudioSpeech
            | Endpoint::Embeddings
            | Endpoint::Completions
            | Endpoint::ChatCompletions
    );
    if !modalities.text && media.is_empty() && text_only_endpoint {
        return Err(Stage1Error::NoContent);
    }
    // Code and language look at the longest text part's prefix (bounded work).
    let analysed = request
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            Part::Bytes { .. } => None,
        })
        .max_by_key(|t| t.len())
        .unwrap_or("");
    let code = text::code_signal(analysed);
    let language = if modalities.text {
        text::language(analysed)
    } else {
        None
    };
    let mut input_steps = Vec::new();
    if modalities.images > 0 {
        input_steps.push("ocr");
    }
    if modalities.audio > 0 {
        input_steps.push("stt");
    }
    let early_exit = match request.endpoint {
        Endpoint::AudioTranscriptions => Some(EarlyExit {
            pipeline: "stt",
            reason: "transcription endpoint",
        }),
        Endpoint::AudioSpeech => Some(EarlyExit {
            pipeline: "tts",
            reason: "speech endpoint",
        }),
        Endpoint::Embeddings => Some(EarlyExit {
            pipeline: "embedding",
            reason: "embeddings endpoint",
        }),
        Endpoint::ImagesOcr => Some(EarlyExit {
            pipeline: "ocr",
            reason: "OCR endpoint",
        }),
        Endpoint::ChatCompletions | Endpoint::Completions
            if !modalities.text && modalities.audio > 0 && modalities.images == 0 =>
        {
            Some(EarlyExit {
                pipeline: "stt-llm",
                reason: "audio only: transcribe, then answer",
            })
        }
        Endpoint::ChatCompletions | Endpoint::Completions
            if !modalities.text && modalities.images > 0 && modalities.audio == 0 =>
        {
            Some(EarlyExit {
                pipeline: "ocr-llm",
                reason: "image only: read it, then answer",
            })
        }
        _ => None,
    };
    Ok(Features {
        modalities,
        media,
        text_bytes,
        prompt_tokens,
        max_tokens: request.max_tokens,
        code,
        language,
        hints,
        early_exit,
        input_steps,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::request::Hints;

    fn bytes(claimed: Claimed, data: &[u8]) -> Part {
        Part::Bytes {
            claimed,
            data: Arc::from(data),
            field: "messages[0].content[1]".into(),
        }
    }

    fn req(endpoint: Endpoint, parts: Vec<Part>) -> RouteRequest {
        RouteRequest {
            endpoint,
            model: "auto".into(),
            parts,
            max_tokens: Some(64),
            hints: Hints::default(),
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0";

    #[test]
    fn text_request_features() {
        let f = run(&req(
            Endpoint::ChatCompletions,
            vec![Part::Text(
                "Write a Rust function:\n```rust\nfn a() {}\n```".into(),
            )],
        ))
        .unwrap();
        assert!(f.modalities.text && f.code.present);
        assert!(f.prompt_tokens > 5);
        assert_eq!(f.early_exit, None);
        assert_eq!(f.max_tokens, Some(64));
    }

    #[test]
    fn audio_only_chat_exits_early_and_image_adds_ocr() {
        let f = run(&req(
            Endpoint::ChatCompletions,
            vec![bytes(Claimed::Audio, WAV)],
        ))
        .unwrap();
        assert_eq!(f.early_exit.unwrap().pipeline, "stt-llm");
        let f = run(&req(
            Endpoint::ChatCompletions,
            vec![
                Part::Text("what does it say?".into()),
                bytes(Claimed::Image, PNG),
            ],
        ))
        .unwrap();
        assert_eq!(f.input_steps, vec!["ocr"]);
        assert_eq!(f.early_exit, None);
        assert_eq!(f.media[0].format, "png");
    }

    #[test]
    fn endpoints_exit_early() {
        let f = run(&req(
            Endpoint::AudioTranscriptions,
            vec![bytes(Claimed::Audio, WAV)],
        ))
        .unwrap();
        assert_eq!(f.early_exit.unwrap().pipeline, "stt");
        let f = run(&req(
            Endpoint::AudioSpeech,
            vec![Part::Text("hello".into())],
        ))
        .unwrap();
        assert_eq!(f.early_exit.unwrap().pipeline, "tts");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        assert_eq!(
            run(&req(
                Endpoint::ChatCompletions,
                vec![Part::Text("  ".into())]
            )),
            Err(Stage1Error::NoContent)
        );
        assert_eq!(
            run(&req(Endpoint::ChatCompletions, vec![])),
            Err(Stage1Error::NoContent)
        );
        let e = run(&req(
            Endpoint::ChatCompletions,
            vec![bytes(Claimed::Image, WAV)],
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "messages[0].content[1]: sent as image but the data is audio (wav)"
        );
        let e = run(&req(
            Endpoint::ChatCompletions,
            vec![bytes(Claimed::Image, b"garbage bytes here")],
        ))
        .unwrap_err();
        assert!(e.to_string().contains("not a recognised format"));
        let mut r = req(Endpoint::ChatCompletions, vec![Part::Text("hi".into())]);
        r.hints.security = Some("top-secret".into());
        assert_eq!(
            run(&r).unwrap_err().to_string(),
            "unknown security hint 'top-secret': expected public, internal or airgap"
        );
    }

    #[test]
    fn giant_text_is_bounded_work() {
        let giant = "lorem ipsum dolor sit amet ".repeat(40_000);
        let started = std::time::Instant::now();
        let f = run(&req(Endpoint::ChatCompletions, vec![Part::Text(giant)])).unwrap();
        assert!(f.prompt_tokens > 200_000);
        // Generous bound: the analysis only looks at a prefix.
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
    }
}
