//! What a multi-step request actually did: each step with its model, engine and time, and the
//! bytes copied along the way. It is returned in the response (`x-switchyard-pipeline` header;
//! a `switchyard` object in JSON bodies) and summed into `/metrics`.

use std::time::Instant;

use axum::http::HeaderValue;
use axum::response::Response;
use serde::Serialize;
use switchyard_core::CopyLedger;

use crate::metrics::Metrics;

/// Longest step output kept in the trace, in characters.
const OUTPUT_PREVIEW_CHARS: usize = 2000;

fn preview(text: &str) -> String {
    text.chars().take(OUTPUT_PREVIEW_CHARS).collect()
}

/// One step that ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepTrace {
    /// `ocr`, `stt`, `vad`, `tts`, `embedding`, `llm`, `decode`.
    pub task: String,
    /// Model id.
    pub model: String,
    /// Engine that ran it (`family/device`, as the engine reports it).
    pub engine: String,
    /// Wall time, milliseconds.
    pub ms: f64,
    /// What the step read, when it is text (the LLM's grounded prompt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// What the step produced, when it is text (OCR lines, a transcript).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The steps of one request and its copy ledger.
#[derive(Debug, Default)]
pub struct PipelineTrace {
    /// Pipeline name from the route decision (`ocr-llm`, `stt`, ...).
    pub pipeline: String,
    /// Steps in the order they ran.
    pub steps: Vec<StepTrace>,
    /// Copies made inside the pipeline.
    pub ledger: CopyLedger,
}

/// The JSON form of a trace.
#[derive(Debug, Serialize)]
pub struct TraceJson<'a> {
    /// Pipeline name.
    pub pipeline: &'a str,
    /// Steps.
    pub steps: &'a [StepTrace],
    /// Copies.
    pub copies: switchyard_core::CopySummary,
}

impl PipelineTrace {
    /// An empty trace for `pipeline`.
    pub fn new(pipeline: &str) -> Self {
        Self {
            pipeline: pipeline.to_owned(),
            ..Self::default()
        }
    }

    /// Records a step that started at `started`.
    pub fn step(
        &mut self,
        task: &str,
        model: &str,
        engine: &str,
        started: Instant,
        output: Option<&str>,
    ) {
        self.steps.push(StepTrace {
            task: task.to_owned(),
            model: model.to_owned(),
            engine: engine.to_owned(),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            input: None,
            output: output.map(preview),
        });
    }

    /// Records a step that took `ms` (one that ran before the trace existed).
    pub fn step_ms(
        &mut self,
        task: &str,
        model: &str,
        engine: &str,
        ms: f64,
        output: Option<&str>,
    ) {
        self.steps.push(StepTrace {
            task: task.to_owned(),
            model: model.to_owned(),
            engine: engine.to_owned(),
            ms,
            input: None,
            output: output.map(preview),
        });
    }

    /// Records the LLM step with the prompt it was given.
    pub fn llm_step(&mut self, model: &str, engine: &str, started: Instant, prompt: &str) {
        self.step("llm", model, engine, started, None);
        if let Some(last) = self.steps.last_mut() {
            last.input = Some(preview(prompt));
        }
    }

    /// The JSON object put into response bodies.
    pub fn json(&self) -> TraceJson<'_> {
        TraceJson {
            pipeline: &self.pipeline,
            steps: &self.steps,
            copies: self.ledger.summary(),
        }
    }

    /// `ocr=pp-ocrv6-tiny@tract/cpu:84ms; llm=...; copied=1234B/3`.
    pub fn header(&self) -> String {
        let mut parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}={}@{}:{:.0}ms", s.task, s.model, s.engine, s.ms))
            .collect();
        let copies = self.ledger.summary();
        parts.push(format!("copied={}B/{}", copies.bytes, copies.copies));
        parts.join("; ")
    }

    /// Adds the header to a response.
    pub fn add_header(&self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&self.header()) {
            response
                .headers_mut()
                .insert("x-switchyard-pipeline", value);
        }
    }

    /// Adds the steps and copies to the metrics.
    pub fn record(&self, metrics: &Metrics) {
        for step in &self.steps {
            metrics
                .pipeline_step
                .with_label_values(&[step.task.as_str(), step.engine.as_str()])
                .observe(step.ms / 1000.0);
        }
        let copies = self.ledger.summary();
        for (reason, bytes) in &copies.by_reason {
            metrics
                .bytes_copied
                .with_label_values(&[self.pipeline.as_str(), reason])
                .inc_by(*bytes);
        }
        metrics
            .copies
            .with_label_values(&[self.pipeline.as_str()])
            .inc_by(copies.copies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_steps_and_copies() {
        let mut trace = PipelineTrace::new("ocr-llm");
        trace.step(
            "ocr",
            "pp-ocrv6-tiny",
            "tract/cpu",
            Instant::now(),
            Some("HELLO"),
        );
        trace.ledger.record("decode", 300);
        let header = trace.header();
        assert!(
            header.starts_with("ocr=pp-ocrv6-tiny@tract/cpu:"),
            "{header}"
        );
        assert!(header.ends_with("copied=300B/1"), "{header}");
        let json = serde_json::to_value(trace.json()).unwrap();
        assert_eq!(json["steps"][0]["output"], "HELLO");
        assert_eq!(json["copies"]["by_reason"]["decode"], 300);
    }
}
