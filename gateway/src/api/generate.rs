//! `POST /v1/chat/completions` and `POST /v1/completions`: validate, route, run on the
//! model's engine, answer as one JSON body or as an SSE stream ending in `data: [DONE]`.
//!
//! A client that disconnects drops the response stream, which drops the [`Generation`] and
//! cancels it: the engine frees the slot at its next decode step.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use switchyard_core::{
    FinishReason, GenerateRequest, Generation, GenerationEvent, Prompt, SamplingParams, Usage,
};
use switchyard_router::{Endpoint, RouteDecision};
use tracing::{info_span, Instrument};

use super::body_bytes;
use super::chat_media::{self, MediaKind, MediaPart};
use super::wire::{self, parse_json};
use crate::error::ApiError;
use crate::pipeline::PipelineTrace;
use crate::state::AppState;
use base64::Engine as _;

/// Which API shape to answer in.
#[derive(Clone)]
enum Shape {
    Chat,
    /// `echo`: the prompt to put before the generated text.
    Completion {
        echo: Option<String>,
    },
}

/// A validated request, ready to run.
struct Prepared {
    prompt: Prompt,
    sampling: SamplingParams,
    stream: bool,
    include_usage: bool,
    shape: Shape,
    /// Image and audio parts to turn into text first (chat only).
    media: Vec<MediaPart>,
    /// Spoken answer requested (`modalities` with `audio`).
    audio_out: Option<AudioOut>,
}

/// `audio: {voice, format}` of a chat request asking for `modalities: ["text", "audio"]`.
#[derive(Clone)]
struct AudioOut {
    format: switchyard_media::AudioFormat,
}

fn audio_out(
    request: &wire::ChatCompletionRequest,
    stream: bool,
) -> Result<Option<AudioOut>, ApiError> {
    let wants_audio = request
        .modalities
        .as_ref()
        .is_some_and(|m| m.iter().any(|x| x == "audio"));
    if let Some(m) = request
        .modalities
        .iter()
        .flatten()
        .find(|m| *m != "text" && *m != "audio")
    {
        return Err(ApiError::bad_request(
            format!("modality '{m}' is not one of text, audio"),
            Some("modalities"),
        ));
    }
    if !wants_audio {
        return Ok(None);
    }
    let audio = request.audio.as_ref().ok_or_else(|| {
        ApiError::bad_request(
            "modalities includes 'audio' but 'audio' ({voice, format}) is missing",
            Some("audio"),
        )
    })?;
    if let Some(voice) = audio.get("voice") {
        super::speech::check_voice(voice).map_err(|_| {
            ApiError::bad_request(
                format!("audio.voice {voice} is not available (joe, or OpenAI's voice names)"),
                Some("audio.voice"),
            )
        })?;
    }
    // OpenAI's chat names: `pcm16` is the speech API's `pcm` (24 kHz s16le).
    let format = match audio.get("format").and_then(serde_json::Value::as_str) {
        Some("pcm16") => Some(switchyard_media::AudioFormat::Pcm),
        Some("pcm") => None,
        Some(name) => switchyard_media::AudioFormat::parse(name)
            .ok()
            .filter(|f| f.is_supported()),
        None => None,
    };
    let Some(format) = format else {
        let given = audio.get("format").and_then(serde_json::Value::as_str);
        return Err(ApiError::bad_request(
            format!("audio.format {given:?} is not supported here (wav, mp3, opus, flac, pcm16)"),
            Some("audio.format"),
        ));
    };
    if stream && format != switchyard_media::AudioFormat::Pcm {
        return Err(ApiError::bad_request(
            "streamed spoken answers are pcm16 (24 kHz s16le, sentence by sentence); set \
             audio.format to pcm16 or send stream: false",
            Some("audio.format"),
        ));
    }
    Ok(Some(AudioOut { format }))
}

pub(super) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let fetched = async {
        let body = body_bytes(body, state.config.limits.max_body_bytes)?;
        let value: serde_json::Value = parse_json(&body)?;
        let remote = super::remote_image::fetch_all(&state, &value).await?;
        Ok::<_, ApiError>((body, value, remote))
    }
    .await;
    let (body, value, remote) = match fetched {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let prepared = (|| {
        let req: wire::ChatCompletionRequest = parse_json(&body)?;
        let sampling: wire::SamplingFields = parse_json(&body)?;
        let mut media = Vec::new();
        let messages = req.chat_messages(&mut media, &remote)?;
        Ok::<_, ApiError>(Prepared {
            prompt: Prompt::Chat(messages),
            sampling: sampling.to_params(&state.config.limits)?,
            stream: sampling.streaming(),
            include_usage: sampling.include_usage(),
            shape: Shape::Chat,
            media,
            audio_out: audio_out(&req, sampling.streaming())?,
        })
    })();
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if state.is_draining() {
        return ApiError::unavailable("the server is shutting down; retry on another instance")
            .into_response();
    }
    let routed =
        super::route::route_value(&state, Endpoint::ChatCompletions, &value, &headers, &remote)
            .await;
    match routed {
        Ok(decision) => run(state, prepared, decision).await,
        Err(e) => e.into_response(),
    }
}

pub(super) async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let prepared = (|| {
        let body = body_bytes(body, state.config.limits.max_body_bytes)?;
        let req: wire::CompletionRequest = parse_json(&body)?;
        let sampling: wire::SamplingFields = parse_json(&body)?;
        let text = req.prompt_text()?;
        Ok::<_, ApiError>((
            Prepared {
                shape: Shape::Completion {
                    echo: req.echo.then(|| text.clone()),
                },
                prompt: Prompt::Text(text),
                sampling: sampling.to_params(&state.config.limits)?,
                stream: sampling.streaming(),
                include_usage: sampling.include_usage(),
                media: Vec::new(),
                audio_out: None,
            },
            body,
        ))
    })();
    match prepared {
        Ok((p, body)) => route_and_run(state, Endpoint::Completions, &body, &headers, p).await,
        Err(e) => e.into_response(),
    }
}

/// Routes the request (the three-stage router), then runs it.
async fn route_and_run(
    state: Arc<AppState>,
    endpoint: Endpoint,
    body: &[u8],
    headers: &HeaderMap,
    prepared: Prepared,
) -> Response {
    if state.is_draining() {
        return ApiError::unavailable("the server is shutting down; retry on another instance")
            .into_response();
    }
    match super::route::route_body(&state, endpoint, body, headers).await {
        Ok(decision) => run(state, prepared, decision).await,
        Err(e) => e.into_response(),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Everything the response builders need besides the events.
struct Context {
    state: Arc<AppState>,
    id: String,
    model: String,
    fingerprint: String,
    created: u64,
    accepted: Instant,
    shape: Shape,
    include_usage: bool,
    /// Engine that runs the request (as the model reports it).
    engine: String,
    /// Latency target the router planned with, ms.
    slo_ms: u32,
    /// The pipeline's steps before the LLM (OCR, speech-to-text), when any ran.
    trace: Option<PipelineTrace>,
    /// The grounded prompt, for the trace's LLM step.
    prompt_text: String,
    /// Spoken answer requested.
    audio_out: Option<AudioOut>,
}

async fn run(state: Arc<AppState>, prepared: Prepared, decision: RouteDecision) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let summary = decision.summary();
    let span = info_span!("generate", request_id = %request_id, model = %decision.model, stream = prepared.stream, route = %summary);
    async move {
        tracing::info!(route = %summary, "routed");
        let retry_after = state.config.limits.retry_after_seconds;
        let model = match state.model(&decision.model).await {
            Ok(m) => m,
            Err(e) => return ApiError::from_engine(e, retry_after).into_response(),
        };
        let engine = model.status().engine;
        let mut prompt = prepared.prompt;
        let trace = if prepared.media.is_empty() && prepared.audio_out.is_none() {
            None
        } else {
            let mut trace = PipelineTrace::new(&decision.pipeline);
            if !prepared.media.is_empty() {
                let texts =
                    match resolve_media(&state, &decision, &prepared.media, &mut trace).await {
                        Ok(t) => t,
                        Err(e) => return e.into_response(),
                    };
                if let Prompt::Chat(messages) = &mut prompt {
                    chat_media::substitute(messages, &texts);
                }
            }
            Some(trace)
        };
        let prompt_text = match &prompt {
            Prompt::Chat(messages) => messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.clone())
                .unwrap_or_default(),
            Prompt::Text(t) => t.clone(),
        };
        let request = GenerateRequest {
            prompt,
            sampling: prepared.sampling,
        };
        let generate_model = Arc::clone(&model);
        let span = tracing::Span::current();
        let generation = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            generate_model.generate(request)
        })
        .await;
        let generation = match generation {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => return ApiError::from_engine(e, retry_after).into_response(),
            Err(e) => {
                return ApiError::internal(format!("generation task failed: {e}")).into_response()
            }
        };
        let prefix = match prepared.shape {
            Shape::Chat => "chatcmpl",
            Shape::Completion { .. } => "cmpl",
        };
        let ctx = Context {
            id: format!("{prefix}-{request_id}"),
            fingerprint: format!(
                "switchyard-{}-{}",
                env!("CARGO_PKG_VERSION"),
                engine.replace('/', "-")
            ),
            model: decision.model.clone(),
            created: unix_now(),
            accepted: Instant::now(),
            shape: prepared.shape,
            include_usage: prepared.include_usage,
            engine: engine.clone(),
            slo_ms: decision.placements.last().map(|p| p.slo_ms).unwrap_or(0),
            trace,
            prompt_text,
            audio_out: prepared.audio_out,
            state,
        };
        let pre_steps = ctx.trace.as_ref().map(PipelineTrace::header);
        let mut response = if prepared.stream {
            // A spoken answer streams with the voice loaded before the first chunk.
            let speaker = match &ctx.audio_out {
                Some(_) => match tts_voice(&ctx.state).await {
                    Ok((_, voice)) => Some(voice),
                    Err(e) => return e.into_response(),
                },
                None => None,
            };
            Sse::new(stream_events(ctx, generation, speaker)).into_response()
        } else {
            collect(ctx, generation).await
        };
        // Streams carry the steps before the LLM; whole answers set the full trace in collect.
        if let Some(header) = pre_steps {
            if !response.headers().contains_key("x-switchyard-pipeline") {
                if let Ok(v) = HeaderValue::from_str(&header) {
                    response.headers_mut().insert("x-switchyard-pipeline", v);
                }
            }
        }
        super::add_route_header(&mut response, &decision, &engine);
        response
    }
    .instrument(span)
    .await
}

/// Per-generation metrics: time to first text, tokens, duration.
struct Meter<'a> {
    ctx: &'a Context,
    first_at: Option<Instant>,
}

impl<'a> Meter<'a> {
    fn new(ctx: &'a Context) -> Self {
        Meter {
            ctx,
            first_at: None,
        }
    }

    fn token(&mut self) {
        if self.first_at.is_none() {
            self.first_at = Some(Instant::now());
            self.ctx
                .state
                .metrics
                .ttft
                .with_label_values(&[self.ctx.model.as_str()])
                .observe(self.ctx.accepted.elapsed().as_secs_f64());
        }
    }

    fn finished(&self, usage: Usage) {
        let m = &self.ctx.state.metrics;
        let model = self.ctx.model.as_str();
        m.generated_tokens
            .with_label_values(&[model])
            .inc_by(u64::from(usage.completion_tokens));
        m.prompt_tokens
            .with_label_values(&[model])
            .inc_by(u64::from(usage.prompt_tokens));
        let total = self.ctx.accepted.elapsed();
        m.generation
            .with_label_values(&[model])
            .observe(total.as_secs_f64());
        // Teach the router: latency EWMA and, in learned mode, whether the SLO was met.
        if let Some(first) = self.first_at {
            let ttft_ms = first.duration_since(self.ctx.accepted).as_secs_f64() * 1e3;
            let after_first = total.saturating_sub(first.duration_since(self.ctx.accepted));
            let per_token_ms = after_first.as_secs_f64() * 1e3
                / f64::from(usage.completion_tokens.saturating_sub(1).max(1));
            let slo_met = total.as_secs_f64() * 1e3 <= f64::from(self.ctx.slo_ms);
            self.ctx.state.routing.router.observe(
                model,
                &self.ctx.engine,
                ttft_ms,
                per_token_ms,
                slo_met,
            );
        }
    }
}

fn engine_gone() -> ApiError {
    ApiError::internal("the engine stopped without finishing the generation")
}

async fn collect(ctx: Context, mut generation: Generation) -> Response {
    let mut meter = Meter::new(&ctx);
    let mut text = match &ctx.shape {
        Shape::Completion { echo: Some(prompt) } => prompt.clone(),
        _ => String::new(),
    };
    let (reason, usage) = loop {
        match generation.events.recv().await {
            Some(GenerationEvent::Token { text: t }) => {
                meter.token();
                text.push_str(&t);
            }
            Some(GenerationEvent::Finished { reason, usage }) => break (reason, usage),
            Some(GenerationEvent::Failed(e)) => {
                return ApiError::from_engine(e, ctx.state.config.limits.retry_after_seconds)
                    .into_response()
            }
            None => return engine_gone().into_response(),
        }
    };
    meter.finished(usage);
    let finish_reason = finish_str(reason);
    let mut ctx = ctx;
    let mut trace = ctx.trace.take();
    if let Some(trace) = trace.as_mut() {
        trace.llm_step(&ctx.model, &ctx.engine, ctx.accepted, &ctx.prompt_text);
    }
    let audio = match (&ctx.audio_out, trace.as_mut()) {
        (Some(out), Some(trace)) => {
            match speak_answer(&ctx.state, &text, out, trace, &ctx.id).await {
                Ok(a) => Some(a),
                Err(e) => return e.into_response(),
            }
        }
        _ => None,
    };
    if let Some(trace) = &trace {
        trace.record(&ctx.state.metrics);
    }
    let switchyard = trace
        .as_ref()
        .and_then(|t| serde_json::to_value(t.json()).ok());
    let trace_header = trace
        .as_ref()
        .and_then(|t| HeaderValue::from_str(&t.header()).ok());
    let mut response = match ctx.shape {
        Shape::Chat => Json(wire::ChatCompletion {
            id: ctx.id.clone(),
            object: "chat.completion",
            created: ctx.created,
            model: ctx.model.clone(),
            system_fingerprint: ctx.fingerprint.clone(),
            choices: vec![wire::ChatChoice {
                index: 0,
                message: wire::ResponseMessage {
                    role: "assistant",
                    content: text,
                    refusal: None,
                    audio,
                },
                logprobs: None,
                finish_reason,
            }],
            usage: usage.into(),
            switchyard,
        })
        .into_response(),
        Shape::Completion { .. } => Json(wire::Completion {
            id: ctx.id.clone(),
            object: "text_completion",
            created: ctx.created,
            model: ctx.model.clone(),
            system_fingerprint: ctx.fingerprint.clone(),
            choices: vec![wire::CompletionChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: Some(finish_reason),
            }],
            usage: Some(Some(usage.into())),
        })
        .into_response(),
    };
    if let Some(value) = trace_header {
        response
            .headers_mut()
            .insert("x-switchyard-pipeline", value);
    }
    response
}

/// Runs OCR on image parts and speech-to-text on audio parts, in order, recording each step;
/// returns the text each part becomes in the prompt.
async fn resolve_media(
    state: &Arc<AppState>,
    decision: &RouteDecision,
    media: &[MediaPart],
    trace: &mut PipelineTrace,
) -> Result<Vec<String>, ApiError> {
    let retry_after = state.config.limits.retry_after_seconds;
    let step_model = |task: &str| {
        decision
            .steps
            .iter()
            .find(|s| s.task == task)
            .and_then(|s| s.model.clone())
            .ok_or_else(|| {
                ApiError::unavailable(format!(
                    "no {task} model is available for this request's {task} step; run `switchyard models fetch`"
                ))
            })
    };
    let mut texts = Vec::with_capacity(media.len());
    for (index, part) in media.iter().enumerate() {
        match part.kind {
            MediaKind::Image => {
                if let Some((url, ms)) = &part.fetched {
                    trace.step_ms("fetch", url, "http", *ms, None);
                }
                let model_id = step_model("ocr")?;
                let entry = super::model_entry(state, &model_id)?;
                let model = state
                    .services
                    .ocr(&entry.manifest)
                    .await
                    .map_err(|e| ApiError::from_engine(e, retry_after))?;
                let limits = state.image_limits();
                let engine = model.engine;
                let data = Arc::clone(&part.data);
                let param = part.param.clone();
                let ledger = std::mem::take(&mut trace.ledger);
                let started = Instant::now();
                let span = tracing::Span::current();
                let (lines, ledger) = tokio::task::spawn_blocking(move || {
                    let _entered = span.enter();
                    let lines = crate::services::vision::read_image(
                        &model.model,
                        &data,
                        &limits,
                        &ledger,
                        &param,
                    );
                    (lines, ledger)
                })
                .await
                .map_err(|e| ApiError::internal(format!("OCR task failed: {e}")))?;
                trace.ledger = ledger;
                let lines = lines.map_err(|e| ApiError::from_engine(e, retry_after))?;
                let text = switchyard_engines::tract::ocr::join_text(&lines);
                trace.step("ocr", &model_id, engine, started, Some(&text));
                texts.push(chat_media::grounding(MediaKind::Image, index, &text));
            }
            MediaKind::Audio => {
                let model_id = step_model("stt")?;
                let taken = std::mem::take(trace);
                let (transcription, back) = super::transcriptions::run_stt_into(
                    state,
                    &model_id,
                    taken,
                    Arc::clone(&part.data),
                    switchyard_engines::whisper::TranscribeOptions::default(),
                    &part.param,
                )
                .await?;
                *trace = back;
                texts.push(chat_media::grounding(
                    MediaKind::Audio,
                    index,
                    &transcription.text,
                ));
            }
        }
    }
    Ok(texts)
}

/// Speaks the answer for `modalities: ["text", "audio"]`: OpenAI's `message.audio`.
/// The installed text-to-speech voice (model id, loaded voice).
async fn tts_voice(
    state: &Arc<AppState>,
) -> Result<(String, Arc<switchyard_engines::onnx::piper::PiperVoice>), ApiError> {
    let entry = state
        .models
        .values()
        .find(|m| m.manifest.tasks.iter().any(|t| t == "tts"))
        .ok_or_else(|| {
            ApiError::unavailable(
                "no text-to-speech model is installed; run `switchyard models fetch`",
            )
        })?;
    let voice = state
        .services
        .tts(&entry.manifest)
        .await
        .map_err(|e| ApiError::from_engine(e, state.config.limits.retry_after_seconds))?;
    Ok((entry.manifest.id.clone(), voice))
}

/// Where the complete sentences of `text` end: the byte after the last `.`, `!`, `?` or
/// newline that is followed by whitespace (the rest may still grow).
fn complete_sentences_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .rev()
        .find(|&i| {
            matches!(bytes[i], b'.' | b'!' | b'?' | b'\n') && bytes[i + 1].is_ascii_whitespace()
        })
        .map(|i| i + 1)
}

/// Speaks `text` as 24 kHz pcm16 and wraps it as a stream chunk's `delta.audio`.
async fn spoken_chunk(
    voice: &Arc<switchyard_engines::onnx::piper::PiperVoice>,
    text: String,
    id: &str,
) -> Result<serde_json::Value, ApiError> {
    let voice = Arc::clone(voice);
    let sentences = switchyard_engines::onnx::piper::sentences(&text);
    let pcm = tokio::task::spawn_blocking(move || {
        let samples = if sentences.is_empty() {
            Vec::new()
        } else {
            super::speech::speak_all(&voice, &sentences, 1.0)?
        };
        switchyard_media::audio::encode(
            &samples,
            voice.sample_rate(),
            switchyard_media::AudioFormat::Pcm,
        )
        .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("speech task failed: {e}")))??;
    Ok(serde_json::json!({
        "id": format!("audio_{id}"),
        "data": base64::engine::general_purpose::STANDARD.encode(pcm),
        "transcript": text,
    }))
}

async fn speak_answer(
    state: &Arc<AppState>,
    text: &str,
    out: &AudioOut,
    trace: &mut PipelineTrace,
    id: &str,
) -> Result<serde_json::Value, ApiError> {
    let (voice_id, voice) = tts_voice(state).await?;
    let sentences = switchyard_engines::onnx::piper::sentences(text);
    let format = out.format;
    let engine = voice.execution_provider().engine_label();
    let started = Instant::now();
    let bytes = tokio::task::spawn_blocking(move || {
        let samples = if sentences.is_empty() {
            Vec::new()
        } else {
            super::speech::speak_all(&voice, &sentences, 1.0)?
        };
        switchyard_media::audio::encode(&samples, voice.sample_rate(), format)
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("speech task failed: {e}")))??;
    trace.step("tts", &voice_id, engine, started, None);
    let expires_at = unix_now() + 3600;
    Ok(serde_json::json!({
        "id": format!("audio_{id}"),
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
        "expires_at": expires_at,
        "transcript": text,
    }))
}

fn finish_str(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        _ => "stop",
    }
}

impl Context {
    /// A chat chunk whose delta carries spoken audio (`{id, data, transcript}`, data as
    /// base64 24 kHz pcm16), as OpenAI's audio chat streams do.
    fn audio_chunk(&self, audio: serde_json::Value) -> Event {
        let json = serde_json::json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": [{"index": 0, "delta": {"audio": audio}, "logprobs": null, "finish_reason": null}],
        });
        Event::default().data(json.to_string())
    }

    /// One SSE chunk: a text delta, a finish reason, or (choice-less) usage.
    fn chunk(
        &self,
        text: Option<String>,
        first: bool,
        finish: Option<&'static str>,
        usage: Option<Usage>,
    ) -> Event {
        let usage_field = if usage.is_some() {
            Some(usage.map(Into::into))
        } else if self.include_usage {
            Some(None)
        } else {
            None
        };
        let usage_only = usage.is_some();
        let json = match &self.shape {
            Shape::Chat => serde_json::to_string(&wire::ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk",
                created: self.created,
                model: self.model.clone(),
                system_fingerprint: self.fingerprint.clone(),
                choices: if usage_only {
                    Vec::new()
                } else {
                    vec![wire::ChunkChoice {
                        index: 0,
                        delta: wire::Delta {
                            role: first.then_some("assistant"),
                            content: text,
                        },
                        logprobs: None,
                        finish_reason: finish,
                    }]
                },
                usage: usage_field,
            }),
            Shape::Completion { .. } => serde_json::to_string(&wire::Completion {
                id: self.id.clone(),
                object: "text_completion",
                created: self.created,
                model: self.model.clone(),
                system_fingerprint: self.fingerprint.clone(),
                choices: if usage_only {
                    Vec::new()
                } else {
                    vec![wire::CompletionChoice {
                        text: text.unwrap_or_default(),
                        index: 0,
                        logprobs: None,
                        finish_reason: finish,
                    }]
                },
                usage: usage_field,
            }),
        };
        Event::default().data(json.unwrap_or_default())
    }
}

fn stream_events(
    ctx: Context,
    mut generation: Generation,
    speaker: Option<Arc<switchyard_engines::onnx::piper::PiperVoice>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        let mut meter = Meter::new(&ctx);
        // Spoken answers: text not yet spoken; each complete sentence is synthesised as soon
        // as the model has written it and sent as a `delta.audio` chunk.
        let mut unspoken = String::new();
        let tts_started = Instant::now();
        let mut spoken_ms = 0.0;
        // Chat streams open with the assistant role; completions with the echoed prompt.
        match &ctx.shape {
            Shape::Chat => yield Ok(ctx.chunk(Some(String::new()), true, None, None)),
            Shape::Completion { echo: Some(prompt) } => yield Ok(ctx.chunk(Some(prompt.clone()), false, None, None)),
            Shape::Completion { echo: None } => {}
        }
        loop {
            match generation.events.recv().await {
                Some(GenerationEvent::Token { text }) => {
                    meter.token();
                    if let Some(voice) = &speaker {
                        unspoken.push_str(&text);
                        yield Ok(ctx.chunk(Some(text), false, None, None));
                        if let Some(end) = complete_sentences_end(&unspoken) {
                            let rest = unspoken.split_off(end);
                            let sentence = std::mem::replace(&mut unspoken, rest);
                            let started = Instant::now();
                            match spoken_chunk(voice, sentence, &ctx.id).await {
                                Ok(audio) => yield Ok(ctx.audio_chunk(audio)),
                                Err(e) => {
                                    yield Ok(Event::default().data(e.body_json()));
                                    break;
                                }
                            }
                            spoken_ms += started.elapsed().as_secs_f64() * 1000.0;
                        }
                    } else {
                        yield Ok(ctx.chunk(Some(text), false, None, None));
                    }
                }
                Some(GenerationEvent::Finished { reason, usage }) => {
                    if let Some(voice) = &speaker {
                        let rest = std::mem::take(&mut unspoken);
                        if !rest.trim().is_empty() {
                            let started = Instant::now();
                            match spoken_chunk(voice, rest, &ctx.id).await {
                                Ok(audio) => yield Ok(ctx.audio_chunk(audio)),
                                Err(e) => {
                                    yield Ok(Event::default().data(e.body_json()));
                                    break;
                                }
                            }
                            spoken_ms += started.elapsed().as_secs_f64() * 1000.0;
                        }
                        ctx.state
                            .metrics
                            .pipeline_step
                            .with_label_values(&["tts", voice.execution_provider().engine_label()])
                            .observe(spoken_ms / 1000.0);
                        tracing::debug!(spoken_ms, elapsed_ms = tts_started.elapsed().as_millis() as u64, "spoken answer streamed");
                    }
                    meter.finished(usage);
                    let empty = match ctx.shape { Shape::Chat => None, Shape::Completion { .. } => Some(String::new()) };
                    yield Ok(ctx.chunk(empty, false, Some(finish_str(reason)), None));
                    if ctx.include_usage {
                        yield Ok(ctx.chunk(None, false, None, Some(usage)));
                    }
                    yield Ok(Event::default().data("[DONE]"));
                    break;
                }
                Some(GenerationEvent::Failed(e)) => {
                    let error = ApiError::from_engine(e, ctx.state.config.limits.retry_after_seconds);
                    yield Ok(Event::default().data(error.body_json()));
                    break;
                }
                None => {
                    yield Ok(Event::default().data(engine_gone().body_json()));
                    break;
                }
            }
        }
        drop(generation);
    }
}
