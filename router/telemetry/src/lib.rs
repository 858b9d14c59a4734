//! Switchyard telemetry: collectors sampled in the background into [`Snapshot`]s that the
//! router reads without blocking.
//!
//! - [`Sampler::start`] runs [`Collector`]s on a named thread once per period and publishes each
//!   finished snapshot; [`TelemetryHandle::latest`] returns it (an `Arc`, never blocking, never
//!   doing I/O; [`Snapshot::age`] says how old it is).
//! - [`default_collectors`]: [`SysinfoCollector`] (CPU, memory, hwmon temperatures),
//!   [`NvmlCollector`] (NVIDIA GPUs), [`JetsonCollector`] (Jetson sysfs) and the macOS
//!   collector. Each one that cannot exist here stays in the list as an
//!   [`UnavailableCollector`], so every snapshot carries an `unavailable: <why>` note for it.
//! - [`ReplayCollector`] plays a recorded JSONL trace ([`ReplayTrace`], format in
//!   `traces/README.md`) at a chosen speed, or step by step for simulations
//!   ([`ReplayCollector::snapshot_at`], [`ReplayCollector::steps`]).
//!
//! Missing data is `None` or empty, never zero: with no temperature sensors
//! [`Snapshot::hottest_c`] is `None` and a [`NoteKind::NoSensors`] note says so.
//!
//! ```no_run
//! use std::time::Duration;
//! let telemetry = switchyard_telemetry::Sampler::start_default(Duration::from_secs(1));
//! let snapshot = telemetry.latest();
//! let hottest = snapshot.hottest_c(); // Option<f32>
//! let free_vram = snapshot.largest_vram_free_bytes(); // Option<u64>
//! # let _ = (hottest, free_vram);
//! ```

mod collector;
mod jetson;
mod macos;
mod nvml;
mod replay;
mod sampler;
mod snapshot;
mod stats;
mod sysinfo_collector;
mod trace;

use std::time::Duration;

pub use collector::{Collector, CollectorError, UnavailableCollector};
pub use jetson::JetsonCollector;
#[cfg(target_os = "macos")]
pub use macos::MacosCollector;
pub use nvml::NvmlCollector;
pub use replay::{ManualClock, ReplayCollector};
pub use sampler::{
    collect_once, Sampler, SamplerStats, TelemetryHandle, MAX_CONSECUTIVE_PANICS, THREAD_NAME,
};
pub use snapshot::{unix_ms_now, Note, NoteKind, Snapshot};
pub use stats::{
    CpuStats, GpuStats, MemoryPressure, MemoryStats, TemperatureReading, ThermalState,
    HEAT_OR_POWER_THROTTLE_REASONS,
};
pub use sysinfo_collector::SysinfoCollector;
pub use trace::{EndBehavior, ReplayTrace, TraceError, TraceHeader, TraceRecord};

/// Name the macOS collector reports under (also on other platforms, where it is unavailable).
pub const MACOS_COLLECTOR_NAME: &str = "macos";

/// The collectors for this machine, in sampling order: `sysinfo`, `nvml`, `jetson`, `macos`.
///
/// Never fails and never panics: a collector that cannot exist here (no NVIDIA driver, not a
/// Jetson, not macOS, sysinfo unsupported) is an [`UnavailableCollector`] or, for NVML, a
/// collector that retries initialisation every [`NvmlCollector::DEFAULT_RETRY`]; either way each
/// snapshot carries an `unavailable: <why>` note naming it. Takes a few milliseconds (NVML
/// initialisation, a look at `/sys` and `/proc`).
pub fn default_collectors() -> Vec<Box<dyn Collector + Send>> {
    default_collectors_with(NvmlCollector::DEFAULT_RETRY)
}

fn default_collectors_with(nvml_retry: Duration) -> Vec<Box<dyn Collector + Send>> {
    let mut collectors: Vec<Box<dyn Collector + Send>> = Vec::with_capacity(4);
    collectors.push(match SysinfoCollector::new() {
        Ok(c) => Box::new(c),
        Err(e) => Box::new(UnavailableCollector::new(
            SysinfoCollector::NAME,
            e.reason().to_string(),
        )),
    });
    collectors.push(Box::new(NvmlCollector::with_retry(nvml_retry)));
    collectors.push(match JetsonCollector::detect("/") {
        Ok(c) => Box::new(c),
        Err(e) => Box::new(UnavailableCollector::new(
            JetsonCollector::NAME,
            e.reason().to_string(),
        )),
    });
    collectors.push(macos::platform_collector().unwrap_or_else(|| {
        Box::new(UnavailableCollector::new(
            MACOS_COLLECTOR_NAME,
            format!("not macOS (this build is for {})", std::env::consts::OS),
        ))
    }));
    collectors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_collectors_have_stable_names_and_never_panic() {
        let mut collectors = default_collectors_with(Duration::from_secs(3600));
        let names: Vec<_> = collectors.iter().map(|c| c.name()).collect();
        assert_eq!(names, ["sysinfo", "nvml", "jetson", "macos"]);
        let s = collect_once(&mut collectors);
        assert!(s.sources.contains(&"sysinfo".to_string()), "{:?}", s.notes);
        assert!(s.memory.as_ref().is_some_and(|m| m.total_bytes > 0));
        if cfg!(not(target_os = "macos")) {
            let note = s.notes.iter().find(|n| n.source == "macos").unwrap();
            assert_eq!(note.kind, NoteKind::Unavailable);
            assert!(note.message.starts_with("unavailable: not macOS"), "{note}");
        }
        // Temperatures are either measured or explained, never invented.
        if s.hottest_c().is_none() {
            assert!(
                s.notes.iter().any(|n| n.kind == NoteKind::NoSensors),
                "{:?}",
                s.notes
            );
        }
    }
}
