//! `GET /health` (liveness + readiness + models), `/health/live`, `/health/ready`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::state::AppState;

#[derive(Serialize)]
struct ModelHealth {
    id: String,
    format: String,
    loaded: bool,
    engine: Option<String>,
    memory_bytes: Option<u64>,
    active: usize,
    queued: usize,
    /// ONNX Runtime models: the execution provider in use and those passed over, with reasons.
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_provider: Option<switchyard_engines::onnx::ProviderReport>,
    /// Why the profile's first engine for this model is not the one serving it.
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_fallback: Option<String>,
    /// The file serving each role under the device profile (source or converter variant).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    artifacts: Vec<switchyard_converter::serving::ServedArtifact>,
}

#[derive(Serialize)]
struct EngineHealth {
    name: &'static str,
    available: bool,
    reason: Option<String>,
    /// CPU instruction sets the engine's kernels were built for (llama.cpp: `AVX2`, `AVX512`,
    /// `AMX_INT8`, ...), so an operator can tell a portable build from a native one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cpu_features: Vec<String>,
}

#[derive(Serialize)]
struct ProfileHealth {
    /// What `profile` names (built-in name or file).
    source: String,
    device: String,
    policy: String,
    /// Set while the last reload failed: the profile above stays in force.
    reload_error: Option<String>,
}

/// The router's intent tier B: which engine runs its embedding model, and whether it is loaded
/// (it loads on the first request tier A is unsure about, unless preloaded).
#[derive(Serialize)]
struct TierBHealth {
    /// `onnxruntime` or `llama.cpp`.
    engine: String,
    loaded: bool,
    /// Why it could not load (tier A then decides alone; the load is not retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct RouterHealth {
    /// `null` when tier B is not installed (tier A decides alone).
    tier_b: Option<TierBHealth>,
}

#[derive(Serialize)]
struct TelemetryHealth {
    age_ms: u64,
    sources: Vec<String>,
    notes: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct Health {
    status: &'static str,
    live: bool,
    ready: bool,
    reasons: Vec<String>,
    models: Vec<ModelHealth>,
    engines: Vec<EngineHealth>,
    profile: ProfileHealth,
    router: RouterHealth,
    telemetry: TelemetryHealth,
}

fn readiness(state: &AppState) -> (bool, Vec<String>) {
    let mut reasons = Vec::new();
    if state.is_draining() {
        reasons.push("draining: shutting down".to_owned());
    }
    if state.models.is_empty() {
        reasons.push("no models found: run `switchyard models fetch`".to_owned());
    }
    (reasons.is_empty(), reasons)
}

pub(super) async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    let (ready, reasons) = readiness(&state);
    let services = state.services.loaded();
    let models = state
        .models
        .values()
        .map(|entry| {
            let status = entry.loaded().map(|m| m.status());
            // Non-LLM models (OCR, speech, embeddings) are loaded by the services.
            if let Some(service) = services.iter().find(|s| s.id == entry.manifest.id) {
                return ModelHealth {
                    id: entry.manifest.id.clone(),
                    format: entry.manifest.format.clone(),
                    loaded: true,
                    engine: Some(service.engine.to_owned()),
                    memory_bytes: None,
                    active: 0,
                    queued: 0,
                    execution_provider: service.provider.clone(),
                    engine_fallback: service.fallback.clone(),
                    artifacts: entry.served.clone(),
                };
            }
            ModelHealth {
                id: entry.manifest.id.clone(),
                format: entry.manifest.format.clone(),
                loaded: status.is_some(),
                engine: status.as_ref().map(|s| s.engine.clone()),
                memory_bytes: status.as_ref().map(|s| s.memory_bytes),
                active: status.as_ref().map_or(0, |s| s.active),
                queued: status.as_ref().map_or(0, |s| s.queued),
                execution_provider: None,
                engine_fallback: None,
                artifacts: entry.served.clone(),
            }
        })
        .collect();
    let engines = switchyard_engines::availability(&state.services.models_dir)
        .into_iter()
        .map(|a| EngineHealth {
            name: a.name,
            available: a.status.is_ok(),
            reason: a.status.err(),
            cpu_features: a.cpu_features,
        })
        .collect();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if state.is_draining() {
            "draining"
        } else if ready {
            "ok"
        } else {
            "not_ready"
        },
        live: true,
        ready,
        reasons,
        models,
        router: RouterHealth {
            tier_b: state.services.tier_b_embedder.as_ref().map(|t| {
                use switchyard_intent::tier_b::SentenceEmbedder;
                TierBHealth {
                    engine: t.engine().to_owned(),
                    loaded: t.is_loaded(),
                    error: t.load_error().map(str::to_owned),
                }
            }),
        },
        engines,
        profile: {
            let config = state.routing.router.config();
            ProfileHealth {
                source: state.routing.profile.source.clone(),
                device: config.profile.device.name.clone(),
                policy: config.profile.policy.name.clone(),
                reload_error: state.routing.profile.error(),
            }
        },
        telemetry: {
            let snapshot = state.routing.feed.latest();
            TelemetryHealth {
                age_ms: u64::try_from(snapshot.age().as_millis()).unwrap_or(u64::MAX),
                sources: snapshot.sources.clone(),
                notes: snapshot
                    .notes
                    .iter()
                    .map(|n| format!("{}: {}", n.source, n.message))
                    .collect(),
            }
        },
    };
    (code, Json(body))
}

pub(super) async fn live() -> &'static str {
    "ok"
}

pub(super) async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    match readiness(&state) {
        (true, _) => (StatusCode::OK, "ready".to_owned()),
        (false, reasons) => (StatusCode::SERVICE_UNAVAILABLE, reasons.join("; ")),
    }
}
