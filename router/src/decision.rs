//! The route decision and its trace: each stage's outcome, reasons and duration in nanoseconds,
//! and the chosen steps (task, model, engine, device).

use serde::Serialize;
use switchyard_intent::Intent;

use crate::stage1::Features;
use crate::stage2::IntentOutcome;
use crate::stage3::inputs::engine_device;
use crate::stage3::policy::Placement;

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Task (`ocr`, `stt`, `llm`, `tts`, `embedding`).
    pub task: String,
    /// Model that runs it (`None`: nothing installed can).
    pub model: Option<String>,
    /// Engine (`family/device`).
    pub engine: Option<String>,
    /// Device the engine runs on (`cpu`, `cuda`, ...).
    pub device: Option<String>,
}

/// Timing and outcome of one stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTrace {
    /// `heuristics`, `intent` or `policy`.
    pub stage: &'static str,
    /// What it decided, in a few words.
    pub output: String,
    /// Time it took, in nanoseconds.
    pub nanos: u64,
    /// Whether it ran only to explain (an early exit had already decided).
    pub explain_only: bool,
}

/// The names of the profiles that decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileNames {
    /// Device profile.
    pub device: String,
    /// Policy profile.
    pub policy: String,
}

/// Where a request goes, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteDecision {
    /// Pipeline name (`llm`, `ocr-llm`, `stt`, ...).
    pub pipeline: String,
    /// The model of the final step (the LLM for text generation).
    pub model: String,
    /// The engine planned for that step.
    pub engine: Option<String>,
    /// The model the client asked for (`auto` lets the router choose).
    pub requested_model: String,
    /// Stage-2 label, for any request with text.
    pub intent: Option<Intent>,
    /// Stage-2 confidence.
    pub intent_confidence: Option<f32>,
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Human-readable reasons, in order.
    pub reasons: Vec<String>,
    /// Per-stage trace.
    pub stages: Vec<StageTrace>,
    /// Stage 1 in full.
    pub heuristics: Features,
    /// Stage 2 in full.
    pub classifier: Option<IntentOutcome>,
    /// Stage 3 in full, one placement per step.
    pub placements: Vec<Placement>,
    /// Profiles in force.
    pub profile: ProfileNames,
    /// Age of the telemetry snapshot used, ms.
    pub telemetry_age_ms: u64,
    /// Sum of the stages' times, ns.
    pub router_ns: u64,
}

impl RouteDecision {
    /// Builds a step from a placement.
    pub(crate) fn step(task: &str, placement: &Placement) -> Step {
        Step {
            task: task.to_owned(),
            model: placement.model.clone(),
            engine: placement.engine.clone(),
            device: placement
                .engine
                .as_deref()
                .map(|e| engine_device(e).to_owned()),
        }
    }

    /// A one-line ASCII summary for the `x-switchyard-route` header and the request's log line:
    /// `model=..; pipeline=..; intent=chat(0.93,a); requested=auto; reason=..; router_ns=..`.
    pub fn summary(&self) -> String {
        let intent = match (&self.classifier, self.intent) {
            (Some(c), Some(i)) => format!(
                "{}({:.2},{})",
                i,
                c.confidence,
                match c.tier {
                    crate::stage2::Tier::A => "a",
                    crate::stage2::Tier::B => "b",
                }
            ),
            _ => "-".to_owned(),
        };
        let reason = self.reasons.last().map(String::as_str).unwrap_or("-");
        let text = format!(
            "model={}; pipeline={}; intent={intent}; requested={}; profile={}/{}; reason={reason}; router_ns={}",
            self.model,
            self.pipeline,
            self.requested_model,
            self.profile.device,
            self.profile.policy,
            self.router_ns
        );
        // Header values must be visible ASCII.
        text.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }
}
