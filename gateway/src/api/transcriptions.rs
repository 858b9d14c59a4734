//! `POST /v1/audio/transcriptions`: OpenAI's speech-to-text API (multipart form) over Whisper
//! tiny.en on whisper.cpp, in its own worker process; audio longer than one Whisper window is
//! cut at pauses by Silero VAD first.
//!
//! `response_format`: `json` (default), `text`, `verbose_json` (segments with timestamps),
//! `srt`, `vtt`. `verbose_json` segments carry whisper.cpp's statistics as openai-whisper
//! defines them: text `tokens`, `avg_logprob` (mean over those tokens), `no_speech_prob`,
//! `compression_ratio` (zlib), and the request's `temperature`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use switchyard_engines::whisper::TranscribeOptions;
use switchyard_router::{Claimed, Endpoint, Part, RouteRequest};
use tracing::Instrument;

use crate::error::ApiError;
use crate::pipeline::PipelineTrace;
use crate::services::speech::{
    decode_audio, transcribe, TimedText, Transcription, STT_ENGINE, VAD_ENGINE,
};
use crate::state::AppState;

/// The form fields accepted.
const FIELDS: &[&str] = &[
    "file",
    "model",
    "language",
    "prompt",
    "response_format",
    "temperature",
    "timestamp_granularities[]",
    "timestamp_granularities",
    "stream",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
    VerboseJson,
    Srt,
    Vtt,
}

impl Format {
    fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "json" => Format::Json,
            "text" => Format::Text,
            "verbose_json" => Format::VerboseJson,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            other => {
                return Err(ApiError::bad_request(
                    format!(
                    "response_format '{other}' is not one of json, text, verbose_json, srt, vtt"
                ),
                    Some("response_format"),
                ))
            }
        })
    }
}

/// The parsed form.
struct Form {
    file: Arc<[u8]>,
    model: String,
    options: TranscribeOptions,
    format: Format,
}

fn bad(message: String, param: &str) -> ApiError {
    ApiError::bad_request(message, Some(param))
}

async fn read_form(mut multipart: Multipart) -> Result<Form, ApiError> {
    let mut file = None;
    let mut model = None;
    let mut options = TranscribeOptions::default();
    let mut format = Format::Json;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("cannot read the multipart form: {e}"), "file"))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| bad(format!("cannot read 'file': {e}"), "file"))?;
            file = Some(Arc::from(bytes.as_ref()));
            continue;
        }
        if !FIELDS.contains(&name.as_str()) {
            return Err(bad(
                format!(
                    "unknown form field '{name}' (accepted: {})",
                    FIELDS.join(", ")
                ),
                &name,
            ));
        }
        let text = field
            .text()
            .await
            .map_err(|e| bad(format!("cannot read '{name}': {e}"), &name))?;
        match name.as_str() {
            "model" => model = Some(text),
            "language" if text.is_empty() => {}
            "language" if text.eq_ignore_ascii_case("en") => options.language = Some("en".into()),
            "language" => {
                return Err(bad(
                    format!(
                        "language '{text}' is not supported: the speech model is English-only (en)"
                    ),
                    "language",
                ))
            }
            "prompt" => options.initial_prompt = Some(text).filter(|t| !t.trim().is_empty()),
            "response_format" => format = Format::parse(&text)?,
            "temperature" => {
                let t: f32 = text.trim().parse().map_err(|_| {
                    bad(
                        format!("temperature '{text}' is not a number"),
                        "temperature",
                    )
                })?;
                if !(0.0..=1.0).contains(&t) {
                    return Err(bad(
                        format!("temperature must be between 0 and 1, got {t}"),
                        "temperature",
                    ));
                }
                options.temperature = t;
            }
            "stream" if text == "true" => {
                return Err(bad(
                    "streamed transcription is not supported".into(),
                    "stream",
                ))
            }
            _ => {} // timestamp_granularities: segments are always timed
        }
    }
    let file = file.ok_or_else(|| bad("the form has no 'file' field".into(), "file"))?;
    let model = model.ok_or_else(|| bad("the form has no 'model' field".into(), "model"))?;
    Ok(Form {
        file,
        model,
        options,
        format,
    })
}

/// `POST /v1/audio/transcriptions`.
pub(super) async fn transcriptions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let result = async {
        let multipart = multipart.map_err(|e| {
            bad(
                format!(
                    "the body must be a multipart/form-data upload with 'file' and 'model': {e}"
                ),
                "file",
            )
        })?;
        let form = read_form(multipart).await?;
        let hint_body = json!({"model": form.model});
        let request = RouteRequest {
            endpoint: Endpoint::AudioTranscriptions,
            model: form.model.clone(),
            parts: vec![Part::Bytes {
                claimed: Claimed::Audio,
                data: Arc::clone(&form.file),
                field: "file".into(),
            }],
            max_tokens: None,
            hints: super::route_request::hints(
                &hint_body,
                &headers,
                super::route::hint_sources(&state),
            ),
        };
        let decision = super::route::decide(&state, request, false).await?;
        let temperature = form.options.temperature;
        let (transcription, trace) = run_stt(
            &state,
            &decision.model,
            &decision.pipeline,
            form.file,
            form.options,
        )
        .await?;
        trace.record(&state.metrics);
        let mut response = render(&transcription, form.format, temperature, &trace);
        super::add_route_header(&mut response, &decision, STT_ENGINE);
        trace.add_header(&mut response);
        Ok::<_, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Decodes `audio` and transcribes it with model `model_id`; shared with chat's audio parts.
pub(crate) async fn run_stt(
    state: &Arc<AppState>,
    model_id: &str,
    pipeline: &str,
    audio: Arc<[u8]>,
    options: TranscribeOptions,
) -> Result<(Transcription, PipelineTrace), ApiError> {
    run_stt_into(
        state,
        model_id,
        PipelineTrace::new(pipeline),
        audio,
        options,
        "file",
    )
    .await
}

/// [`run_stt`] adding its steps to an existing trace; `param` names the audio field.
pub(crate) async fn run_stt_into(
    state: &Arc<AppState>,
    model_id: &str,
    mut trace: PipelineTrace,
    audio: Arc<[u8]>,
    options: TranscribeOptions,
    param: &str,
) -> Result<(Transcription, PipelineTrace), ApiError> {
    let retry_after = state.config.limits.retry_after_seconds;
    let entry = super::model_entry(state, model_id)?;
    let span = tracing::info_span!("stt", model = %model_id, bytes = audio.len());
    let host = state
        .services
        .stt(&entry.manifest)
        .instrument(span.clone())
        .await
        .map_err(|e| ApiError::from_engine(e, retry_after))?;
    // VAD cuts long audio; without a VAD model, Whisper's own 30 s windows do.
    let vad_entry = state
        .models
        .values()
        .find(|m| m.manifest.tasks.iter().any(|t| t == "vad"));
    let vad = match vad_entry {
        Some(v) => Some((
            v.manifest.id.clone(),
            state
                .services
                .vad(&v.manifest)
                .await
                .map_err(|e| ApiError::from_engine(e, retry_after))?,
        )),
        None => None,
    };
    let limits = state.audio_limits();
    let param = param.to_owned();
    let model_id = model_id.to_owned();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let started = Instant::now();
        let (samples, seconds) = decode_audio(&audio, &limits, &trace.ledger, &param)
            .map_err(|e| ApiError::from_engine(e, retry_after))?;
        trace.step("decode", "-", "symphonia/cpu", started, None);
        let started = Instant::now();
        let result = transcribe(
            &host,
            vad.as_ref().map(|(_, v)| v.as_ref()),
            &samples,
            seconds,
            &options,
            &trace.ledger,
        )
        .map_err(|e| ApiError::from_engine(e, retry_after))?;
        if let (Some((ms, count)), Some((vad_id, _))) = (result.vad, &vad) {
            trace.steps.push(crate::pipeline::StepTrace {
                task: "vad".into(),
                model: vad_id.clone(),
                engine: VAD_ENGINE.into(),
                ms,
                input: None,
                output: Some(format!("{count} speech segments")),
            });
        }
        trace.step("stt", &model_id, STT_ENGINE, started, Some(&result.text));
        Ok((result, trace))
    })
    .await
    .map_err(|e| ApiError::internal(format!("transcription task failed: {e}")))?
}

fn timestamp(seconds: f32, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn subtitles(segments: &[TimedText], vtt: bool) -> String {
    let mut out = String::new();
    if vtt {
        out.push_str("WEBVTT\n\n");
    }
    for (i, s) in segments.iter().enumerate() {
        let sep = if vtt { '.' } else { ',' };
        if !vtt {
            let _ = writeln!(out, "{}", i + 1);
        }
        let _ = writeln!(
            out,
            "{} --> {}\n{}\n",
            timestamp(s.start, sep),
            timestamp(s.end, sep),
            s.text
        );
    }
    out
}

/// openai-whisper's `compression_ratio`: UTF-8 bytes of the text over its zlib-compressed
/// size (level 6). High values (above ~2.4) flag repetitive, hallucinated segments.
fn compression_ratio(text: &str) -> f32 {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    let compressed = encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map(|c| c.len())
        .unwrap_or(0);
    if compressed == 0 {
        0.0
    } else {
        text.len() as f32 / compressed as f32
    }
}

fn render(t: &Transcription, format: Format, temperature: f32, trace: &PipelineTrace) -> Response {
    let text_response = |body: String, content_type: &'static str| {
        let mut r = body.into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    match format {
        Format::Json => Json(json!({
            "text": t.text,
            "usage": {"type": "duration", "seconds": t.seconds.ceil() as u64},
            "switchyard": trace.json(),
        }))
        .into_response(),
        Format::Text => text_response(format!("{}\n", t.text), "text/plain; charset=utf-8"),
        Format::Srt => text_response(subtitles(&t.segments, false), "application/x-subrip"),
        Format::Vtt => text_response(subtitles(&t.segments, true), "text/vtt"),
        Format::VerboseJson => {
            let segments: Vec<Value> = t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    json!({
                        "id": i, "seek": (s.start * 100.0) as u64, "start": s.start, "end": s.end,
                        "text": s.text, "tokens": s.tokens, "temperature": temperature,
                        "avg_logprob": s.avg_logprob,
                        "compression_ratio": compression_ratio(&s.text),
                        "no_speech_prob": s.no_speech_prob,
                    })
                })
                .collect();
            Json(json!({
                "task": "transcribe",
                "language": "english",
                "duration": t.seconds,
                "text": t.text,
                "segments": segments,
                "usage": {"type": "duration", "seconds": t.seconds.ceil() as u64},
                "switchyard": trace.json(),
            }))
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtitle_timestamps() {
        assert_eq!(timestamp(3723.5, ','), "01:02:03,500");
        let segments = vec![TimedText {
            start: 0.0,
            end: 1.25,
            text: "Hello.".into(),
            tokens: vec![15947, 13],
            avg_logprob: -0.1,
            no_speech_prob: 0.01,
        }];
        assert_eq!(
            subtitles(&segments, false),
            "1\n00:00:00,000 --> 00:00:01,250\nHello.\n\n"
        );
        assert!(subtitles(&segments, true).starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.250"));
        assert!(Format::parse("xml").is_err());
    }

    #[test]
    fn compression_ratio_flags_repetition() {
        let plain = compression_ratio("The quick brown fox jumps over the lazy dog.");
        let repeated = compression_ratio(&"thank you ".repeat(40));
        assert!(plain > 0.5 && plain < 1.5, "{plain}");
        assert!(repeated > 2.4, "{repeated}");
        assert_eq!(compression_ratio(""), 0.0);
    }
}
