//! The hardware policy: candidates from the policy profile (tiers of models) and the device
//! profile (engine preference per task), feasibility filters, then scoring (predicted latency
//! against the SLO, quality tier wanted by the intent, thermal headroom, queue depth) or, in
//! learned mode, Thompson sampling over the feasible candidates.

use serde::Serialize;
use switchyard_profiles::{DeviceProfile, PolicyProfile};
use switchyard_telemetry::Snapshot;

use super::ewma::{LatencyEstimate, LatencyTable};
use super::feasibility;
use super::hysteresis::{ThermalLatch, ThermalState};
use super::inputs::{is_local_cpu, ModelView};
use super::thompson::Bandit;
use crate::stage1::{Priority, SecurityLevel};

/// What the policy is asked to place.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Task of the step as the device profile names it (`llm`, `embedding`, `stt`, `tts`,
    /// `ocr`).
    pub task: &'a str,
    /// Task a model must list to serve the step (`chat`, `completion`, `embedding`, ...).
    pub model_task: &'a str,
    /// Intent label from stage 2, when the request has text.
    pub intent: Option<&'a str>,
    /// Estimated prompt tokens.
    pub prompt_tokens: u32,
    /// Tokens the request may generate (for the context check).
    pub max_tokens: u32,
    /// Tokens the latency prediction assumes: the request's `max_tokens` when it set one, else
    /// a typical answer length.
    pub predict_tokens: u32,
    /// Effective security level.
    pub security: SecurityLevel,
    /// Latency target from the request's hint, if any.
    pub slo_hint_ms: Option<u32>,
    /// Priority hint: `high` weighs queue depth double (avoid busy models), `low` half.
    pub priority: Priority,
    /// A model the client named (it is honoured if it can run).
    pub pinned: Option<&'a str>,
}

/// The profiles and live state the policy reads.
#[derive(Clone, Copy)]
pub struct World<'a> {
    /// Device profile.
    pub device: &'a DeviceProfile,
    /// Policy profile.
    pub policy: &'a PolicyProfile,
    /// Latest telemetry.
    pub snapshot: &'a Snapshot,
    /// Models the gateway can serve.
    pub models: &'a [ModelView],
}

/// State the policy learns across requests.
#[derive(Debug, Clone)]
pub struct Learners {
    /// Latency EWMA per model × engine.
    pub latency: LatencyTable,
    /// Thompson-sampling beliefs per model × engine.
    pub bandit: Bandit,
    /// Thermal hysteresis latch.
    pub latch: ThermalLatch,
}

impl Learners {
    /// Fresh learners; `seed` makes learned mode reproducible.
    pub fn new(seed: u64) -> Self {
        Learners {
            latency: LatencyTable::default(),
            bandit: Bandit::seeded(seed),
            latch: ThermalLatch::default(),
        }
    }
}

/// One candidate as the trace shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Model id.
    pub model: String,
    /// Engine (`family/device`).
    pub engine: String,
    /// Policy tier the model belongs to.
    pub tier: Option<String>,
    /// Why it cannot run now (`None` = feasible).
    pub rejected: Option<String>,
    /// Predicted latency for this request, ms.
    pub predicted_ms: f64,
    /// Score (lower is better); only for feasible candidates.
    pub score: Option<f64>,
    /// Position of the engine in the device profile's preference for the task (0 = first).
    pub engine_rank: usize,
}

/// The device's thermal view used by the decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thermal {
    /// Latched state.
    pub state: ThermalState,
    /// Hottest reading, C (`None`: no sensors).
    pub celsius: Option<f32>,
    /// Throttle limit from the device profile.
    pub throttle_c: f32,
    /// Hysteresis band from the policy.
    pub band_c: f32,
}

/// What the policy decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Chosen model, if any candidate can run.
    pub model: Option<String>,
    /// Chosen engine.
    pub engine: Option<String>,
    /// Tier the intent asked for.
    pub wanted_tier: Option<String>,
    /// SLO used, ms.
    pub slo_ms: u32,
    /// `scored`, `learned` or `pinned`.
    pub mode: &'static str,
    /// Thermal view.
    pub thermal: Thermal,
    /// Every candidate considered.
    pub candidates: Vec<Candidate>,
    /// Why, in order.
    pub reasons: Vec<String>,
}

/// Prior latency before anything was observed: weight streaming bound, GPUs 8× faster.
fn prior(model: &ModelView, engine: &str) -> LatencyEstimate {
    let mb = model.weights_bytes as f64 / 1e6;
    let speed = if is_local_cpu(engine) { 1.0 } else { 8.0 };
    LatencyEstimate {
        ttft_ms: (20.0 + mb * 0.3) / speed,
        per_token_ms: (1.0 + mb * 0.04) / speed,
        samples: 0,
    }
}

fn tier_of<'p>(policy: &'p PolicyProfile, model: &str) -> Option<&'p str> {
    policy
        .tiers
        .iter()
        .find(|(_, t)| t.models.iter().any(|m| m == model))
        .map(|(name, _)| name.as_str())
}

/// Engines to try for `model`: the device profile's order for the task first (engines the
/// profile prefers but this box lacks come back as `Err`, so the trace can say so), then any
/// other engine the model can run on here.
fn engines_for(
    device: &DeviceProfile,
    task: &str,
    model: &ModelView,
) -> Vec<Result<String, String>> {
    let preferred = crate::profile_view::preferred_engines(device, task).unwrap_or(&[]);
    let mut out: Vec<Result<String, String>> = preferred
        .iter()
        .map(|e| {
            if model.engines.iter().any(|have| have == e) {
                Ok(e.clone())
            } else {
                Err(e.clone())
            }
        })
        .collect();
    out.extend(
        model
            .engines
            .iter()
            .filter(|e| !preferred.contains(e))
            .cloned()
            .map(Ok),
    );
    out
}

/// Places one step.
pub fn place(ask: &Ask<'_>, world: &World<'_>, learners: &mut Learners) -> Placement {
    let policy = world.policy;
    let mut reasons = Vec::new();
    let celsius = world.snapshot.hottest_c();
    let state = learners.latch.update(
        celsius,
        world.device.thermal.throttle_c,
        world.device.thermal.critical_c,
        policy.thermal.hysteresis_c,
    );
    let thermal = Thermal {
        state,
        celsius,
        throttle_c: world.device.thermal.throttle_c,
        band_c: policy.thermal.hysteresis_c,
    };
    let route = crate::profile_view::route_for(policy, ask.task, ask.intent, ask.prompt_tokens);
    let wanted_tier = route.tier.clone();
    reasons.extend(route.reasons);
    let slo_ms = ask
        .slo_hint_ms
        .or(route.slo_ms)
        .unwrap_or(policy.default_slo_ms);

    // Candidate models: the pinned one, else the policy's tiers, else anything serving the task.
    let mut models: Vec<&ModelView> = Vec::new();
    // Installed tier models that cannot do this task, listed so the trace says why.
    let mut unfit: Vec<Candidate> = Vec::new();
    let mode = if let Some(pinned) = ask.pinned {
        models.extend(world.models.iter().filter(|m| m.id == pinned));
        reasons.push(format!("model '{pinned}' named by the client"));
        "pinned"
    } else {
        for tier in policy.tiers.values() {
            for id in &tier.models {
                let Some(m) = world.models.iter().find(|m| &m.id == id) else {
                    continue;
                };
                if models.iter().any(|x| x.id == m.id) || unfit.iter().any(|u| u.model == m.id) {
                    continue;
                }
                if m.serves(ask.model_task) {
                    models.push(m);
                } else {
                    unfit.push(Candidate {
                        model: m.id.clone(),
                        engine: "-".to_owned(),
                        tier: tier_of(policy, &m.id).map(str::to_owned),
                        rejected: Some(format!(
                            "{} does not serve {} (it serves {})",
                            m.id,
                            ask.model_task,
                            m.tasks.join(", ")
                        )),
                        predicted_ms: 0.0,
                        score: None,
                        engine_rank: 0,
                    });
                }
            }
        }
        if models.is_empty() {
            models.extend(world.models.iter().filter(|m| m.serves(ask.model_task)));
            if !models.is_empty() {
                reasons.push(format!(
                    "no model of the policy's tiers is installed for {}: any installed model may serve",
                    ask.model_task
                ));
            }
        }
        if policy.learned.enabled {
            "learned"
        } else {
            "scored"
        }
    };

    // The prompt must fit; generation past the context just stops early (finish_reason
    // `length`), so max_tokens counts towards memory but not towards feasibility.
    let context = ask.prompt_tokens.saturating_add(1);
    let wanted_quality = wanted_tier
        .as_deref()
        .and_then(|t| policy.tiers.get(t))
        .map(|t| f64::from(t.quality));
    let mut candidates = unfit;
    for model in models {
        let tier = tier_of(policy, &model.id);
        for (engine_rank, engine) in engines_for(world.device, ask.task, model)
            .into_iter()
            .enumerate()
        {
            let (engine, mut rejected) = match engine {
                Ok(e) => (e, None),
                Err(e) => {
                    let why = format!("engine {e} is not available on this box");
                    (e, Some(why))
                }
            };
            let latency = learners
                .latency
                .get(&model.id, &engine, prior(model, &engine));
            let predicted_ms = latency.predict_ms(ask.predict_tokens);
            rejected = rejected
                .or_else(|| feasibility::security(ask.security, &engine))
                .or_else(|| feasibility::context(model, context))
                .or_else(|| {
                    let kv_tokens = ask.prompt_tokens.saturating_add(ask.max_tokens);
                    let kv_tokens = match model.context_per_request {
                        0 => kv_tokens,
                        limit => kv_tokens.min(limit),
                    };
                    feasibility::memory(
                        model,
                        &engine,
                        kv_tokens,
                        world.models,
                        world.device,
                        policy,
                        world.snapshot,
                    )
                    .refusal(&model.id)
                });
            candidates.push(Candidate {
                model: model.id.clone(),
                engine,
                tier: tier.map(str::to_owned),
                rejected,
                predicted_ms,
                score: None,
                engine_rank,
            });
        }
    }

    // Thermal: a filter with a way out, so a hot box still answers on what it has.
    if state != ThermalState::Cool {
        let fallback = policy.thermal.fallback_tier.as_str();
        let refusals: Vec<Option<String>> = candidates
            .iter()
            .map(|c| feasibility::thermal(state, c.tier.as_deref(), &c.engine, fallback))
            .collect();
        let any_left = candidates
            .iter()
            .zip(&refusals)
            .any(|(c, r)| c.rejected.is_none() && r.is_none());
        if any_left && mode != "pinned" {
            for (c, r) in candidates.iter_mut().zip(refusals) {
                if c.rejected.is_none() {
                    c.rejected = r;
                }
            }
            reasons.push(format!(
                "thermal {:?} at {:.1} C (throttle {:.1}, band {:.1}): fallback tier '{fallback}'",
                state,
                celsius.unwrap_or(f32::NAN),
                thermal.throttle_c,
                thermal.band_c
            ));
        } else {
            reasons.push(format!(
                "thermal {state:?}, but no fallback candidate can run: kept the others"
            ));
        }
    }

    // Scoring.
    let weights = &policy.scoring;
    let queue_factor = match ask.priority {
        Priority::High => 2.0,
        Priority::Normal => 1.0,
        Priority::Low => 0.5,
    };
    let max_quality = policy
        .tiers
        .values()
        .map(|t| f64::from(t.quality))
        .fold(1.0, f64::max);
    let headroom = thermal_pressure(celsius, thermal.throttle_c);
    for c in candidates.iter_mut().filter(|c| c.rejected.is_none()) {
        let load = world
            .models
            .iter()
            .find(|m| m.id == c.model)
            .map(ModelView::load)
            .unwrap_or(0.0);
        // Under the SLO only a small tie-breaker; over it, the overshoot counts in full.
        let ratio = c.predicted_ms / f64::from(slo_ms.max(1));
        let latency = 0.1 * ratio.min(1.0) + (ratio - 1.0).clamp(0.0, 4.0);
        let quality = match (
            wanted_quality,
            c.tier.as_deref().and_then(|t| policy.tiers.get(t)),
        ) {
            (Some(w), Some(t)) => (w - f64::from(t.quality)).abs(),
            (Some(_), None) => 1.0,
            (None, _) => 0.0,
        };
        // Near the throttle limit, heavier tiers pay more: a nudge towards lighter work before
        // the hard thermal filter takes over.
        let heat = headroom
            * c.tier
                .as_deref()
                .and_then(|t| policy.tiers.get(t))
                .map_or(1.0, |t| f64::from(t.quality) / max_quality);
        c.score = Some(
            f64::from(weights.latency) * latency
                + f64::from(weights.quality) * quality
                + f64::from(weights.thermal) * heat
                + f64::from(weights.queue) * queue_factor * load
                // The device profile's engine order breaks ties.
                + 0.01 * c.engine_rank as f64,
        );
    }

    let feasible: Vec<&Candidate> = candidates.iter().filter(|c| c.rejected.is_none()).collect();
    let best_scored = feasible
        .iter()
        .min_by(|a, b| {
            a.score
                .unwrap_or(f64::MAX)
                .total_cmp(&b.score.unwrap_or(f64::MAX))
        })
        .copied();
    // A model the client named is kept when only estimates stand against it (its engine then
    // answers precisely, e.g. a 400 for a prompt over its context); security still holds.
    let pinned_fallback = (mode == "pinned" && feasible.is_empty())
        .then(|| {
            candidates.iter().find(|c| {
                feasibility::security(ask.security, &c.engine).is_none()
                    && !c
                        .rejected
                        .as_deref()
                        .is_some_and(|r| r.starts_with("engine "))
            })
        })
        .flatten();
    if let Some(c) = pinned_fallback {
        reasons.push(format!(
            "kept {} as named by the client although: {}",
            c.model,
            c.rejected.as_deref().unwrap_or("-")
        ));
    }
    let chosen = if let Some(c) = pinned_fallback {
        Some(c)
    } else if mode == "learned" && feasible.len() > 1 {
        let keys: Vec<String> = feasible.iter().map(|c| arm(&c.model, &c.engine)).collect();
        let min_samples = u64::from(policy.learned.min_samples);
        let observed: u64 = keys
            .iter()
            .map(|k| {
                let (w, l) = learners.bandit.record(k);
                w + l
            })
            .sum();
        if observed < min_samples {
            reasons.push(format!(
                "learned: {observed}/{min_samples} outcomes so far, fixed weights decide"
            ));
            best_scored
        } else {
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let drawn = learners.bandit.choose(&refs);
            let pick = drawn.and_then(|d| keys.iter().position(|k| k == d));
            if let Some(i) = pick {
                reasons.push(format!("learned: Thompson draw chose {}", keys[i]));
            }
            pick.and_then(|i| feasible.get(i).copied()).or(best_scored)
        }
    } else {
        best_scored
    };
    match chosen {
        Some(c) => reasons.push(format!(
            "chose {} on {} (tier {}, predicted {:.0} ms vs SLO {slo_ms} ms)",
            c.model,
            c.engine,
            c.tier.as_deref().unwrap_or("-"),
            c.predicted_ms
        )),
        None if candidates.iter().all(|c| c.engine == "-") => {
            reasons.push(format!("no installed model serves {}", ask.model_task))
        }
        None => reasons.push("no candidate can run now".to_owned()),
    }
    Placement {
        model: chosen.map(|c| c.model.clone()),
        engine: chosen.map(|c| c.engine.clone()),
        wanted_tier,
        slo_ms,
        mode,
        thermal,
        candidates,
        reasons,
    }
}

/// Key of a model × engine in the learners.
pub fn arm(model: &str, engine: &str) -> String {
    format!("{model}@{engine}")
}

/// 0 when 20 C or more under the throttle limit, rising to 1 at the limit.
fn thermal_pressure(celsius: Option<f32>, throttle: f32) -> f64 {
    celsius
        .map(|t| f64::from((t - (throttle - 20.0)) / 20.0).clamp(0.0, 1.0))
        .unwrap_or(0.0)
}
