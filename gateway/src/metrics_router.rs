//! Router, profile and telemetry metrics (fixed names, `switchyard_route_*`,
//! `switchyard_profile_*`, `switchyard_telemetry_*`). Telemetry gauges are refreshed from the
//! latest snapshot at scrape time.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use switchyard_router::RouteDecision;
use switchyard_telemetry::Snapshot;

/// Stage latencies live in microseconds to milliseconds.
const STAGE_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2,
];

/// Metrics of routing decisions, profiles and telemetry.
pub struct RouterMetrics {
    /// `switchyard_route_decisions_total{pipeline,model,engine}`.
    pub decisions: IntCounterVec,
    /// `switchyard_route_stage_duration_seconds{stage}`.
    pub stage_duration: HistogramVec,
    /// `switchyard_route_intent_total{intent,tier}`.
    pub intents: IntCounterVec,
    /// `switchyard_route_errors_total{kind}`.
    pub errors: IntCounterVec,
    /// `switchyard_profile_reloads_total{result}` (`ok`, `error`).
    pub reloads: IntCounterVec,
    /// `switchyard_profile_reload_error`: 1 while the last reload failed (the old profile runs).
    pub reload_error: IntGauge,
    /// `switchyard_profile_info{device,policy}`: 1 for the profiles in force.
    pub profile_info: IntGaugeVec,
    /// `switchyard_telemetry_value{metric}`: CPU load, memory, hottest temperature, snapshot age.
    pub telemetry: GaugeVec,
    /// `switchyard_telemetry_gpu{gpu,metric}`: VRAM, temperature, utilisation, power per GPU.
    pub gpu: GaugeVec,
    /// `switchyard_telemetry_source_up{source}`: 1 when the collector contributed.
    pub source_up: IntGaugeVec,
    /// `switchyard_thermal_state`: 0 cool, 1 hot, 2 critical (the router's latch).
    pub thermal_state: IntGauge,
}

impl RouterMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let decisions = IntCounterVec::new(
            Opts::new(
                "switchyard_route_decisions_total",
                "Routing decisions by pipeline, model and planned engine",
            ),
            &["pipeline", "model", "engine"],
        )?;
        let stage_duration = HistogramVec::new(
            HistogramOpts::new(
                "switchyard_route_stage_duration_seconds",
                "Time spent in each router stage",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let intents = IntCounterVec::new(
            Opts::new("switchyard_route_intent_total", "Stage-2 intents by tier"),
            &["intent", "tier"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "switchyard_route_errors_total",
                "Requests the router refused",
            ),
            &["kind"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "switchyard_profile_reloads_total",
                "Profile reloads by result",
            ),
            &["result"],
        )?;
        let reload_error = IntGauge::new(
            "switchyard_profile_reload_error",
            "1 while the last profile reload failed and the previous profile stays in force",
        )?;
        let profile_info = IntGaugeVec::new(
            Opts::new(
                "switchyard_profile_info",
                "The device and policy profiles in force",
            ),
            &["device", "policy"],
        )?;
        let telemetry = GaugeVec::new(
            Opts::new(
                "switchyard_telemetry_value",
                "Latest telemetry snapshot: cpu_load_percent, memory_total_bytes, memory_available_bytes, hottest_celsius, snapshot_age_seconds",
            ),
            &["metric"],
        )?;
        let gpu = GaugeVec::new(
            Opts::new(
                "switchyard_telemetry_gpu",
                "Latest GPU telemetry: vram_total_bytes, vram_used_bytes, vram_free_bytes, temperature_celsius, utilisation_percent, power_watts",
            ),
            &["gpu", "metric"],
        )?;
        let source_up = IntGaugeVec::new(
            Opts::new(
                "switchyard_telemetry_source_up",
                "1 when a telemetry collector contributed to the latest snapshot",
            ),
            &["source"],
        )?;
        let thermal_state = IntGauge::new(
            "switchyard_thermal_state",
            "Router thermal latch: 0 cool, 1 hot, 2 critical",
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(stage_duration.clone()))?;
        registry.register(Box::new(intents.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(reload_error.clone()))?;
        registry.register(Box::new(profile_info.clone()))?;
        registry.register(Box::new(telemetry.clone()))?;
        registry.register(Box::new(gpu.clone()))?;
        registry.register(Box::new(source_up.clone()))?;
        registry.register(Box::new(thermal_state.clone()))?;
        Ok(RouterMetrics {
            decisions,
            stage_duration,
            intents,
            errors,
            reloads,
            reload_error,
            profile_info,
            telemetry,
            gpu,
            source_up,
            thermal_state,
        })
    }

    /// Counts a decision and its stage timings.
    pub fn record(&self, decision: &RouteDecision) {
        self.decisions
            .with_label_values(&[
                decision.pipeline.as_str(),
                decision.model.as_str(),
                decision.engine.as_deref().unwrap_or("none"),
            ])
            .inc();
        for stage in &decision.stages {
            self.stage_duration
                .with_label_values(&[stage.stage])
                .observe(stage.nanos as f64 / 1e9);
        }
        if let Some(c) = &decision.classifier {
            let tier = match c.tier {
                switchyard_router::stage2::Tier::A => "a",
                switchyard_router::stage2::Tier::B => "b",
            };
            self.intents
                .with_label_values(&[c.intent.as_str(), tier])
                .inc();
        }
        if let Some(p) = decision.placements.last() {
            self.thermal_state.set(match p.thermal.state {
                switchyard_router::stage3::hysteresis::ThermalState::Cool => 0,
                switchyard_router::stage3::hysteresis::ThermalState::Hot => 1,
                switchyard_router::stage3::hysteresis::ThermalState::Critical => 2,
            });
        }
    }

    /// Sets the telemetry gauges from `snapshot`.
    pub fn refresh_telemetry(&self, snapshot: &Snapshot) {
        let set = |metric: &str, value: f64| self.telemetry.with_label_values(&[metric]).set(value);
        if let Some(load) = snapshot.cpu.as_ref().and_then(|c| c.load_percent) {
            set("cpu_load_percent", f64::from(load));
        }
        if let Some(m) = &snapshot.memory {
            set("memory_total_bytes", m.total_bytes as f64);
            set("memory_available_bytes", m.available_bytes as f64);
        }
        if let Some(t) = snapshot.hottest_c() {
            set("hottest_celsius", f64::from(t));
        }
        set("snapshot_age_seconds", snapshot.age().as_secs_f64());
        for g in &snapshot.gpus {
            let gpu = g.index.to_string();
            let put = |metric: &str, value: Option<f64>| {
                if let Some(v) = value {
                    self.gpu.with_label_values(&[gpu.as_str(), metric]).set(v);
                }
            };
            put("vram_total_bytes", g.vram_total_bytes.map(|v| v as f64));
            put("vram_used_bytes", g.vram_used_bytes.map(|v| v as f64));
            put("vram_free_bytes", g.vram_free_bytes.map(|v| v as f64));
            put("temperature_celsius", g.temperature_c.map(f64::from));
            put("utilisation_percent", g.utilisation_percent.map(f64::from));
            put("power_watts", g.power_w.map(f64::from));
        }
        self.source_up.reset();
        for source in &snapshot.sources {
            self.source_up.with_label_values(&[source.as_str()]).set(1);
        }
    }
}
