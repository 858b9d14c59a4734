//! The router: runs the three stages over (request, telemetry snapshot, profile) and returns a
//! [`RouteDecision`] with its trace. Its configuration (profiles, classifiers) is swapped
//! atomically on reload; what it learns (latency EWMAs, bandit beliefs, the thermal latch)
//! survives reloads.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;
use switchyard_profiles::Profile;
use switchyard_telemetry::Snapshot;

use crate::decision::{ProfileNames, RouteDecision, StageTrace};
use crate::request::{Endpoint, RouteRequest};
use crate::stage1::{self, SecurityLevel, Stage1Error};
use crate::stage2::{self, Classifiers};
use crate::stage3::inputs::ModelView;
use crate::stage3::policy::{self, arm, Ask, Learners, World};
use crate::AUTO_MODEL;

/// Answer length the latency prediction assumes when a request does not set `max_tokens`.
pub const TYPICAL_ANSWER_TOKENS: u32 = 128;

/// What the router runs with; replaced as a whole on reload.
#[derive(Clone)]
pub struct RouterConfig {
    /// Device and policy profiles.
    pub profile: Arc<Profile>,
    /// Intent classifiers.
    pub classifiers: Classifiers,
}

/// The live state of the box a decision looks at.
#[derive(Clone, Copy)]
pub struct BoxView<'a> {
    /// Latest telemetry snapshot.
    pub snapshot: &'a Snapshot,
    /// Models the gateway can serve, with their load.
    pub models: &'a [ModelView],
    /// `max_tokens` assumed when the request sets none.
    pub default_max_tokens: u32,
}

/// Why no route exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The request itself is unusable (stage 1): the gateway answers 400.
    #[error("{0}")]
    BadRequest(Stage1Error),
    /// A hint the policy refuses (400).
    #[error("{0}")]
    Refused(String),
    /// The requested model is not installed (404).
    #[error("model '{0}' is not installed")]
    UnknownModel(String),
    /// The requested model cannot do what the endpoint asks (400).
    #[error("{0}")]
    WrongTask(String),
    /// Nothing installed can serve the request now (503); the message says why.
    #[error("{0}")]
    NoModel(String),
}

/// The three-stage router.
pub struct Router {
    config: ArcSwap<RouterConfig>,
    learners: Mutex<Learners>,
}

fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn to_router_level(level: switchyard_profiles::SecurityLevel) -> SecurityLevel {
    match level {
        switchyard_profiles::SecurityLevel::Public => SecurityLevel::Public,
        switchyard_profiles::SecurityLevel::Internal => SecurityLevel::Internal,
        switchyard_profiles::SecurityLevel::Airgap => SecurityLevel::Airgap,
    }
}

impl Router {
    /// A router over `config`.
    pub fn new(config: RouterConfig) -> Self {
        let seed = config.profile.policy.learned.seed;
        Router {
            config: ArcSwap::from_pointee(config),
            learners: Mutex::new(Learners::new(seed)),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<RouterConfig> {
        self.config.load_full()
    }

    /// Swaps in a new configuration; decisions in flight finish on the old one.
    pub fn swap(&self, config: RouterConfig) {
        self.config.store(Arc::new(config));
    }

    /// Folds an observed run into the latency EWMA and the learned-mode beliefs.
    pub fn observe(
        &self,
        model: &str,
        engine: &str,
        ttft_ms: f64,
        per_token_ms: f64,
        slo_met: bool,
    ) {
        let mut learners = self.learners.lock().unwrap_or_else(PoisonError::into_inner);
        learners
            .latency
            .observe(model, engine, ttft_ms, per_token_ms);
        learners.bandit.reward(&arm(model, engine), slo_met);
    }

    /// (SLO met, missed) counts of a model × engine in learned mode.
    pub fn outcomes(&self, model: &str, engine: &str) -> (u64, u64) {
        let learners = self.learners.lock().unwrap_or_else(PoisonError::into_inner);
        learners.bandit.record(&arm(model, engine))
    }

    /// Decides where `request` goes. With `explain`, every stage runs even where an early exit
    /// decided (for `POST /v1/route`).
    pub fn decide(
        &self,
        request: &RouteRequest,
        view: &BoxView<'_>,
        explain: bool,
    ) -> Result<RouteDecision, RouteError> {
        let config = self.config.load();
        let profile = &config.profile;
        let policy = &profile.policy;
        let mut stages = Vec::with_capacity(3);
        let mut reasons = Vec::new();

        // Stage 1.
        let started = Instant::now();
        let mut features = stage1::run(request).map_err(RouteError::BadRequest)?;
        let security = security(&config, request, &mut features, &mut reasons)?;
        if !policy.hints.allow_priority && request.hints.priority.is_some() {
            features.hints.priority = stage1::Priority::Normal;
            reasons.push(format!("policy '{}' ignores priority hints", policy.name));
        }
        stages.push(StageTrace {
            stage: "heuristics",
            output: match features.early_exit {
                Some(exit) => format!("early exit: {} ({})", exit.pipeline, exit.reason),
                None => format!(
                    "text={} images={} audio={} ~{} tokens code={} lang={}",
                    features.modalities.text,
                    features.modalities.images,
                    features.modalities.audio,
                    features.prompt_tokens,
                    features.code.present,
                    features.language.as_ref().map(|l| l.code).unwrap_or("-")
                ),
            },
            nanos: nanos_since(started),
            explain_only: false,
        });
        if let Some(exit) = features.early_exit {
            reasons.push(format!("stage 1: {}", exit.reason));
        }

        // Stage 2.
        let classify = features.modalities.text
            && (explain
                || features.early_exit.is_none()
                || request.endpoint == Endpoint::AudioSpeech);
        let classifier = if classify {
            let started = Instant::now();
            let text = request.joined_text();
            let outcome = stage2::run(
                &config.classifiers,
                &text,
                policy.classifier.tier_a_threshold,
                policy.classifier.tier_b,
            );
            stages.push(StageTrace {
                stage: "intent",
                output: format!(
                    "{} {:.2} ({})",
                    outcome.intent, outcome.confidence, outcome.reason
                ),
                nanos: nanos_since(started),
                explain_only: features.early_exit.is_some(),
            });
            Some(outcome)
        } else {
            None
        };

        // Stage 3.
        let started = Instant::now();
        let pinned = Some(request.model.as_str()).filter(|m| !m.is_empty() && *m != AUTO_MODEL);
        let tasks = step_tasks(request.endpoint, &features);
        if let Some(p) = pinned {
            let Some(m) = view.models.iter().find(|m| m.id == p) else {
                return Err(RouteError::UnknownModel(p.to_owned()));
            };
            let needs = model_task(request.endpoint, tasks.last().copied().unwrap_or("llm"));
            if !m.serves(needs) {
                return Err(RouteError::WrongTask(format!(
                    "model '{p}' does not serve {needs} (it serves {}){}",
                    m.tasks.join(", "),
                    if m.serves("completion") && needs == "chat" {
                        ": it has no chat template, use /v1/completions"
                    } else {
                        ""
                    }
                )));
            }
        }
        let world = World {
            device: &profile.device,
            policy,
            snapshot: view.snapshot,
            models: view.models,
        };
        let max_tokens = request.max_tokens.unwrap_or(view.default_max_tokens);
        let predict_tokens = request
            .max_tokens
            .unwrap_or(TYPICAL_ANSWER_TOKENS)
            .min(max_tokens);
        let mut placements = Vec::with_capacity(tasks.len());
        {
            let mut learners = self.learners.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, task) in tasks.iter().enumerate() {
                let last = i + 1 == tasks.len();
                let ask = Ask {
                    task,
                    model_task: model_task(request.endpoint, task),
                    intent: classifier.as_ref().map(|c| c.intent.as_str()),
                    prompt_tokens: features.prompt_tokens,
                    max_tokens,
                    predict_tokens,
                    security,
                    slo_hint_ms: features.hints.slo_ms,
                    priority: features.hints.priority,
                    // The client's model names the final (generating) step.
                    pinned: pinned.filter(|_| last),
                };
                placements.push(policy::place(&ask, &world, &mut learners));
            }
        }
        let steps: Vec<_> = tasks
            .iter()
            .zip(&placements)
            .map(|(t, p)| RouteDecision::step(t, p))
            .collect();
        let last = placements.last();
        stages.push(StageTrace {
            stage: "policy",
            output: steps
                .iter()
                .map(|s| {
                    format!(
                        "{}: {} on {}",
                        s.task,
                        s.model.as_deref().unwrap_or("none"),
                        s.engine.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            nanos: nanos_since(started),
            explain_only: false,
        });
        if let Some(p) = last {
            reasons.extend(p.reasons.iter().cloned());
        }
        let pipeline = features
            .early_exit
            .map(|e| e.pipeline.to_owned())
            .unwrap_or_else(|| tasks.join("-"));
        let model = last.and_then(|p| p.model.clone());
        if model.is_none() && !explain {
            let task = tasks.last().copied().unwrap_or("llm");
            return Err(RouteError::NoModel(format!(
                "no model can serve {task} now: {}",
                reasons
                    .last()
                    .map(String::as_str)
                    .unwrap_or("nothing installed")
            )));
        }
        let router_ns = stages.iter().map(|s| s.nanos).sum();
        Ok(RouteDecision {
            pipeline,
            model: model.unwrap_or_default(),
            engine: last.and_then(|p| p.engine.clone()),
            requested_model: request.model.clone(),
            intent: classifier.as_ref().map(|c| c.intent),
            intent_confidence: classifier.as_ref().map(|c| c.confidence),
            steps,
            reasons,
            stages,
            heuristics: features,
            classifier,
            placements,
            profile: ProfileNames {
                device: profile.device.name.clone(),
                policy: policy.name.clone(),
            },
            telemetry_age_ms: u64::try_from(view.snapshot.age().as_millis()).unwrap_or(u64::MAX),
            router_ns,
        })
    }
}

/// The security level in force, read from the same configuration snapshot as the rest of the
/// decision: the policy may force one, refuse the client's, or supply a default when the
/// client sent none.
fn security(
    config: &RouterConfig,
    request: &RouteRequest,
    features: &mut stage1::Features,
    reasons: &mut Vec<String>,
) -> Result<SecurityLevel, RouteError> {
    let hints = &config.profile.policy.hints;
    if let Some(forced) = hints.force_security {
        let level = to_router_level(forced);
        if request.hints.security.is_some() && features.hints.security != level {
            reasons.push(format!(
                "policy forces security {level:?} over the client's {:?}",
                features.hints.security
            ));
        }
        features.hints.security = level;
        return Ok(level);
    }
    if request.hints.security.is_none() {
        features.hints.security = to_router_level(hints.default_security);
        return Ok(features.hints.security);
    }
    let asked = features.hints.security;
    if !hints
        .allowed_security
        .iter()
        .any(|l| to_router_level(*l) == asked)
    {
        return Err(RouteError::Refused(format!(
            "security level {asked:?} is not allowed by policy '{}'",
            config.profile.policy.name
        )));
    }
    Ok(asked)
}

/// The task a model must list to run a step: the endpoint decides for the generating step.
fn model_task(endpoint: Endpoint, step: &str) -> &'static str {
    match (endpoint, step) {
        (Endpoint::ChatCompletions, "llm") => "chat",
        (Endpoint::Completions, "llm") => "completion",
        (_, "embedding") => "embedding",
        (_, "stt") => "stt",
        (_, "tts") => "tts",
        (_, "ocr") => "ocr",
        _ => "llm",
    }
}

/// The tasks a request's pipeline runs, in order.
fn step_tasks(endpoint: Endpoint, features: &stage1::Features) -> Vec<&'static str> {
    match endpoint {
        Endpoint::AudioTranscriptions => vec!["stt"],
        Endpoint::AudioSpeech => vec!["tts"],
        Endpoint::Embeddings => vec!["embedding"],
        Endpoint::ImagesOcr => vec!["ocr"],
        Endpoint::ChatCompletions | Endpoint::Completions => {
            let mut tasks = features.input_steps.clone();
            tasks.push("llm");
            tasks
        }
    }
}
