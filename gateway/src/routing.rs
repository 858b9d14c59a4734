//! Wires the router into the gateway: the profile in force (and its reload), the telemetry
//! feed, and the [`ModelView`]s the policy reads (static memory figures measured once through
//! the engines, live load read from the loaded models at decision time).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::{EngineConfig, Manifest};
use switchyard_intent::TierA;
use switchyard_profiles::Profile;
use switchyard_router::{Classifiers, ModelView, Router, RouterConfig, TierBSetup};
use switchyard_telemetry::{Snapshot, TelemetryHandle};

/// Where the router's snapshots come from.
#[derive(Clone)]
pub enum TelemetryFeed {
    /// The background sampler (live collectors or a replayed trace).
    Live(TelemetryHandle),
    /// One fixed snapshot (tests, embedding).
    Fixed(Arc<Snapshot>),
}

impl TelemetryFeed {
    /// The latest snapshot; never blocks.
    pub fn latest(&self) -> Arc<Snapshot> {
        match self {
            TelemetryFeed::Live(handle) => handle.latest(),
            TelemetryFeed::Fixed(s) => Arc::clone(s),
        }
    }
}

/// What a model needs, measured once: weights and KV cache per token.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemoryFigures {
    /// Bytes of weights (and fixed buffers).
    pub weights_bytes: u64,
    /// KV bytes per context token.
    pub kv_bytes_per_token: u64,
}

/// The static part of a model's view.
#[derive(Debug, Clone)]
pub struct ModelStatic {
    /// Router tasks (`llm`, `embedding`, ...) as manifest tasks.
    pub tasks: Vec<String>,
    /// Engines that can run it here (`llama.cpp/cpu`).
    pub engines: Vec<String>,
    /// Memory figures.
    pub memory: MemoryFigures,
}

/// Measures a model's memory through its engine: two estimates at different context sizes give
/// the per-token KV cost and, by difference, the weights.
pub fn measure(
    manifest: &Manifest,
    config: &EngineConfig,
    device: &switchyard_profiles::DeviceProfile,
) -> ModelStatic {
    let engine = switchyard_engines::engine_for(manifest);
    let media = crate::services::media_engine_on(manifest, Some(device));
    let engines = match (&engine, media) {
        (_, Some(media)) => vec![media.to_owned()],
        (Ok(e), None) => vec![format!(
            "{}/{}",
            e.name(),
            switchyard_engines::device_of(e.name())
        )],
        (Err(_), None) => Vec::new(),
    };
    if media.is_some() {
        // Non-LLM models keep no KV cache: their weights are the artifacts on disk.
        let weights_bytes = manifest
            .artifacts
            .iter()
            .filter(|a| !a.role.starts_with("source"))
            .map(|a| a.size)
            .sum();
        return ModelStatic {
            tasks: manifest.tasks.clone(),
            engines,
            memory: MemoryFigures {
                weights_bytes,
                kv_bytes_per_token: 0,
            },
        };
    }
    let memory = engine
        .ok()
        .and_then(|e| {
            let one = |context: u32| {
                let c = EngineConfig {
                    slots: 1,
                    context_per_slot: context,
                    ..config.clone()
                };
                e.memory_estimate(manifest, &c).ok()
            };
            let (small, large) = (one(1024)?, one(2048)?);
            let per_token = large.saturating_sub(small) / 1024;
            Some(MemoryFigures {
                weights_bytes: small.saturating_sub(per_token * 1024),
                kv_bytes_per_token: per_token,
            })
        })
        .unwrap_or_default();
    // The file knows better than a manifest written by an older version (e.g. a GGUF without
    // a chat template serves completions only).
    let tasks = manifest
        .primary_path()
        .and_then(|p| switchyard_engines::inspect(&p).ok())
        .map(|i| i.tasks)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| manifest.tasks.clone());
    ModelStatic {
        tasks,
        engines,
        memory,
    }
}

/// The profile in force, where it came from, and the last reload error.
pub struct ProfileState {
    /// The name or path given on the command line / in the config.
    pub source: String,
    /// Files to watch for changes (empty for built-ins).
    pub files: Vec<PathBuf>,
    /// The last reload error (`None` after a good load).
    pub error: Mutex<Option<String>>,
}

impl ProfileState {
    /// The last reload error, if the current profile is a survivor of a failed reload.
    pub fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the outcome of a reload.
    pub fn set_error(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }
}

/// Everything routing needs at run time.
pub struct Routing {
    /// The router.
    pub router: Router,
    /// Telemetry.
    pub feed: TelemetryFeed,
    /// Static figures per model id.
    pub statics: BTreeMap<String, ModelStatic>,
    /// The profile source and reload status.
    pub profile: ProfileState,
    /// Tier B, kept across reloads.
    pub tier_b: Option<TierBSetup>,
}

/// Builds the router configuration for a profile.
pub fn router_config(profile: Profile, tier_b: Option<TierBSetup>) -> anyhow::Result<RouterConfig> {
    let tier_a = TierA::builtin()?;
    Ok(RouterConfig {
        profile: Arc::new(profile),
        classifiers: Classifiers {
            tier_a: Arc::new(tier_a),
            tier_b,
        },
    })
}

impl Routing {
    /// The views the policy reads now: statics plus each model's live load. Models not loaded
    /// yet are assumed to get `default_context` tokens per request.
    pub fn views(
        &self,
        models: &BTreeMap<String, Arc<crate::state::ModelEntry>>,
        default_context: u32,
    ) -> Vec<ModelView> {
        models
            .iter()
            .map(|(id, entry)| {
                let statics = self.statics.get(id);
                let status = entry.loaded().map(|m| (m.status(), m.capabilities()));
                let mut engines = statics.map(|s| s.engines.clone()).unwrap_or_default();
                if let Some((s, _)) = &status {
                    if !engines.contains(&s.engine) {
                        engines.insert(0, s.engine.clone());
                    }
                }
                ModelView {
                    id: id.clone(),
                    tasks: statics
                        .map(|s| s.tasks.clone())
                        .unwrap_or_else(|| entry.manifest.tasks.clone()),
                    engines,
                    weights_bytes: statics
                        .map(|s| s.memory.weights_bytes)
                        .filter(|w| *w > 0)
                        .or(status.as_ref().map(|(s, _)| s.memory_bytes))
                        .unwrap_or(0),
                    kv_bytes_per_token: statics.map(|s| s.memory.kv_bytes_per_token).unwrap_or(0),
                    // Non-LLM models truncate or segment long inputs themselves: no context
                    // limit to check (0 = unlimited).
                    context_per_request: if crate::services::media_engine(&entry.manifest).is_some()
                    {
                        0
                    } else {
                        status
                            .as_ref()
                            .map(|(_, c)| c.context_per_request)
                            .unwrap_or(default_context)
                    },
                    loaded: status.is_some(),
                    queued: status.as_ref().map(|(s, _)| s.queued).unwrap_or(0),
                    active: status.as_ref().map(|(s, _)| s.active).unwrap_or(0),
                    slots: status
                        .as_ref()
                        .map(|(_, c)| c.parallel_slots as usize)
                        .unwrap_or(1),
                }
            })
            .collect()
    }
}
