//! The parts of a [`crate::Snapshot`]: CPU, memory, temperature sensors, GPUs, and the platform
//! thermal state and memory pressure levels.
//!
//! Deserialization (replay traces) requires the figures whose absence would read as zero
//! (`celsius`, memory totals): a missing temperature must never become 0 °C.

use serde::{Deserialize, Serialize};

/// GPU throttle reasons that mean "the GPU is slowed down by heat or power", as opposed to
/// idling or an operator's clock setting.
pub const HEAT_OR_POWER_THROTTLE_REASONS: &[&str] = &[
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_slowdown",
    "sw_power_cap",
    "hw_power_brake_slowdown",
];

/// CPU figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CpuStats {
    /// Logical cores (hardware threads) visible to the OS.
    pub logical_cores: usize,
    /// Overall CPU load in percent (0–100, averaged over all cores). `None` until two samples
    /// far enough apart exist (CPU usage is a difference between two readings).
    pub load_percent: Option<f32>,
    /// One-minute load average where the OS reports one.
    pub load_average_1m: Option<f64>,
}

/// System memory figures, in bytes. All three are required in traces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryStats {
    /// Total memory (capped by a cgroup limit when one is lower).
    pub total_bytes: u64,
    /// Memory available for new allocations without swapping.
    pub available_bytes: u64,
    /// Memory in use.
    pub used_bytes: u64,
}

/// One named temperature sensor. `name` and `celsius` are required in traces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureReading {
    /// Sensor name (thermal zone type, hwmon label); unique within a snapshot.
    pub name: String,
    /// Current temperature in degrees Celsius.
    pub celsius: f32,
    /// Critical trip point in °C, where the platform reports one.
    #[serde(default)]
    pub critical_c: Option<f32>,
    /// Collector that read it (`sysinfo`, `jetson`, `replay`).
    #[serde(default)]
    pub source: String,
}

/// One GPU. Fields a collector cannot read stay `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpuStats {
    /// Index of the GPU on this machine (NVML index; 0 for a Jetson).
    pub index: u32,
    /// Product name (e.g. `NVIDIA GeForce RTX 4090`, `Jetson Orin Nano (ga10b)`).
    pub name: String,
    /// Memory usable by the GPU in bytes (on unified-memory devices: system memory).
    pub vram_total_bytes: Option<u64>,
    /// GPU memory in use, in bytes.
    pub vram_used_bytes: Option<u64>,
    /// GPU memory free, in bytes (on unified-memory devices: `MemAvailable`).
    pub vram_free_bytes: Option<u64>,
    /// GPU die temperature in °C.
    pub temperature_c: Option<f32>,
    /// GPU utilisation in percent (0–100).
    pub utilisation_percent: Option<f32>,
    /// Power draw in watts.
    pub power_w: Option<f32>,
    /// Current GPU clock in hertz.
    pub frequency_hz: Option<u64>,
    /// Active clock throttle reasons (`sw_thermal_slowdown`, `sw_power_cap`, …); `None` when
    /// the collector cannot tell, empty when it can and there are none.
    pub throttle_reasons: Option<Vec<String>>,
    /// True when the GPU shares system memory (Jetson): VRAM figures are system memory.
    pub unified_memory: bool,
    /// Collector that read it (`nvml`, `jetson`, `replay`).
    pub source: String,
}

impl GpuStats {
    /// True when a throttle reason caused by heat or power is active
    /// (see [`HEAT_OR_POWER_THROTTLE_REASONS`]).
    pub fn is_throttling(&self) -> bool {
        self.throttle_reasons.as_ref().is_some_and(|reasons| {
            reasons
                .iter()
                .any(|r| HEAT_OR_POWER_THROTTLE_REASONS.contains(&r.as_str()))
        })
    }
}

/// Platform thermal state (macOS `NSProcessInfoThermalState` levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThermalState {
    /// No thermal pressure.
    Nominal,
    /// Slightly elevated; the system may reduce background work.
    Fair,
    /// High; performance is being reduced.
    Serious,
    /// Critical; the system is throttling hard.
    Critical,
}

impl ThermalState {
    /// Numeric level for metrics: nominal 0, fair 1, serious 2, critical 3.
    pub fn level(self) -> u8 {
        match self {
            ThermalState::Nominal => 0,
            ThermalState::Fair => 1,
            ThermalState::Serious => 2,
            ThermalState::Critical => 3,
        }
    }
}

/// Platform memory pressure (macOS `kern.memorystatus_vm_pressure_level` levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryPressure {
    /// Enough free memory.
    Normal,
    /// Memory is getting scarce.
    Warning,
    /// The system is reclaiming memory aggressively.
    Critical,
}

impl MemoryPressure {
    /// Numeric level for metrics: normal 0, warning 1, critical 2.
    pub fn level(self) -> u8 {
        match self {
            MemoryPressure::Normal => 0,
            MemoryPressure::Warning => 1,
            MemoryPressure::Critical => 2,
        }
    }
}
