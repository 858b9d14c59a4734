//! Shared gateway state: configuration, the model catalog (manifests found in the models
//! directory) with lazily loaded engines, and metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use switchyard_core::{EngineConfig, EngineError, LoadedModel, Manifest};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::metrics_router::RouterMetrics;
use crate::routing::{self, ModelStatic, ProfileState, Routing, TelemetryFeed};
use switchyard_converter::serving::ServedArtifact;

/// One model the gateway can serve.
pub struct ModelEntry {
    /// Its manifest as the engine sees it: each role the engine loads recorded with the file
    /// the device profile chose for it (see [`ModelEntry::served`]).
    pub manifest: Manifest,
    /// Per role the engine loads, the file chosen under the device profile (the source or a
    /// converter variant) and why. Empty when there is nothing to choose.
    pub served: Vec<ServedArtifact>,
    /// Unix time the manifest was found (OpenAI's `created`).
    pub created: u64,
    loaded: OnceCell<Arc<dyn LoadedModel>>,
}

impl ModelEntry {
    /// The loaded model, if it is loaded.
    pub fn loaded(&self) -> Option<&Arc<dyn LoadedModel>> {
        self.loaded.get()
    }
}

/// Everything the HTTP handlers share.
pub struct AppState {
    /// The configuration in force.
    pub config: Config,
    /// Engine settings derived from it.
    pub engine_config: EngineConfig,
    /// Models by id.
    pub models: BTreeMap<String, Arc<ModelEntry>>,
    /// Metrics.
    pub metrics: Metrics,
    /// Router, profile and telemetry metrics.
    pub router_metrics: RouterMetrics,
    /// The router, its profile and its telemetry feed.
    pub routing: Routing,
    /// Non-LLM model services (embeddings, OCR, speech).
    pub services: crate::services::Services,
    draining: AtomicBool,
}

/// The engine family that runs `manifest` in this gateway under `device` (`llama.cpp`,
/// `onnx`, `tract`).
fn engine_family(
    manifest: &Manifest,
    device: &switchyard_profiles::DeviceProfile,
) -> Option<&'static str> {
    if manifest.format == "gguf" {
        return Some("llama.cpp");
    }
    crate::services::media_engine_on(manifest, Some(device)).and_then(|e| e.split('/').next())
}

/// `manifest` with the files the device profile chose for its engine, and the choices.
fn choose_artifacts(
    device: &switchyard_profiles::DeviceProfile,
    manifest: Manifest,
) -> (Manifest, Vec<ServedArtifact>) {
    let Some(family) = engine_family(&manifest, device) else {
        return (manifest, Vec::new());
    };
    let served = switchyard_converter::serving::choose(device, &manifest, family);
    for choice in &served {
        info!(
            model = %manifest.id,
            role = %choice.role,
            file = %choice.path,
            precision = %choice.precision,
            reason = %choice.reason,
            "artifact chosen"
        );
    }
    (
        switchyard_converter::serving::serving_manifest(&manifest, &served),
        served,
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl AppState {
    /// State over the models found in `models_dir` (each `<id>/manifest.json`), routing with
    /// snapshots from `feed`.
    pub fn from_models_dir(
        config: Config,
        models_dir: &Path,
        feed: TelemetryFeed,
    ) -> anyhow::Result<Self> {
        let mut models = BTreeMap::new();
        // The device profile picks the file each model's engine loads; a bad profile is
        // reported by `build` below.
        let device = config.resolve_profile().ok().map(|(p, _)| p.device);
        // Runtime libraries (e.g. ONNX Runtime) live in the models directory but are no models.
        let servable = crate::models::scan(models_dir)
            .into_iter()
            .filter(|m| !m.tasks.iter().all(|t| t == "runtime"));
        for manifest in servable {
            let created =
                std::fs::metadata(manifest.dir.join(switchyard_core::manifest::MANIFEST_FILE))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs())
                    .unwrap_or_else(unix_now);
            let (manifest, served) = match &device {
                Some(device) => choose_artifacts(device, manifest),
                None => (manifest, Vec::new()),
            };
            let entry = ModelEntry {
                manifest,
                served,
                created,
                loaded: OnceCell::new(),
            };
            models.insert(entry.manifest.id.clone(), Arc::new(entry));
        }
        let tier_b = crate::tier_b::load(models_dir, &config, device.as_ref());
        let tier_b_embedder = tier_b.as_ref().map(|t| Arc::clone(&t.embedder));
        let mut state = Self::build(config, models, feed, tier_b.map(|t| t.setup), models_dir)?;
        state.services.tier_b_embedder = tier_b_embedder;
        Ok(state)
    }

    /// State over already loaded models (tests, embedding the gateway).
    pub fn with_loaded(config: Config, loaded: Vec<Arc<dyn LoadedModel>>) -> anyhow::Result<Self> {
        let mut models = BTreeMap::new();
        for model in loaded {
            let id = model.status().id;
            let manifest = Manifest {
                schema: Manifest::SCHEMA,
                id: id.clone(),
                tasks: vec!["chat".into(), "completion".into()],
                format: "in-memory".into(),
                artifacts: Vec::new(),
                source: switchyard_core::manifest::Source {
                    kind: "in-memory".into(),
                    packages: Vec::new(),
                    original_path: None,
                },
                license: None,
                dir: Default::default(),
            };
            let entry = ModelEntry {
                manifest,
                served: Vec::new(),
                created: unix_now(),
                loaded: OnceCell::new_with(Some(model)),
            };
            models.insert(id, Arc::new(entry));
        }
        let feed = TelemetryFeed::Live(switchyard_telemetry::TelemetryHandle::manual(
            switchyard_telemetry::Snapshot::now(),
        ));
        let models_dir = config.models_dir(None);
        Self::build(config, models, feed, None, &models_dir)
    }

    fn build(
        config: Config,
        models: BTreeMap<String, Arc<ModelEntry>>,
        feed: TelemetryFeed,
        tier_b: Option<switchyard_router::TierBSetup>,
        models_dir: &Path,
    ) -> anyhow::Result<Self> {
        let engine_config = config.engine_config();
        let (profile, files) = config.resolve_profile()?;
        let statics: BTreeMap<String, ModelStatic> = models
            .iter()
            .filter(|(_, e)| e.loaded().is_none())
            .map(|(id, e)| {
                let measured = routing::measure(&e.manifest, &engine_config, &profile.device);
                (id.clone(), measured)
            })
            .collect();
        let metrics = Metrics::new()?;
        for entry in models.values() {
            for choice in &entry.served {
                metrics
                    .model_artifact
                    .with_label_values(&[
                        entry.manifest.id.as_str(),
                        choice.role.as_str(),
                        choice.path.as_str(),
                        choice.precision.as_str(),
                    ])
                    .set(1);
            }
        }
        let router_metrics = RouterMetrics::new(metrics.registry())?;
        router_metrics
            .profile_info
            .with_label_values(&[profile.device.name.as_str(), profile.policy.name.as_str()])
            .set(1);
        let device = profile.device.clone();
        let router_config = routing::router_config(profile, tier_b.clone())?;
        Ok(AppState {
            routing: Routing {
                router: switchyard_router::Router::new(router_config),
                feed,
                statics,
                profile: ProfileState {
                    source: config.profile.clone(),
                    files,
                    error: Default::default(),
                },
                tier_b,
            },
            services: crate::services::Services::new(
                models_dir.to_path_buf(),
                engine_config.threads as usize,
            )
            .with_profile(&device)?,
            engine_config,
            config,
            models,
            metrics,
            router_metrics,
            draining: AtomicBool::new(false),
        })
    }

    /// Image limits from `[media]`.
    pub fn image_limits(&self) -> switchyard_media::ImageLimits {
        switchyard_media::ImageLimits {
            max_bytes: self.config.media.max_upload_bytes,
            max_pixels: self.config.media.max_image_pixels,
        }
    }

    /// Audio limits from `[media]`.
    pub fn audio_limits(&self) -> switchyard_media::AudioLimits {
        switchyard_media::AudioLimits {
            max_bytes: self.config.media.max_upload_bytes,
            max_seconds: f64::from(self.config.media.max_audio_seconds),
        }
    }

    /// Model ids, sorted.
    pub fn model_ids(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    /// Loads model `id` now rather than on its first request (the `preload` setting): an LLM
    /// through its engine, a speech, vision or embedding model through its service (for
    /// all-MiniLM-L6-v2 that includes the router's tier B, which shares its session).
    pub async fn preload(&self, id: &str) -> Result<(), EngineError> {
        let entry = self.models.get(id).ok_or_else(|| {
            EngineError::invalid(format!("unknown model '{id}'"), Some("preload"))
        })?;
        let manifest = &entry.manifest;
        let has = |task: &str| manifest.tasks.iter().any(|t| t == task);
        if has("embedding") {
            // Tier B always runs all-MiniLM-L6-v2; another embedding model leaves it alone.
            let tier_b = self
                .services
                .tier_b_embedder
                .as_ref()
                .filter(|_| id == switchyard_engines::onnx::MINILM_ID);
            if let Some(tier_b) = tier_b {
                let tier_b = Arc::clone(tier_b);
                tokio::task::spawn_blocking(move || tier_b.load_now())
                    .await
                    .map_err(|e| EngineError::Load(e.to_string()))?
                    .map_err(EngineError::Load)?;
            }
            self.services.embedder(manifest).await.map(|_| ())
        } else if has("stt") {
            self.services.stt(manifest).await.map(|_| ())
        } else if has("tts") {
            self.services.tts(manifest).await.map(|_| ())
        } else if has("ocr") {
            self.services.ocr(manifest).await.map(|_| ())
        } else if has("vad") {
            self.services.vad(manifest).await.map(|_| ())
        } else {
            self.model(id).await.map(|_| ())
        }
    }

    /// The loaded model `id`, loading it on first use (off the async executor).
    pub async fn model(&self, id: &str) -> Result<Arc<dyn LoadedModel>, EngineError> {
        let entry = self
            .models
            .get(id)
            .ok_or_else(|| EngineError::invalid(format!("unknown model '{id}'"), Some("model")))?;
        let engine_config = self.engine_config.clone();
        let loaded = entry
            .loaded
            .get_or_try_init(|| {
                let manifest = entry.manifest.clone();
                async move {
                    let span = tracing::info_span!("load_model", model = %manifest.id);
                    tokio::task::spawn_blocking(move || {
                        let _entered = span.enter();
                        let engine = switchyard_engines::engine_for(&manifest)
                            .map_err(EngineError::Unavailable)?;
                        // A file that changed since it was recorded is never loaded.
                        if let Some(primary) = manifest.primary() {
                            switchyard_core::manifest::verify_artifact(
                                &manifest.resolve(primary),
                                primary,
                                true,
                            )
                            .map_err(EngineError::Load)?;
                        }
                        let started = std::time::Instant::now();
                        let model = engine.load(&manifest, &engine_config)?;
                        info!(
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "model ready"
                        );
                        Ok::<_, EngineError>(model)
                    })
                    .await
                    .map_err(|e| EngineError::Load(format!("loader panicked: {e}")))?
                }
            })
            .await
            .inspect_err(|e| warn!(model = id, error = %e, "model load failed"))?;
        Ok(Arc::clone(loaded))
    }

    /// Whether SIGTERM was received.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the gateway as draining: health turns not-ready, new generations get 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Refreshes the per-model gauges from the models' status.
    pub fn refresh_model_gauges(&self) {
        for service in self.services.loaded() {
            self.metrics
                .loaded
                .with_label_values(&[service.id.as_str(), service.engine])
                .set(1);
            if let Some(report) = &service.provider {
                self.metrics
                    .execution_provider
                    .with_label_values(&[service.id.as_str(), report.used.as_str(), "used"])
                    .set(1);
                for skipped in &report.skipped {
                    self.metrics
                        .execution_provider
                        .with_label_values(&[
                            service.id.as_str(),
                            skipped.provider.as_str(),
                            "skipped",
                        ])
                        .set(1);
                }
            }
        }
        for (id, entry) in &self.models {
            match entry.loaded() {
                Some(model) => {
                    let status = model.status();
                    self.metrics
                        .loaded
                        .with_label_values(&[id.as_str(), status.engine.as_str()])
                        .set(1);
                    self.metrics
                        .memory
                        .with_label_values(&[id.as_str()])
                        .set(i64::try_from(status.memory_bytes).unwrap_or(i64::MAX));
                    self.metrics
                        .queue_depth
                        .with_label_values(&[id.as_str()])
                        .set(i64::try_from(status.queued).unwrap_or(i64::MAX));
                    self.metrics
                        .active
                        .with_label_values(&[id.as_str()])
                        .set(i64::try_from(status.active).unwrap_or(i64::MAX));
                }
                None => {
                    self.metrics
                        .queue_depth
                        .with_label_values(&[id.as_str()])
                        .set(0);
                    self.metrics.active.with_label_values(&[id.as_str()]).set(0);
                }
            }
        }
    }

    /// Stops every loaded model's worker.
    pub fn shutdown_models(&self) {
        for entry in self.models.values() {
            if let Some(model) = entry.loaded() {
                model.shutdown();
            }
        }
    }
}
