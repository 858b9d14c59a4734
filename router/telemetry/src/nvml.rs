//! [`NvmlCollector`]: NVIDIA GPUs through NVML (`nvml-wrapper`), which loads
//! `libnvidia-ml.so.1` at run time and degrades to "unavailable" without it.

use std::ffi::{OsStr, OsString};
use std::time::{Duration, Instant};

use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::{Device, Nvml};

use crate::collector::{Collector, CollectorError};
use crate::snapshot::{NoteKind, Snapshot};
use crate::stats::GpuStats;

/// VRAM, temperature, utilisation, power, clock and throttle reasons of every NVIDIA GPU.
///
/// Without the NVIDIA driver `Nvml::init()` fails in about a millisecond (a `DlOpen` error for
/// `libnvidia-ml.so.1`); the collector then reports [`CollectorError::Unavailable`] with the
/// reason and never panics. Built with [`NvmlCollector::with_retry`] it retries the
/// initialisation at most once per retry period (a driver loaded after the gateway started is
/// picked up), never once per sample.
pub struct NvmlCollector {
    nvml: Option<Nvml>,
    library: Option<OsString>,
    last_error: String,
    last_attempt: Instant,
    retry_every: Option<Duration>,
}

impl NvmlCollector {
    /// Name used in sources and notes.
    pub const NAME: &'static str = "nvml";

    /// Retry period used by [`crate::default_collectors`].
    pub const DEFAULT_RETRY: Duration = Duration::from_secs(300);

    /// Initialises NVML once; `Err(Unavailable(reason))` when the library or driver is missing.
    pub fn new() -> Result<Self, CollectorError> {
        let nvml = init(None).map_err(CollectorError::Unavailable)?;
        Ok(NvmlCollector {
            nvml: Some(nvml),
            library: None,
            last_error: String::new(),
            last_attempt: Instant::now(),
            retry_every: None,
        })
    }

    /// Tries to initialise NVML now; if that fails, collects report "unavailable" and the
    /// initialisation is retried at most once per `retry_every`.
    pub fn with_retry(retry_every: Duration) -> Self {
        Self::with_library(None, retry_every)
    }

    /// Like [`NvmlCollector::with_retry`], loading NVML from `library` (a file name or path)
    /// instead of the default `libnvidia-ml.so.1` when it is `Some`.
    pub fn with_library(library: Option<OsString>, retry_every: Duration) -> Self {
        let (nvml, last_error) = match init(library.as_deref()) {
            Ok(n) => (Some(n), String::new()),
            Err(e) => (None, e),
        };
        NvmlCollector {
            nvml,
            library,
            last_error,
            last_attempt: Instant::now(),
            retry_every: Some(retry_every),
        }
    }

    /// True when NVML is initialised.
    pub fn is_available(&self) -> bool {
        self.nvml.is_some()
    }

    /// Why NVML is unavailable (empty when it is available).
    pub fn unavailable_reason(&self) -> &str {
        &self.last_error
    }

    fn ensure_init(&mut self) -> Result<&Nvml, CollectorError> {
        if self.nvml.is_none() {
            let due = self
                .retry_every
                .is_some_and(|every| self.last_attempt.elapsed() >= every);
            if due {
                self.last_attempt = Instant::now();
                match init(self.library.as_deref()) {
                    Ok(n) => {
                        tracing::info!("nvml: initialised after retry");
                        self.nvml = Some(n);
                        self.last_error.clear();
                    }
                    Err(e) => self.last_error = e,
                }
            }
        }
        self.nvml
            .as_ref()
            .ok_or_else(|| CollectorError::Unavailable(self.last_error.clone()))
    }
}

/// Initialises NVML from `library` (default `libnvidia-ml.so.1`), describing a failure.
fn init(library: Option<&OsStr>) -> Result<Nvml, String> {
    let mut builder = Nvml::builder();
    if let Some(path) = library {
        builder.lib_path(path);
    }
    builder.init().map_err(|e| describe_init_error(&e, library))
}

fn describe_init_error(e: &NvmlError, library: Option<&OsStr>) -> String {
    let library = library.map_or_else(
        || "libnvidia-ml.so.1".to_string(),
        |l| l.to_string_lossy().into_owned(),
    );
    match e {
        NvmlError::LibloadingError(inner) => {
            format!("{library} not found or not loadable (no NVIDIA driver?): {inner}")
        }
        NvmlError::DriverNotLoaded => "NVIDIA driver not loaded".to_string(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".to_string(),
        other => format!("NVML init failed: {other}"),
    }
}

/// Reads one device; fields that fail to read (unsupported on this GPU) stay `None`.
fn read_device(index: u32, device: &Device<'_>) -> GpuStats {
    let memory = device.memory_info().ok();
    let throttle_reasons = device.current_throttle_reasons().ok().map(|reasons| {
        reasons
            .iter_names()
            .map(|(name, _)| name.to_ascii_lowercase())
            .filter(|name| name != "none")
            .collect()
    });
    GpuStats {
        index,
        name: device
            .name()
            .unwrap_or_else(|_| format!("NVIDIA GPU {index}")),
        vram_total_bytes: memory.as_ref().map(|m| m.total),
        vram_used_bytes: memory.as_ref().map(|m| m.used),
        vram_free_bytes: memory.as_ref().map(|m| m.free),
        temperature_c: device
            .temperature(TemperatureSensor::Gpu)
            .ok()
            .map(|t| t as f32),
        utilisation_percent: device.utilization_rates().ok().map(|u| u.gpu as f32),
        power_w: device.power_usage().ok().map(|mw| mw as f32 / 1000.0),
        frequency_hz: device
            .clock_info(Clock::Graphics)
            .ok()
            .map(|mhz| u64::from(mhz) * 1_000_000),
        throttle_reasons,
        unified_memory: false,
        source: NvmlCollector::NAME.to_string(),
    }
}

impl Collector for NvmlCollector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
        let nvml = self.ensure_init()?;
        let count = nvml
            .device_count()
            .map_err(|e| CollectorError::Failed(format!("device count: {e}")))?;
        for index in 0..count {
            match nvml.device_by_index(index) {
                Ok(device) => into.gpus.push(read_device(index, &device)),
                Err(e) => into.note(Self::NAME, NoteKind::Error, format!("GPU {index}: {e}")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn missing_library_is_unavailable_not_a_panic() {
        let started = Instant::now();
        let library = OsString::from("libnvidia-ml-missing-for-test.so.1");
        let mut collector = NvmlCollector::with_library(Some(library), Duration::ZERO);
        assert!(started.elapsed() < Duration::from_secs(2), "fails fast");
        assert!(!collector.is_available());
        assert!(collector
            .unavailable_reason()
            .contains("libnvidia-ml-missing-for-test.so.1"));
        let mut snapshot = Snapshot::now();
        for _ in 0..3 {
            // Retried every collect (retry period zero), still no panic.
            let err = collector.collect(&mut snapshot).unwrap_err();
            assert!(matches!(err, CollectorError::Unavailable(_)), "{err:?}");
            assert!(err.to_string().starts_with("unavailable: "), "{err}");
        }
        assert!(snapshot.gpus.is_empty());
        let mut collectors: Vec<Box<dyn Collector + Send>> = vec![Box::new(collector)];
        let s = crate::collect_once(&mut collectors);
        assert!(s.has_note(NvmlCollector::NAME, NoteKind::Unavailable));
        assert!(s.sources.is_empty());
    }

    #[test]
    fn default_library_either_works_or_explains() {
        let mut collector = NvmlCollector::with_retry(Duration::from_secs(3600));
        let mut snapshot = Snapshot::now();
        match collector.collect(&mut snapshot) {
            Ok(()) => {
                // A machine with the NVIDIA driver: every GPU has memory figures.
                assert!(collector.is_available());
                for gpu in &snapshot.gpus {
                    assert!(gpu.vram_total_bytes.is_some_and(|t| t > 0), "{gpu:?}");
                    assert_eq!(gpu.source, "nvml");
                }
            }
            Err(e) => {
                assert!(!collector.is_available());
                assert!(matches!(e, CollectorError::Unavailable(ref m) if !m.is_empty()));
                assert!(NvmlCollector::new().is_err());
            }
        }
    }
}
