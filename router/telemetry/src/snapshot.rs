//! The [`Snapshot`] type: one consistent reading of the machine, as the router's stage 3 sees it.
//!
//! Absent data is `None` or an empty list, never zero: a VM with no thermal sensors has
//! `temperatures == []`, `max_temperature_c == None` and a [`NoteKind::NoSensors`] note.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::stats::{
    CpuStats, GpuStats, MemoryPressure, MemoryStats, TemperatureReading, ThermalState,
};

/// One reading of the machine, assembled by the collectors of a [`crate::Sampler`].
///
/// Build one with [`Snapshot::now`] (stamps the current time) or `Snapshot::default()` in
/// tests. Serializes without `taken_at` (an `Instant` means nothing outside this process) and
/// without an age: whoever serves a snapshot adds `age_ms` from [`Snapshot::age`] at that time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// When the snapshot was taken, in milliseconds since the Unix epoch (0 when unknown).
    pub taken_at_unix_ms: u64,
    /// Monotonic instant the snapshot was taken, used by [`Snapshot::age`]; `None` for
    /// snapshots built by hand (then the age falls back to the wall clock).
    #[serde(skip)]
    pub taken_at: Option<Instant>,
    /// Names of the collectors that contributed data, in the order they ran.
    pub sources: Vec<String>,
    /// CPU figures, when a collector reported them.
    pub cpu: Option<CpuStats>,
    /// System memory figures, when a collector reported them.
    pub memory: Option<MemoryStats>,
    /// Temperature sensors (thermal zones, hwmon components). Empty when none exist.
    pub temperatures: Vec<TemperatureReading>,
    /// Hottest of [`Snapshot::temperatures`]; `None` when there are no sensors (never 0 °C).
    /// Filled by [`Snapshot::finalize`].
    pub max_temperature_c: Option<f32>,
    /// GPUs (discrete via NVML, or a Jetson's integrated GPU).
    pub gpus: Vec<GpuStats>,
    /// Platform thermal state (macOS reports one; others leave it `None`).
    pub thermal_state: Option<ThermalState>,
    /// Platform memory pressure (macOS reports one; others leave it `None`).
    pub memory_pressure: Option<MemoryPressure>,
    /// Why data is missing: unavailable collectors, absent sensors, collector errors.
    pub notes: Vec<Note>,
}

/// What kind of [`Note`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// A collector is not present on this machine (no driver, wrong platform).
    Unavailable,
    /// A collector ran but found no temperature sensors.
    NoSensors,
    /// A collector failed this time; its data is missing from the snapshot.
    Error,
    /// Informational (replayed data, a figure not measured yet, a cgroup cap).
    Info,
}

/// Why some data is missing or how it was obtained, for operators.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Collector (or subsystem) the note is about, e.g. `nvml`.
    pub source: String,
    /// Kind of note.
    pub kind: NoteKind,
    /// Human-readable reason, e.g. `libnvidia-ml.so.1: cannot open shared object file`.
    pub message: String,
}

impl Note {
    /// Builds a note.
    pub fn new(source: impl Into<String>, kind: NoteKind, message: impl Into<String>) -> Self {
        Note {
            source: source.into(),
            kind,
            message: message.into(),
        }
    }
}

/// `source: message`, e.g. `nvml: unavailable: libnvidia-ml.so.1 not found …` (messages
/// written by the sampler start with `unavailable:`, `failed:` or `panicked:`).
impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Snapshot {
    /// An empty snapshot stamped with the current time.
    pub fn now() -> Self {
        Snapshot {
            taken_at_unix_ms: unix_ms_now(),
            taken_at: Some(Instant::now()),
            ..Snapshot::default()
        }
    }

    /// How old the snapshot is: monotonic when [`Snapshot::taken_at`] is set, otherwise from
    /// the wall clock and [`Snapshot::taken_at_unix_ms`] (zero if that lies in the future).
    pub fn age(&self) -> Duration {
        match self.taken_at {
            Some(at) => at.elapsed(),
            None => Duration::from_millis(unix_ms_now().saturating_sub(self.taken_at_unix_ms)),
        }
    }

    /// Adds a note.
    pub fn note(&mut self, source: impl Into<String>, kind: NoteKind, message: impl Into<String>) {
        self.notes.push(Note::new(source, kind, message));
    }

    /// True if a note of `kind` from `source` is present.
    pub fn has_note(&self, source: &str, kind: NoteKind) -> bool {
        self.notes
            .iter()
            .any(|n| n.source == source && n.kind == kind)
    }

    /// Completes a snapshot after all collectors ran: makes sensor names unique (suffix `#2`,
    /// `#3`, …), computes [`Snapshot::max_temperature_c`] over finite readings, and when no
    /// temperature is known anywhere adds a [`NoteKind::NoSensors`] note unless a collector
    /// already explained it. Idempotent.
    pub fn finalize(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for reading in &mut self.temperatures {
            let count = seen.entry(reading.name.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                reading.name = format!("{}#{}", reading.name, count);
            }
        }
        self.max_temperature_c = max_f32(self.temperatures.iter().map(|t| t.celsius));
        let any_temperature = self.max_temperature_c.is_some()
            || self.max_gpu_temperature_c().is_some()
            || self.thermal_state.is_some();
        let explained = self.notes.iter().any(|n| n.kind == NoteKind::NoSensors);
        if !any_temperature && !explained {
            self.note(
                "telemetry",
                NoteKind::NoSensors,
                "no temperature sensors reported by any collector; temperatures are unknown (not 0 °C)",
            );
        }
    }

    /// Hottest GPU temperature in °C; `None` without GPUs or GPU temperatures.
    pub fn max_gpu_temperature_c(&self) -> Option<f32> {
        max_f32(self.gpus.iter().filter_map(|g| g.temperature_c))
    }

    /// Hottest temperature anywhere (thermal sensors and GPUs) in °C; `None` when no
    /// temperature is known.
    pub fn hottest_c(&self) -> Option<f32> {
        max_f32(
            self.max_temperature_c
                .into_iter()
                .chain(self.temperatures.iter().map(|t| t.celsius))
                .chain(self.max_gpu_temperature_c()),
        )
    }

    /// Free GPU memory summed over all GPUs that report it, in bytes; `None` without such a GPU.
    /// A model must fit on one GPU: use [`Snapshot::largest_vram_free_bytes`] for placement.
    pub fn vram_free_bytes(&self) -> Option<u64> {
        let mut known = self
            .gpus
            .iter()
            .filter_map(|g| g.vram_free_bytes)
            .peekable();
        known.peek()?;
        Some(known.fold(0u64, u64::saturating_add))
    }

    /// Free memory of the GPU with the most free memory, in bytes; `None` without such a GPU.
    pub fn largest_vram_free_bytes(&self) -> Option<u64> {
        self.gpus.iter().filter_map(|g| g.vram_free_bytes).max()
    }

    /// Free GPU memory of GPU `index`, in bytes.
    pub fn gpu_vram_free_bytes(&self, index: u32) -> Option<u64> {
        self.gpus
            .iter()
            .find(|g| g.index == index)
            .and_then(|g| g.vram_free_bytes)
    }

    /// Available system memory in bytes; `None` when no collector reported memory.
    pub fn memory_available_bytes(&self) -> Option<u64> {
        self.memory.as_ref().map(|m| m.available_bytes)
    }

    /// Overall CPU load in percent, when measured.
    pub fn cpu_load_percent(&self) -> Option<f32> {
        self.cpu.as_ref().and_then(|c| c.load_percent)
    }

    /// True when any GPU reports a heat or power throttle reason.
    pub fn any_gpu_throttling(&self) -> bool {
        self.gpus.iter().any(GpuStats::is_throttling)
    }
}

/// Maximum of the finite values, `None` when there are none.
pub(crate) fn max_f32(values: impl Iterator<Item = f32>) -> Option<f32> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            Some(m) if m >= v => Some(m),
            _ => Some(v),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sensor(name: &str, c: f32) -> TemperatureReading {
        TemperatureReading {
            name: name.into(),
            celsius: c,
            critical_c: None,
            source: "test".into(),
        }
    }

    #[test]
    fn empty_snapshot_has_no_temperature_and_says_so() {
        let mut s = Snapshot::now();
        s.finalize();
        assert_eq!(s.max_temperature_c, None);
        assert_eq!(s.hottest_c(), None);
        assert!(s.has_note("telemetry", NoteKind::NoSensors));
        s.finalize();
        assert_eq!(s.notes.len(), 1, "finalize is idempotent");
    }

    #[test]
    fn finalize_computes_max_and_dedups_names() {
        let mut s = Snapshot::now();
        s.temperatures = vec![
            sensor("cpu", 50.0),
            sensor("cpu", 61.5),
            sensor("bad", f32::NAN),
        ];
        s.gpus.push(GpuStats {
            temperature_c: Some(70.0),
            vram_free_bytes: Some(10),
            ..GpuStats::default()
        });
        s.gpus.push(GpuStats {
            index: 1,
            vram_free_bytes: Some(5),
            ..GpuStats::default()
        });
        s.finalize();
        assert_eq!(s.max_temperature_c, Some(61.5));
        assert_eq!(s.temperatures[1].name, "cpu#2");
        assert_eq!(s.max_gpu_temperature_c(), Some(70.0));
        assert_eq!(s.hottest_c(), Some(70.0));
        assert_eq!(s.vram_free_bytes(), Some(15));
        assert_eq!(s.largest_vram_free_bytes(), Some(10));
        assert_eq!(s.gpu_vram_free_bytes(1), Some(5));
        assert!(s.notes.is_empty());
    }

    #[test]
    fn serializes_without_instant_and_round_trips() {
        let mut s = Snapshot::now();
        s.finalize();
        let v = serde_json::to_value(&s).unwrap();
        assert!(v["taken_at_unix_ms"].as_u64().is_some_and(|ms| ms > 0));
        assert!(v.get("taken_at").is_none() && v.get("age_ms").is_none());
        assert!(v["max_temperature_c"].is_null());
        let back: Snapshot = serde_json::from_value(v).unwrap();
        assert_eq!(back.taken_at, None);
        assert_eq!(back.notes, s.notes);
        assert!(
            back.age() < Duration::from_secs(60),
            "age from the wall clock"
        );
    }

    #[test]
    fn throttling_ignores_idle() {
        let mut g = GpuStats {
            throttle_reasons: Some(vec!["gpu_idle".into()]),
            ..GpuStats::default()
        };
        assert!(!g.is_throttling());
        g.throttle_reasons = Some(vec!["sw_thermal_slowdown".into()]);
        assert!(g.is_throttling());
    }
}
