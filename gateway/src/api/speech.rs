//! `POST /v1/audio/speech`: OpenAI's text-to-speech API over the Piper voice.
//!
//! The input is synthesised sentence by sentence. `pcm` (24 kHz s16le, OpenAI's definition)
//! streams each sentence's audio as soon as it is made; `wav` is sent whole once the last
//! sentence is done, so that its header carries the true length every decoder expects.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use switchyard_engine_onnx::piper::{
    sentences, PiperVoice, SynthesisOptions, MAX_SPEED, MIN_SPEED,
};
use switchyard_media::AudioFormat;
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

/// The validated request.
struct Speech {
    sentences: Vec<String>,
    format: AudioFormat,
    speed: f32,
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
    let format = AudioFormat::parse(request.response_format.as_deref().unwrap_or("wav"))
        .ok()
        .filter(|f| f.is_supported())
        .ok_or_else(|| {
            ApiError::bad_request(
                format!(
                    "response_format '{}' is not supported here (wav, pcm)",
                    request.response_format.as_deref().unwrap_or_default()
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
    if request
        .stream_format
        .as_deref()
        .is_some_and(|f| f != "audio")
    {
        return Err(ApiError::bad_request(
            "stream_format 'sse' is not supported; audio is streamed as raw bytes (pcm)",
            Some("stream_format"),
        ));
    }
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
    })
}

/// Speaks one sentence; `f` reads the samples where ONNX Runtime wrote them.
fn with_sentence<T>(
    voice: &PiperVoice,
    sentence: &str,
    speed: f32,
    f: impl FnOnce(&[f32]) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let audio = voice
        .synthesize(sentence, &SynthesisOptions { speed })
        .map_err(|e| {
            ApiError::bad_request(format!("cannot speak this input: {e}"), Some("input"))
        })?;
    f(audio
        .as_slice::<f32>()
        .map_err(|e| ApiError::internal(e.to_string()))?)
}

/// Synthesises one sentence and encodes it.
fn speak(voice: &PiperVoice, sentence: &str, speech: &Speech) -> Result<Vec<u8>, ApiError> {
    with_sentence(voice, sentence, speech.speed, |samples| {
        switchyard_media::audio::encode(samples, voice.sample_rate(), speech.format)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
}

/// Synthesises every sentence into one buffer of samples.
pub(crate) fn speak_all(
    voice: &PiperVoice,
    sentences: &[String],
    speed: f32,
) -> Result<Vec<f32>, ApiError> {
    let mut all = Vec::new();
    for sentence in sentences {
        // Joining the sentences is the one copy of this pipeline; it is what a WAV needs.
        with_sentence(voice, sentence, speed, |samples| {
            all.extend_from_slice(samples);
            Ok(())
        })?;
    }
    Ok(all)
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
        let span = tracing::info_span!("speech", model = %decision.model, sentences = speech.sentences.len());
        let voice = state
            .services
            .tts(&entry.manifest)
            .instrument(span.clone())
            .await
            .map_err(|e| ApiError::from_engine(e, retry_after))?;
        let content_type = HeaderValue::from_static(speech.format.content_type());
        let engine = voice.execution_provider().engine_label();
        let started = Instant::now();
        // The step ends when the last sentence is spoken (for pcm, after the response head).
        let record = {
            let state = Arc::clone(&state);
            let (model, pipeline) = (decision.model.clone(), decision.pipeline.clone());
            move || {
                let mut trace = PipelineTrace::new(&pipeline);
                trace.step("tts", &model, engine, started, None);
                trace.record(&state.metrics);
            }
        };
        let mut response = match speech.format {
            AudioFormat::Pcm => stream_pcm(voice, speech, span, record),
            _ => {
                let rate = voice.sample_rate();
                let format = speech.format;
                let bytes = tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let samples = speak_all(&voice, &speech.sentences, speech.speed)?;
                    switchyard_media::audio::encode(&samples, rate, format)
                        .map_err(|e| ApiError::internal(e.to_string()))
                })
                .await
                .map_err(|e| ApiError::internal(format!("speech task failed: {e}")))??;
                record();
                bytes.into_response()
            }
        };
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
        super::add_route_header(&mut response, &decision, engine);
        Ok::<_, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Streams raw PCM sentence by sentence; a client that goes away stops the synthesis.
fn stream_pcm(
    voice: Arc<PiperVoice>,
    speech: Speech,
    span: tracing::Span,
    done: impl FnOnce() + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        for sentence in &speech.sentences {
            let chunk =
                speak(&voice, sentence, &speech).map_err(|e| std::io::Error::other(e.body_json()));
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
        done();
    });
    Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).into_response()
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
                serde_json::json!({"model": "auto", "input": "hi", "voice": "joe", "response_format": "mp3"}),
                "response_format",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "joe", "speed": 9.0}),
                "speed",
            ),
            (
                serde_json::json!({"model": "auto", "input": "hi", "voice": "alloy", "stream_format": "sse"}),
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
}
