//! [`JetsonCollector`]: NVIDIA Jetson boards through sysfs and procfs (thermal zones, the
//! integrated GPU's load and frequency, unified memory). The file-system root is configurable
//! so tests can point it at a fake tree.

use std::fs;
use std::path::{Path, PathBuf};

use crate::collector::{Collector, CollectorError};
use crate::snapshot::{NoteKind, Snapshot};
use crate::stats::{GpuStats, MemoryStats, TemperatureReading};

/// Device-tree names of Jetson integrated GPUs (Nano/TX1, TX2, Xavier, Orin, Thor).
const GPU_NODE_NAMES: &[&str] = &["gm20b", "gp10b", "gv11b", "ga10b", "gb10b", "gpu"];

/// GPU load files relative to the root, tried in order (per-mille, 0–1000).
const GPU_LOAD_FILES: &[&str] = &["sys/devices/gpu.0/load", "sys/devices/platform/gpu.0/load"];

/// Readings outside this range (°C) are treated as invalid: disabled zones report e.g. -256 °C.
const PLAUSIBLE_CELSIUS: std::ops::RangeInclusive<f32> = -40.0..=200.0;

/// Jetson telemetry read from files under `root` (default `/`):
///
/// - thermal zones `sys/class/thermal/thermal_zone*/{type,temp}` (millidegrees Celsius);
/// - GPU load `sys/devices/gpu.0/load`, `sys/devices/platform/gpu.0/load`, or the devfreq
///   device's `device/load` (per-mille);
/// - GPU frequency `sys/class/devfreq/<gpu>/cur_freq` (Hz), where `<gpu>` is a devfreq entry
///   such as `17000000.gpu`, `57000000.gpu` or `17000000.ga10b`;
/// - unified memory from `proc/meminfo` (`MemTotal`, `MemAvailable`): the GPU's VRAM figures
///   are system memory and `unified_memory` is true;
/// - the board name from `proc/device-tree/model`.
///
/// [`JetsonCollector::detect`] requires a GPU (load file or devfreq entry) and Tegra evidence
/// (`proc/device-tree/compatible` containing `nvidia,tegra`, or `etc/nv_tegra_release`), so
/// other ARM boards with a devfreq GPU are not mistaken for a Jetson.
///
/// The GPU temperature is the thermal zone whose type contains `gpu` (`GPU-therm`,
/// `gpu-thermal`). Power and throttle reasons are not read (`None`).
#[derive(Debug, Clone)]
pub struct JetsonCollector {
    root: PathBuf,
    model: Option<String>,
    gpu_load_file: Option<PathBuf>,
    gpu_devfreq_dir: Option<PathBuf>,
}

impl JetsonCollector {
    /// Name used in sources and notes.
    pub const NAME: &'static str = "jetson";

    /// Looks for a Jetson GPU under `root`; `Err(Unavailable)` when neither a GPU load file nor
    /// a GPU devfreq entry exists (i.e. this is not a Jetson).
    pub fn detect(root: impl Into<PathBuf>) -> Result<Self, CollectorError> {
        let root = root.into();
        let gpu_devfreq_dir = find_gpu_devfreq(&root);
        let gpu_load_file = GPU_LOAD_FILES
            .iter()
            .map(|rel| root.join(rel))
            .chain(gpu_devfreq_dir.iter().map(|d| d.join("device/load")))
            .find(|p| p.is_file());
        if gpu_load_file.is_none() && gpu_devfreq_dir.is_none() {
            return Err(CollectorError::Unavailable(format!(
                "not a Jetson: no GPU load file ({}) and no GPU devfreq entry under {}",
                GPU_LOAD_FILES.join(", "),
                root.join("sys/class/devfreq").display()
            )));
        }
        if !is_tegra(&root) {
            return Err(CollectorError::Unavailable(format!(
                "not a Jetson: a GPU exists under {} but neither proc/device-tree/compatible \
                 names nvidia,tegra nor etc/nv_tegra_release exists",
                root.display()
            )));
        }
        let model = fs::read_to_string(root.join("proc/device-tree/model"))
            .ok()
            .map(|m| {
                m.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .to_string()
            })
            .filter(|m| !m.is_empty());
        Ok(JetsonCollector {
            root,
            model,
            gpu_load_file,
            gpu_devfreq_dir,
        })
    }

    /// The file-system root the collector reads under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Board model from the device tree, when present.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn read_thermal_zones(&self, into: &mut Snapshot) -> Option<f32> {
        let dir = self.root.join("sys/class/thermal");
        let mut zones: Vec<PathBuf> = fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        zones.sort_by_key(|p| zone_number(p));
        let mut gpu_temperature = None;
        let mut found = 0usize;
        for zone in zones {
            let Some(millis) = read_number::<i64>(&zone.join("temp")) else {
                continue;
            };
            let celsius = millis as f32 / 1000.0;
            if !PLAUSIBLE_CELSIUS.contains(&celsius) {
                continue;
            }
            let name = read_trimmed(&zone.join("type")).unwrap_or_else(|| {
                zone.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            if gpu_temperature.is_none() && name.to_ascii_lowercase().contains("gpu") {
                gpu_temperature = Some(celsius);
            }
            found += 1;
            into.temperatures.push(TemperatureReading {
                name,
                celsius,
                critical_c: None,
                source: Self::NAME.to_string(),
            });
        }
        if found == 0 {
            into.note(
                Self::NAME,
                NoteKind::NoSensors,
                format!("no readable thermal zones under {}", dir.display()),
            );
        }
        gpu_temperature
    }

    fn read_meminfo(&self) -> Option<MemoryStats> {
        let text = fs::read_to_string(self.root.join("proc/meminfo")).ok()?;
        parse_meminfo(&text)
    }
}

/// Parses `MemTotal` and `MemAvailable` (kB) from `/proc/meminfo` text.
pub(crate) fn parse_meminfo(text: &str) -> Option<MemoryStats> {
    let field = |key: &str| -> Option<u64> {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable").or_else(|| field("MemFree"))?;
    Some(MemoryStats {
        total_bytes: total,
        available_bytes: available,
        used_bytes: total.saturating_sub(available),
    })
}

/// True when the device tree says `nvidia,tegra…` or L4T's release file exists.
fn is_tegra(root: &Path) -> bool {
    let compatible = fs::read(root.join("proc/device-tree/compatible")).unwrap_or_default();
    String::from_utf8_lossy(&compatible).contains("nvidia,tegra")
        || root.join("etc/nv_tegra_release").is_file()
}

fn find_gpu_devfreq(root: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = fs::read_dir(root.join("sys/class/devfreq"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            let suffix = name.rsplit('.').next().unwrap_or_default().to_string();
            let node = read_trimmed(&entry.path().join("device/of_node/name"))
                .map(|n| n.trim_end_matches('\0').to_string());
            name.contains("gpu")
                || GPU_NODE_NAMES.contains(&suffix.as_str())
                || node.is_some_and(|n| GPU_NODE_NAMES.contains(&n.as_str()))
        })
        .map(|entry| entry.path())
        .collect();
    candidates.sort();
    candidates.into_iter().next()
}

fn zone_number(path: &Path) -> u64 {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("thermal_zone"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn read_number<T: std::str::FromStr>(path: &Path) -> Option<T> {
    read_trimmed(path)?.parse().ok()
}

impl Collector for JetsonCollector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
        let gpu_temperature = self.read_thermal_zones(into);
        let memory = self.read_meminfo();
        if memory.is_none() {
            into.note(
                Self::NAME,
                NoteKind::Error,
                format!("cannot read {}", self.root.join("proc/meminfo").display()),
            );
        }
        if into.memory.is_none() {
            into.memory.clone_from(&memory);
        }
        let utilisation_percent = self
            .gpu_load_file
            .as_deref()
            .and_then(read_number::<f32>)
            .map(|per_mille| (per_mille / 10.0).clamp(0.0, 100.0));
        let frequency_hz = self
            .gpu_devfreq_dir
            .as_deref()
            .and_then(|d| read_number::<u64>(&d.join("cur_freq")));
        let name = match &self.model {
            Some(model) => format!("{model} (integrated GPU)"),
            None => "Jetson integrated GPU".to_string(),
        };
        into.gpus.push(GpuStats {
            index: 0,
            name,
            vram_total_bytes: memory.as_ref().map(|m| m.total_bytes),
            vram_used_bytes: memory.as_ref().map(|m| m.used_bytes),
            vram_free_bytes: memory.as_ref().map(|m| m.available_bytes),
            temperature_c: gpu_temperature,
            utilisation_percent,
            power_w: None,
            frequency_hz,
            throttle_reasons: None,
            unified_memory: true,
            source: Self::NAME.to_string(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parses_kb() {
        let m = parse_meminfo(
            "MemTotal:        7620364 kB\nMemFree:  100 kB\nMemAvailable:    5000000 kB\n",
        )
        .unwrap();
        assert_eq!(m.total_bytes, 7_620_364 * 1024);
        assert_eq!(m.available_bytes, 5_000_000 * 1024);
        assert_eq!(m.used_bytes, (7_620_364 - 5_000_000) * 1024);
        assert!(parse_meminfo("garbage").is_none());
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_a_fake_orin_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "etc/nv_tegra_release",
            "# R36 (release), REVISION: 4.0\n",
        );
        write(
            root,
            "proc/device-tree/model",
            "NVIDIA Jetson Orin Nano Developer Kit\0",
        );
        write(root, "sys/devices/platform/gpu.0/load", "734\n");
        write(
            root,
            "sys/class/devfreq/17000000.gpu/cur_freq",
            "624750000\n",
        );
        write(
            root,
            "sys/class/thermal/thermal_zone0/type",
            "cpu-thermal\n",
        );
        write(root, "sys/class/thermal/thermal_zone0/temp", "51500\n");
        write(
            root,
            "sys/class/thermal/thermal_zone1/type",
            "gpu-thermal\n",
        );
        write(root, "sys/class/thermal/thermal_zone1/temp", "86250\n");
        write(
            root,
            "sys/class/thermal/thermal_zone2/type",
            "cv0-thermal\n",
        );
        write(root, "sys/class/thermal/thermal_zone2/temp", "-256000\n");
        write(
            root,
            "proc/meminfo",
            "MemTotal: 7620364 kB\nMemAvailable: 4000000 kB\n",
        );
        let mut collector = JetsonCollector::detect(root).unwrap();
        assert_eq!(
            collector.model(),
            Some("NVIDIA Jetson Orin Nano Developer Kit")
        );
        let mut s = Snapshot::now();
        collector.collect(&mut s).unwrap();
        s.finalize();
        assert_eq!(
            s.temperatures.len(),
            2,
            "the disabled zone (-256 °C) is skipped"
        );
        assert_eq!(s.hottest_c(), Some(86.25));
        let gpu = &s.gpus[0];
        assert_eq!(gpu.temperature_c, Some(86.25));
        assert_eq!(gpu.utilisation_percent, Some(73.4));
        assert_eq!(gpu.frequency_hz, Some(624_750_000));
        assert!(gpu.unified_memory);
        assert_eq!(gpu.vram_free_bytes, Some(4_000_000 * 1024));
        assert_eq!(s.memory_available_bytes(), Some(4_000_000 * 1024));
    }

    #[test]
    fn a_devfreq_gpu_without_tegra_evidence_is_not_a_jetson() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "sys/class/devfreq/ff9a0000.gpu/cur_freq",
            "400000000\n",
        );
        let err = JetsonCollector::detect(dir.path()).unwrap_err();
        assert!(err.reason().contains("nv_tegra_release"), "{err}");
    }

    #[test]
    fn not_a_jetson() {
        let dir = tempfile::tempdir().unwrap();
        let err = JetsonCollector::detect(dir.path()).unwrap_err();
        assert!(matches!(err, CollectorError::Unavailable(ref m) if m.contains("not a Jetson")));
    }
}
