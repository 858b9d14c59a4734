//! [`SysinfoCollector`]: CPU, memory and hwmon temperatures through the `sysinfo` crate.

use std::time::Instant;

use sysinfo::{
    Components, CpuRefreshKind, MemoryRefreshKind, RefreshKind, System, MINIMUM_CPU_UPDATE_INTERVAL,
};

use crate::collector::{Collector, CollectorError};
use crate::snapshot::{NoteKind, Snapshot};
use crate::stats::{CpuStats, MemoryStats, TemperatureReading};

/// CPU (logical cores, overall load), memory (total/available/used, capped by a cgroup limit)
/// and temperature components (Linux: `/sys/class/hwmon`).
///
/// Keeps its `System` between collects because CPU load is the difference between two
/// refreshes at least [`MINIMUM_CPU_UPDATE_INTERVAL`] apart: the first collects report
/// `load_percent: None` until such a pair exists. With no temperature components (as on VMs
/// without `/sys/class/hwmon`) it adds a [`NoteKind::NoSensors`] note and no readings.
pub struct SysinfoCollector {
    system: System,
    components: Result<Components, String>,
    last_cpu_refresh: Instant,
    last_load: Option<f32>,
}

impl SysinfoCollector {
    /// Name used in sources and notes.
    pub const NAME: &'static str = "sysinfo";

    /// Initialises sysinfo and takes the CPU baseline.
    pub fn new() -> Result<Self, CollectorError> {
        let kind = RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing().with_usage())
            .with_memory(MemoryRefreshKind::nothing().with_ram());
        let system = System::new_with_specifics(kind)
            .map_err(|e| CollectorError::Unavailable(format!("sysinfo init failed: {e}")))?;
        let components = Components::new_with_refreshed_list().map_err(|e| e.to_string());
        Ok(SysinfoCollector {
            system,
            components,
            last_cpu_refresh: Instant::now(),
            last_load: None,
        })
    }

    fn collect_cpu(&mut self) -> CpuStats {
        if self.last_cpu_refresh.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL {
            self.system.refresh_cpu_usage();
            self.last_cpu_refresh = Instant::now();
            let load = self.system.global_cpu_usage();
            self.last_load = load.is_finite().then_some(load.clamp(0.0, 100.0));
        }
        let mut logical_cores = self.system.cpus().len();
        if logical_cores == 0 {
            logical_cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        }
        CpuStats {
            logical_cores,
            load_percent: self.last_load,
            load_average_1m: System::load_average().ok().map(|l| l.one),
        }
    }

    fn collect_memory(&mut self, into: &mut Snapshot) -> MemoryStats {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let mut total = self.system.total_memory();
        let mut available = self.system.available_memory();
        if let Some(limits) = self.system.cgroup_limits() {
            if limits.total_memory > 0 && limits.total_memory < total {
                total = limits.total_memory;
                available = available.min(limits.free_memory);
                into.note(
                    Self::NAME,
                    NoteKind::Info,
                    format!("memory capped by cgroup limit of {total} bytes"),
                );
            }
        }
        MemoryStats {
            total_bytes: total,
            available_bytes: available,
            used_bytes: total.saturating_sub(available),
        }
    }

    fn collect_temperatures(&mut self, into: &mut Snapshot) {
        let components = match &mut self.components {
            Ok(c) => c,
            Err(e) => {
                into.note(
                    Self::NAME,
                    NoteKind::NoSensors,
                    format!("temperature components unavailable: {e}"),
                );
                return;
            }
        };
        components.refresh(false);
        let mut readable = 0usize;
        for component in components.iter() {
            let Some(celsius) = component.temperature().filter(|t| t.is_finite()) else {
                continue;
            };
            readable += 1;
            into.temperatures.push(TemperatureReading {
                name: component.label().to_string(),
                celsius,
                critical_c: component.critical().filter(|t| t.is_finite()),
                source: Self::NAME.to_string(),
            });
        }
        if readable == 0 {
            let message = if components.is_empty() {
                "no temperature sensors found (no hwmon components); temperature is unknown, not 0 °C"
                    .to_string()
            } else {
                format!(
                    "{} temperature components present but none readable",
                    components.len()
                )
            };
            into.note(Self::NAME, NoteKind::NoSensors, message);
        }
    }
}

impl Collector for SysinfoCollector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
        let cpu = self.collect_cpu();
        if cpu.load_percent.is_none() {
            into.note(
                Self::NAME,
                NoteKind::Info,
                "CPU load not measured yet (needs two samples at least 200 ms apart)",
            );
        }
        into.cpu = Some(cpu);
        let memory = self.collect_memory(into);
        into.memory = Some(memory);
        self.collect_temperatures(into);
        Ok(())
    }
}
