//! Recorded telemetry traces (JSONL) for the [`crate::ReplayCollector`].
//!
//! Format (see also `traces/README.md`): one JSON object per line. The first non-blank line
//! may be a header without `t_ms` (`{"synthetic": true, "description": "..."}`); it is kept as
//! [`TraceHeader`] and not replayed. Every other line is a [`TraceRecord`]: `t_ms`
//! (milliseconds since the start of the trace, strictly increasing) plus any of `cpu`,
//! `memory`, `temperatures`, `gpus`, `thermal_state`, `memory_pressure` with the same shapes
//! as in [`crate::Snapshot`], and an optional free-text `comment`. Unknown keys are errors (a
//! typo must not silently drop a sensor), and so are figures that contradict each other (free
//! VRAM above total). Blank lines are skipped. Errors name the file and the 1-based line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::{
    CpuStats, GpuStats, MemoryPressure, MemoryStats, TemperatureReading, ThermalState,
};

/// Why a trace could not be loaded. Messages name the file and, for bad lines, the line.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The trace file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a valid header or record.
    #[error("{}:{line}: {message}", .path.display())]
    Line {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file holds no records (a header alone is not a trace).
    #[error("{}: trace has no records", .path.display())]
    Empty {
        /// The trace file.
        path: PathBuf,
    },
    /// Replay speed must be finite and greater than zero.
    #[error("invalid replay speed {0}: must be finite and > 0")]
    BadSpeed(f64),
}

/// The optional first line of a trace: metadata, never replayed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceHeader {
    /// True when the trace was generated rather than recorded on a real device.
    pub synthetic: bool,
    /// What the trace shows.
    pub description: String,
    /// Device the trace describes, e.g. `Jetson Orin Nano 8GB`.
    pub device: Option<String>,
    /// Any other metadata keys.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One timed record of a trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceRecord {
    /// Milliseconds since the start of the trace.
    pub t_ms: u64,
    /// CPU figures.
    #[serde(default)]
    pub cpu: Option<CpuStats>,
    /// System memory figures.
    #[serde(default)]
    pub memory: Option<MemoryStats>,
    /// Temperature sensors.
    #[serde(default)]
    pub temperatures: Vec<TemperatureReading>,
    /// GPUs.
    #[serde(default)]
    pub gpus: Vec<GpuStats>,
    /// Platform thermal state.
    #[serde(default)]
    pub thermal_state: Option<ThermalState>,
    /// Platform memory pressure.
    #[serde(default)]
    pub memory_pressure: Option<MemoryPressure>,
    /// Free text for people reading the trace (e.g. "load starts"); not replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Keys that make a line a record rather than the header.
const RECORD_KEYS: &[&str] = &[
    "cpu",
    "memory",
    "temperatures",
    "gpus",
    "thermal_state",
    "memory_pressure",
];

/// Plausible temperatures in a trace, °C: outside this a value is a unit mistake (millidegrees,
/// Kelvin) rather than a reading.
const PLAUSIBLE_CELSIUS: std::ops::RangeInclusive<f32> = -60.0..=150.0;

impl TraceRecord {
    /// Checks that the figures are consistent; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = &self.memory {
            if m.available_bytes > m.total_bytes || m.used_bytes > m.total_bytes {
                return Err(format!(
                    "memory: available_bytes {} / used_bytes {} exceed total_bytes {}",
                    m.available_bytes, m.used_bytes, m.total_bytes
                ));
            }
        }
        for t in &self.temperatures {
            if !PLAUSIBLE_CELSIUS.contains(&t.celsius) {
                return Err(format!(
                    "temperature {:?}: {} °C is outside {:?} (millidegrees or Kelvin?)",
                    t.name, t.celsius, PLAUSIBLE_CELSIUS
                ));
            }
        }
        for g in &self.gpus {
            let total = g.vram_total_bytes.unwrap_or(u64::MAX);
            for (field, value) in [
                ("vram_free_bytes", g.vram_free_bytes),
                ("vram_used_bytes", g.vram_used_bytes),
            ] {
                if value.is_some_and(|v| v > total) {
                    return Err(format!(
                        "gpu {}: {field} {} exceeds vram_total_bytes {total}",
                        g.index,
                        value.unwrap_or_default()
                    ));
                }
            }
            if g.temperature_c
                .is_some_and(|c| !PLAUSIBLE_CELSIUS.contains(&c))
            {
                return Err(format!(
                    "gpu {}: temperature_c {:?} is outside {:?}",
                    g.index, g.temperature_c, PLAUSIBLE_CELSIUS
                ));
            }
        }
        Ok(())
    }
}

/// What replay does after the last record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndBehavior {
    /// Keep reporting the last record.
    #[default]
    Hold,
    /// Start again from the first record. The loop period is the last `t_ms` plus the
    /// interval between the last two records, so the last record is held for one step.
    Loop,
}

/// A parsed trace: optional header and at least one record, sorted by time.
///
/// JSONL, one object per line: an optional first-line [`TraceHeader`] (no `t_ms`), then
/// [`TraceRecord`]s with strictly increasing `t_ms`. Bad lines are [`TraceError::Line`] with the
/// file, the 1-based line and what is wrong. Full format: `traces/README.md` in this crate.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayTrace {
    origin: PathBuf,
    header: Option<TraceHeader>,
    records: Vec<TraceRecord>,
}

impl ReplayTrace {
    /// Reads and parses a JSONL trace file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TraceError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses trace text; `origin` names it in errors (a file path or e.g. `<inline>`).
    pub fn parse(text: &str, origin: impl Into<PathBuf>) -> Result<Self, TraceError> {
        let origin = origin.into();
        let line_error = |line: usize, message: String| TraceError::Line {
            path: origin.clone(),
            line,
            message,
        };
        let mut header = None;
        let mut records: Vec<TraceRecord> = Vec::new();
        let mut seen_content = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(trimmed)
                .map_err(|e| line_error(line, format!("invalid JSON: {e}")))?;
            let Some(object) = value.as_object() else {
                return Err(line_error(line, "expected a JSON object".to_string()));
            };
            let first = !seen_content;
            seen_content = true;
            if !object.contains_key("t_ms") {
                let record_key = RECORD_KEYS.iter().find(|k| object.contains_key(**k));
                if let Some(key) = record_key {
                    return Err(line_error(
                        line,
                        format!("missing field `t_ms` (the line has `{key}`, so it is a record)"),
                    ));
                }
                if first {
                    let parsed: TraceHeader = serde_json::from_value(value)
                        .map_err(|e| line_error(line, format!("invalid header: {e}")))?;
                    header = Some(parsed);
                    continue;
                }
                return Err(line_error(
                    line,
                    "missing `t_ms` (only the first line may be a header without it)".to_string(),
                ));
            }
            let record: TraceRecord = serde_json::from_value(value)
                .map_err(|e| line_error(line, format!("invalid record: {e}")))?;
            record
                .validate()
                .map_err(|e| line_error(line, format!("invalid record: {e}")))?;
            if let Some(previous) = records.last() {
                if record.t_ms <= previous.t_ms {
                    return Err(line_error(
                        line,
                        format!(
                            "t_ms {} is not after the previous record's t_ms {} (time must \
                             increase strictly)",
                            record.t_ms, previous.t_ms
                        ),
                    ));
                }
            }
            records.push(record);
        }
        if records.is_empty() {
            return Err(TraceError::Empty { path: origin });
        }
        Ok(ReplayTrace {
            origin,
            header,
            records,
        })
    }

    /// The file (or name) the trace came from.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// The header line, if the trace has one.
    pub fn header(&self) -> Option<&TraceHeader> {
        self.header.as_ref()
    }

    /// True when the header marks the trace as synthetic.
    pub fn is_synthetic(&self) -> bool {
        self.header.as_ref().is_some_and(|h| h.synthetic)
    }

    /// The records, in time order (never empty).
    pub fn records(&self) -> &[TraceRecord] {
        &self.records
    }

    /// Time of the last record.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.last().t_ms)
    }

    fn last(&self) -> &TraceRecord {
        // `records` is never empty: `parse` rejects empty traces.
        &self.records[self.records.len() - 1]
    }

    /// Length of one loop for [`EndBehavior::Loop`].
    pub fn loop_period(&self) -> Duration {
        let last = self.last().t_ms;
        let step = match self.records.len() {
            0 | 1 => 1000,
            n => (last - self.records[n - 2].t_ms).max(1),
        };
        Duration::from_millis(last.saturating_add(step))
    }

    /// The record in effect at trace time `t` (the last one with `t_ms <= t`; the first one
    /// before it starts), with `end` deciding what happens after the last record.
    pub fn record_at(&self, t: Duration, end: EndBehavior) -> &TraceRecord {
        let mut ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
        if end == EndBehavior::Loop {
            let period = u64::try_from(self.loop_period().as_millis()).unwrap_or(u64::MAX);
            ms %= period.max(1);
        }
        let after = self.records.partition_point(|r| r.t_ms <= ms);
        &self.records[after.saturating_sub(1)]
    }

    /// True when `t` lies past the last record (meaningful for [`EndBehavior::Hold`]).
    pub fn is_finished(&self, t: Duration) -> bool {
        t > self.duration()
    }
}
