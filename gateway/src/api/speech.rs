//! `POST /v1/audio/speech`: OpenAI's text-to-speech API over the Piper voice.
//!
//! The input is synthesised sentence by sentence and every format is streamed as it is
//! produced: each sentence's audio is encoded and sent before the next one is spoken, and a
//! client that goes away stops the synthesis. `response_format` (default `mp3`, as OpenAI's):
//!
//! - `wav`: 16-bit mono at the voice's rate. Streamed, the header goes first with its RIFF and
//!   `data` sizes set to `0xFFFFFFFF` ("unknown", as ffmpeg writes to a pipe and as OpenAI's
//!   streamed WAV does); symphonia (our own `/v1/audio/transcriptions`), ffmpeg, libsndfile
//!   and Python's `wave` read such a file to its end (`wave`'s `getnframes()` then reports
//!   the placeholder, not the length). A one-sentence input is sent with exact sizes.
//! - `pcm`: raw s16le at 24 kHz (OpenAI's definition), no header.
//! - `mp3`: LAME, 64 kbit/s CBR, MP3 frames as they are completed.
//! - `opus`: Opus at 32 kbit/s in Ogg, one closed Ogg page per sentence.
//! - `flac`: 16-bit; streamed with STREAMINFO lengths "unknown" (0), one frame per 4096
//!   samples; a one-sentence input gets an exact STREAMINFO.
//! - `aac`: refused (400): no maintained encoder.
//!
//! `stream_format: "sse"` sends the same bytes base64-encoded in `speech.audio.delta` events
//! (one per sentence) and ends with `speech.audio.done`, whose usage counts the phoneme ids fed
//! to the voice model as `input_tokens` and 20 ms frames of produced audio as `output_tokens`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::Stream;
use serde::Deserialize;
use serde_json::Value;
use switchyard_engines::onnx::piper::{
    sentences, PiperVoice, SynthesisOptions, MAX_SPEED, MIN_SPEED,
};
use switchyard_media::{AudioFormat, StreamEncoder};
use switchyard_router::Endpoint;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::body_bytes;
use super::wire::parse_json;
use crate::error::ApiError;
use crate::pipeline::PipelineTrace;
use crate::state::AppState;

/// The one voice of the sample model.
pub const NATIVE_VOICE: &str = "joe";

/// OpenAI's voice names: accepted so that clients work unchanged, spoken by the native voice.
pub const OPENAI_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
    "shimmer", "verse",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpeechRequest {
    #[allow(dead_code)] // the router reads it from the raw body
    model: String,
    input: String,
    voice: Value,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f32>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    stream_format: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Value>,
}

/// Checks the voice: the native one, or an OpenAI name (spoken by the native voice).
pub(crate) fn check_voice(voice: &Value) -> Result<(), ApiError> {
    let name = match voice {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("id").and_then(Value::as_str).unwrap_or(""),
        _ => "",
    };
    if name == NATIVE_VOICE || OPENAI_VOICES.contains(&name) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        format!(
            "voice '{name}' is not available; use '{NATIVE_VOICE}' (OpenAI's names {} are accepted and spoken by it)",
            OPENAI_VOICES.join(", ")
        ),
        Some("voice"),
    ))
}

/// How the audio is sent (`stream_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamFormat {
    /// The encoded bytes as the response body.
    Audio,
    /// Server-sent events with base64 audio deltas and a final usage event.
    Sse,
}

/// The validated request.
struct Speech {
    sentences: Vec<String>,
    format: AudioFormat,
    speed: f32,
    stream: StreamFormat,
}

fn validate(request: &SpeechRequest, max_chars: usize) -> Result<Speech, ApiError> {
    if request.input.trim().is_empty() {
        return Err(ApiError::bad_request("'input' is empty", Some("input")));
    }
    let chars = request.input.chars().count();
    if chars > max_chars {
        return Err(ApiError::bad_request(
            format!("'input' has {chars} characters; at most {max_chars} on this server"),
            Some("input"),
        ));
    }
    check_voice(&request.voice)?;
    // OpenAI's default, so a client that names no format gets what it would get there.
    let format = AudioFormat::parse(request.response_format.as_deref().unwrap_or("mp3"))
        .ok()
        .filter(|f| f.is_supported())
        .ok_or_else(|| {
            ApiError::bad_request(
                format!(
                    "response_format '{}' is not supported here ({})",
                    request.response_format.as_deref().unwrap_or_default(),
                    AudioFormat::encodable_names()
                ),
                Some("response_format"),
            )
        })?;
    let speed = request.speed.unwrap_or(1.0);
    if !(MIN_SPEED..=MAX_SPEED).contains(&speed) {
        return Err(ApiError::bad_request(
            format!("'speed' must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}"),
            Some("speed"),
        ));
    }
    let stream = match request.stream_format.as_deref() {
        None | Some("audio") => StreamFormat::Audio,
        Some("sse") => StreamFormat::Sse,
        Some(other) => {
            return Err(ApiError::bad_request(
                format!("stream_format '{other}' is not one of audio, sse"),
                Some("stream_format"),
            ))
        }
    };
    if request
        .instructions
        .as_deref()
        .is_some_and(|i| !i.trim().is_empty())
    {
        tracing::debug!("speech 'instructions' ignored: the Piper voice has no style control");
    }
    Ok(Speech {
        sentences: sentences(&request.input),
        format,
        speed,
        stream,
    })
}

/// Speaks one sentence; `f` reads the samples where ONNX Runtime wrote them. Also returns the
/// number of phoneme ids the model was fed.
fn with_sentence<T>(
    voice: &PiperVoice,
    sentence: &str,
    speed: f32,
    f: impl FnOnce(&[f32]) -> Result<T, ApiError>,
) -> Result<(T, usize), ApiError> {
    let synthesis = voice
        .synthesize_with_stats(sentence, &SynthesisOptions { speed })
        .map_err(|e| {
            ApiError::bad_request(format!("cannot speak this input: {e}"), Some("input"))
        })?;
    let samples = synthesis
        .audio
        .as_slice::<f32>()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((f(samples)?, synthesis.phoneme_ids))
}

/// Synthesises every sentence into one buffer of samples.
pub(crate) fn speak_all(
    voice: &PiperVoice,
    sentences: &[String],
    speed: f32,
) -> Result<Vec<f32>, ApiError> {
    let mut all = Vec::new();
    for sentence in sentences {
        // Joining the sentences is the one copy of this pipeline; a whole file needs it.
        with_sentence(voice, sentence, speed, |samples| {
            all.extend_from_slice(samples);
            Ok(())
        })?;
    }
    Ok(all)
}

/// What the synthesis thread hands the response.
enum Produced {
    /// Encoded audio ready to send.
    Audio(Vec<u8>),
    /// All audio sent; `speech.audio.done`'s usage.
    Done(SpeechUsage),
    /// Synthesis or encoding failed.
    Failed(ApiError),
}

/// Usage of one synthesis (see the module documentation for what is counted).
#[derive(Debug, Clone, Copy, Default)]
struct SpeechUsage {
    /// Phoneme ids fed to the voice model (BOS/EOS and padding included).
    input_tokens: usize,
    /// 20 ms frames of audio produced.
    output_tokens: usize,
}

/// 20 ms frames in `samples` at `rate` (rounded up).
fn audio_frames(samples: usize, rate: u32) -> usize {
    let frame = (rate as usize / 50).max(1);
    samples.div_ceil(frame)
}

fn media_error(e: switchyard_media::MediaError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// Synthesises and encodes sentence by sentence, sending each piece as soon as it is ready.
/// `Ok(false)`: the client went away (the receiver was dropped) and synthesis stopped.
fn produce(
    voice: &PiperVoice,
    speech: &Speech,
    tx: &mpsc::Sender<Produced>,
) -> Result<bool, ApiError> {
    let rate = voice.sample_rate();
    let mut usage = SpeechUsage::default();
    let send =
        |bytes: Vec<u8>| bytes.is_empty() || tx.blocking_send(Produced::Audio(bytes)).is_ok();
    if let [only] = &speech.sentences[..] {
        // One sentence: one whole file, with exact lengths in its header.
        let (bytes, ids) = with_sentence(voice, only, speech.speed, |samples| {
            usage.output_tokens += audio_frames(samples.len(), rate);
            switchyard_media::audio::encode(samples, rate, speech.format).map_err(media_error)
        })?;
        usage.input_tokens += ids;
        if !send(bytes) {
            return Ok(false);
        }
    } else {
        let mut encoder = StreamEncoder::new(speech.format, rate).map_err(media_error)?;
        for sentence in &speech.sentences {
            let (bytes, ids) = with_sentence(voice, sentence, speech.speed, |samples| {
                usage.output_tokens += audio_frames(samples.len(), rate);
                encoder.push(samples).map_err(media_error)
            })?;
            usage.input_tokens += ids;
            if !send(bytes) {
                return Ok(false);
            }
        }
        if !send(encoder.finish().map_err(media_error)?) {
            return Ok(false);
        }
    }
    Ok(tx.blocking_send(Produced::Done(usage)).is_ok())
}

/// `POST /v1/audio/speech`.
pub(super) async fn speech(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_bytes(body, state.config.limits.max_body_bytes)?;
        let request: SpeechRequest = parse_json(&body)?;
        let speech = validate(&request, state.config.media.max_speech_chars)?;
        let decision = super::route::route_body(&state, Endpoint::AudioSpeech, &body, &headers).await?;
        let retry_after = state.config.limits.retry_after_seconds;
        let entry = super::model_entry(&state, &decision.model)?;
        let span = tracing::info_span!("speech", model = %decision.model, sentences = speech.sentences.len(), format = speech.format.name());
        let voice = state
            .services
            .tts(&entry.manifest)
            .instrument(span.clone())
            .await
            .map_err(|e| ApiError::from_engine(e, retry_after))?;
        let engine = voice.execution_provider().engine_label();
        let started = Instant::now();
        // The step ends when the last sentence is spoken and encoded.
        let record = {
            let state = Arc::clone(&state);
            let (model, pipeline) = (decision.model.clone(), decision.pipeline.clone());
            move || {
                let mut trace = PipelineTrace::new(&pipeline);
                trace.step("tts", &model, engine, started, None);
                trace.record(&state.metrics);
            }
        };
        let (format, stream_format) = (speech.format, speech.stream);
        let (tx, mut rx) = mpsc::channel::<Produced>(2);
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            match produce(&voice, &speech, &tx) {
                Ok(true) => record(),
                Ok(false) => tracing::debug!("speech client went away; synthesis stopped"),
                Err(e) => {
                    let _ = tx.blocking_send(Produced::Failed(e));
                }
            }
        });
        // The first piece decides the status: an input the voice cannot speak is still a 400.
        let first = match rx.recv().await {
            Some(Produced::Failed(e)) => return Err(e),
            Some(first) => first,
            None => return Err(ApiError::internal("speech task ended without audio")),
        };
        let mut response = match stream_format {
            StreamFormat::Audio => {
                let mut response = Body::from_stream(audio_body(first, rx)).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(format.content_type()),
                );
                response
            }
            StreamFormat::Sse => Sse::new(sse_events(first, rx)).into_response(),
        };
        super::add_route_header(&mut response, &decision, engine);
        Ok::<_, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The response body of `stream_format: "audio"`: the encoded bytes; a failure after the first
/// piece ends the body with an error (the client sees a broken transfer).
fn audio_body(
    first: Produced,
    mut rx: mpsc::Receiver<Produced>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    async_stream::stream! {
        let mut next = Some(first);
        while let Some(piece) = next.take() {
            match piece {
                Produced::Audio(bytes) => yield Ok(Bytes::from(bytes)),
                Produced::Done(_) => break,
                Produced::Failed(e) => {
                    yield Err(std::io::Error::other(e.body_json()));
                    break;
                }
            }
            next = rx.recv().await;
        }
    }
}

/// The events of `stream_format: "sse"`: `speech.audio.delta` per piece, then
/// `speech.audio.done` with usage (or an OpenAI error body if synthesis failed).
fn sse_events(
    first: Produced,
    mut rx: mpsc::Receiver<Produced>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let mut next = Some(first);
        while let Some(piece) = next.take() {
            let json = match piece {
                Produced::Audio(bytes) => serde_json::json!({
                    "type": "speech.audio.delta",
                    "audio": base64::engine::general_purpose::STANDARD.encode(bytes),
                }),
                Produced::Done(usage) => {
                    let done = serde_json::json!({
                        "type": "speech.audio.done",
                        "usage": {
                            "input_tokens": usage.input_tokens,
                            "output_tokens": usage.output_tokens,
                            "total_tokens": usage.input_tokens + usage.output_tokens,
                        },
                    });
                    yield Ok(Event::default().data(done.to_string()));
                    break;
                }
                Produced::Failed(e) => {
                    yield Ok(Event::default().data(e.body_json()));
                    break;
                }
            };
            yield Ok(Event::default().data(json.to_string()));
            next = rx.recv().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: serde_json::Value) -> SpeechRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn bad_requests_name_their_field() {
        let cases = [
            (
                serde_json::json!({"model": "auto", "input": " ", "voice": "joe"}),
                "input",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "bob"}),
                "voice",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "joe", "response_format": "aac"}),
                "response_format",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "joe", "speed": 9.0}),
                "speed",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "alloy", "stream_format": "bogus"}),
                "stream_format",
            ),
        ];
        for (body, param) in cases {
            let err = validate(&request(body), 4096).err().unwrap();
            assert!(
                err.body_json().contains(&format!("\"param\":\"{param}\"")),
                "{}",
                err.body_json()
            );
        }
        let too_long = request(serde_json::json!({"model": "auto", "input": "ab", "voice": "joe"}));
        assert!(validate(&too_long, 1).is_err());
        let ok = request(
            serde_json::json!({"model": "auto", "input": "Hi there. Bye now.", "voice": "alloy"}),
        );
        assert_eq!(validate(&ok, 4096).unwrap().sentences.len(), 2);
    }

    #[test]
    fn every_encodable_format_and_both_stream_formats_are_accepted() {
        for format in ["wav", "pcm", "mp3", "opus", "flac", "MP3"] {
            for (stream, expected) in [
                (None, StreamFormat::Audio),
                (Some("audio"), StreamFormat::Audio),
                (Some("sse"), StreamFormat::Sse),
            ] {
                let r = request(serde_json::json!({
                    "model": "auto", "input": "Hi.", "voice": "alloy",
                    "response_format": format, "stream_format": stream,
                }));
                let speech = validate(&r, 4096).unwrap();
                assert_eq!(speech.stream, expected);
                assert_eq!(speech.format.name(), format.to_ascii_lowercase());
            }
        }
        let aac = request(serde_json::json!({
            "model": "auto", "input": "Hi.", "voice": "alloy", "response_format": "aac",
        }));
        let body = validate(&aac, 4096).err().unwrap().body_json();
        assert!(
            body.contains(
                "response_format 'aac' is not supported here (wav, pcm, mp3, opus, flac)"
            ),
            "{body}"
        );
    }

    #[test]
    fn output_tokens_are_20_ms_frames() {
        assert_eq!(audio_frames(0, 22_050), 0);
        assert_eq!(audio_frames(441, 22_050), 1);
        assert_eq!(audio_frames(442, 22_050), 2);
        assert_eq!(audio_frames(22_050, 22_050), 50);
    }
}
