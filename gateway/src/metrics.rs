//! Prometheus metrics with fixed names (`switchyard_*`). Per-model gauges (queue depth,
//! loaded models, memory) are refreshed from the models' status at scrape time.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// `switchyard_http_requests_total{endpoint,status}`.
    pub requests: IntCounterVec,
    /// `switchyard_http_request_duration_seconds{endpoint}` (until the response head; streams
    /// are covered by time to first token and generated tokens).
    pub latency: HistogramVec,
    /// `switchyard_time_to_first_token_seconds{model}`.
    pub ttft: HistogramVec,
    /// `switchyard_generation_duration_seconds{model}`: request accepted → last token.
    pub generation: HistogramVec,
    /// `switchyard_generated_tokens_total{model}`.
    pub generated_tokens: IntCounterVec,
    /// `switchyard_prompt_tokens_total{model}`.
    pub prompt_tokens: IntCounterVec,
    /// `switchyard_queue_depth{model}`: requests waiting for a slot.
    pub queue_depth: IntGaugeVec,
    /// `switchyard_active_sequences{model}`: requests being decoded.
    pub active: IntGaugeVec,
    /// `switchyard_model_loaded{model,engine}`: 1 when loaded.
    pub loaded: IntGaugeVec,
    /// `switchyard_model_memory_bytes{model}`: estimated weights + KV cache.
    pub memory: IntGaugeVec,
    /// `switchyard_process_resident_memory_bytes`.
    pub resident: IntGauge,
    /// `switchyard_execution_provider{model,provider,state}`: 1 for the ONNX Runtime provider
    /// a model runs on (`state="used"`) and for each one the profile asked for first that
    /// could not be used (`state="skipped"`; /health says why).
    pub execution_provider: IntGaugeVec,
    /// `switchyard_model_artifact{model,role,file,precision}`: 1 for the file that serves each
    /// role of each model under the device profile (the source or a converter variant).
    pub model_artifact: IntGaugeVec,
    /// `switchyard_image_fetches_total{outcome}`: http(s) image URLs of chat requests,
    /// `ok` (fetched) or `refused` (not allowed, failed, too large, too slow).
    pub image_fetches: IntCounterVec,
    /// `switchyard_pipeline_step_duration_seconds{step,engine}`: time of each pipeline step
    /// (ocr, stt, tts, embedding, vad, llm).
    pub pipeline_step: HistogramVec,
    /// `switchyard_pipeline_bytes_copied_total{pipeline,reason}`: bytes copied inside pipelines
    /// (decode, resample, preprocess, ipc, ...); hand-overs between steps add nothing.
    pub bytes_copied: IntCounterVec,
    /// `switchyard_pipeline_copies_total{pipeline}`: number of copies inside pipelines.
    pub copies: IntCounterVec,
}

const TOKEN_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "switchyard_http_requests_total",
                "HTTP requests by endpoint and status",
            ),
            &["endpoint", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_http_request_duration_seconds",
                "Time to the response head, by endpoint",
            )
            .buckets(TOKEN_BUCKETS.to_vec()),
            &["endpoint"],
        )?;
        let ttft = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_time_to_first_token_seconds",
                "Request accepted to first generated text, by model",
            )
            .buckets(TOKEN_BUCKETS.to_vec()),
            &["model"],
        )?;
        let generation = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_generation_duration_seconds",
                "Request accepted to generation end, by model",
            )
            .buckets(TOKEN_BUCKETS.to_vec()),
            &["model"],
        )?;
        let generated_tokens = IntCounterVec::new(
            Opts::new(
                "switchyard_generated_tokens_total",
                "Tokens generated, by model",
            ),
            &["model"],
        )?;
        let prompt_tokens = IntCounterVec::new(
            Opts::new(
                "switchyard_prompt_tokens_total",
                "Prompt tokens processed, by model",
            ),
            &["model"],
        )?;
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "switchyard_queue_depth",
                "Requests waiting for a slot, by model",
            ),
            &["model"],
        )?;
        let active = IntGaugeVec::new(
            Opts::new(
                "switchyard_active_sequences",
                "Requests being decoded, by model",
            ),
            &["model"],
        )?;
        let loaded = IntGaugeVec::new(
            Opts::new(
                "switchyard_model_loaded",
                "1 when the model is loaded, with the engine that runs it",
            ),
            &["model", "engine"],
        )?;
        let memory = IntGaugeVec::new(
            Opts::new(
                "switchyard_model_memory_bytes",
                "Estimated bytes of a loaded model (weights + KV cache)",
            ),
            &["model"],
        )?;
        let execution_provider = IntGaugeVec::new(
            Opts::new(
                "switchyard_execution_provider",
                "ONNX Runtime execution provider per model: state=used runs it, state=skipped \
                 was asked for first but could not be used",
            ),
            &["model", "provider", "state"],
        )?;
        let model_artifact = IntGaugeVec::new(
            Opts::new(
                "switchyard_model_artifact",
                "The file serving each role of each model under the device profile (1), with \
                 its precision",
            ),
            &["model", "role", "file", "precision"],
        )?;
        let image_fetches = IntCounterVec::new(
            Opts::new(
                "switchyard_image_fetches_total",
                "http(s) image URLs of chat requests, by outcome (ok, refused)",
            ),
            &["outcome"],
        )?;
        let resident = IntGauge::new(
            "switchyard_process_resident_memory_bytes",
            "Resident memory of the gateway process",
        )?;
        registry.register(Box::new(execution_provider.clone()))?;
        registry.register(Box::new(image_fetches.clone()))?;
        registry.register(Box::new(model_artifact.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(ttft.clone()))?;
        registry.register(Box::new(generation.clone()))?;
        registry.register(Box::new(generated_tokens.clone()))?;
        registry.register(Box::new(prompt_tokens.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(active.clone()))?;
        registry.register(Box::new(loaded.clone()))?;
        registry.register(Box::new(memory.clone()))?;
        registry.register(Box::new(resident.clone()))?;
        let pipeline_step = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_pipeline_step_duration_seconds",
                "Time of one pipeline step, by step and engine",
            )
            .buckets(TOKEN_BUCKETS.to_vec()),
            &["step", "engine"],
        )?;
        let bytes_copied = IntCounterVec::new(
            Opts::new(
                "switchyard_pipeline_bytes_copied_total",
                "Bytes copied inside pipelines, by pipeline and reason",
            ),
            &["pipeline", "reason"],
        )?;
        let copies = IntCounterVec::new(
            Opts::new(
                "switchyard_pipeline_copies_total",
                "Copies made inside pipelines, by pipeline",
            ),
            &["pipeline"],
        )?;
        registry.register(Box::new(pipeline_step.clone()))?;
        registry.register(Box::new(bytes_copied.clone()))?;
        registry.register(Box::new(copies.clone()))?;
        Ok(Metrics {
            model_artifact,
            pipeline_step,
            bytes_copied,
            copies,
            registry,
            requests,
            latency,
            ttft,
            generation,
            generated_tokens,
            prompt_tokens,
            queue_depth,
            active,
            loaded,
            memory,
            resident,
            execution_provider,
            image_fetches,
        })
    }

    /// The registry, for metrics defined elsewhere in the gateway.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        if let Some(bytes) = resident_bytes() {
            self.resident.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
