//! macOS thermal state and memory pressure.
//!
//! This file is the only place in the crate with `#[cfg(target_os = "macos")]`: the
//! `MacosCollector` type exists only when compiled for macOS (re-exported as
//! `switchyard_telemetry::MacosCollector`); elsewhere this module holds just the output parsers
//! (tested everywhere) and [`platform_collector`] returns `None`, which
//! [`crate::default_collectors`] turns into an "unavailable: not macOS" collector.
//!
//! Sources, read with the system's own command-line tools so no extra native bindings are
//! needed:
//! - memory pressure: `sysctl -n kern.memorystatus_vm_pressure_level` (1 normal, 2 warning,
//!   4 critical);
//! - thermal state: `notifyutil -g com.apple.system.thermalpressurelevel` (0 nominal,
//!   1 moderate, 2 heavy, 3 trapping, 4 sleeping), mapped onto [`ThermalState`].
//!
//! CPU, memory figures and the SMC temperature sensors come from the sysinfo collector.

#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use crate::collector::Collector;
use crate::stats::{MemoryPressure, ThermalState};

/// Parses `kern.memorystatus_vm_pressure_level` output (`1`, `2` or `4`).
pub(crate) fn parse_memory_pressure(output: &str) -> Option<MemoryPressure> {
    match output.trim().parse::<u32>().ok()? {
        1 => Some(MemoryPressure::Normal),
        2 => Some(MemoryPressure::Warning),
        4 => Some(MemoryPressure::Critical),
        _ => None,
    }
}

/// Parses `notifyutil -g com.apple.system.thermalpressurelevel` output
/// (`com.apple.system.thermalpressurelevel 2`) or a bare level.
pub(crate) fn parse_thermal_pressure(output: &str) -> Option<ThermalState> {
    let level: u32 = output.split_whitespace().last()?.parse().ok()?;
    Some(match level {
        0 => ThermalState::Nominal,
        1 => ThermalState::Fair,
        2 => ThermalState::Serious,
        _ => ThermalState::Critical,
    })
}

/// The macOS collector as a boxed [`Collector`] when compiled for macOS; `None` elsewhere.
pub(crate) fn platform_collector() -> Option<Box<dyn Collector + Send>> {
    #[cfg(target_os = "macos")]
    {
        Some(Box::new(imp::MacosCollector::new()))
    }
    #[cfg(not(target_os = "macos"))]
    {
        None
    }
}

#[cfg(target_os = "macos")]
pub use imp::MacosCollector;

#[cfg(target_os = "macos")]
mod imp {
    use std::process::Command;

    use super::{parse_memory_pressure, parse_thermal_pressure};
    use crate::collector::{Collector, CollectorError};
    use crate::snapshot::{NoteKind, Snapshot};

    /// Thermal state and memory pressure on macOS (see the module documentation for sources).
    /// Fails only when neither value can be read.
    #[derive(Debug, Default)]
    pub struct MacosCollector {
        _private: (),
    }

    impl MacosCollector {
        /// Name used in sources and notes.
        pub const NAME: &'static str = "macos";

        /// A new collector (nothing to initialise).
        pub fn new() -> Self {
            MacosCollector::default()
        }
    }

    fn run(program: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new(program)
            .args(args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !output.status.success() {
            return Err(format!("{program} {}: {}", args.join(" "), output.status));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    impl Collector for MacosCollector {
        fn name(&self) -> &'static str {
            Self::NAME
        }

        fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
            let memory = run(
                "/usr/sbin/sysctl",
                &["-n", "kern.memorystatus_vm_pressure_level"],
            )
            .and_then(|out| {
                parse_memory_pressure(&out)
                    .ok_or_else(|| format!("unexpected sysctl output {out:?}"))
            });
            let thermal = run(
                "/usr/bin/notifyutil",
                &["-g", "com.apple.system.thermalpressurelevel"],
            )
            .and_then(|out| {
                parse_thermal_pressure(&out)
                    .ok_or_else(|| format!("unexpected notifyutil output {out:?}"))
            });
            match (memory, thermal) {
                (Err(m), Err(t)) => Err(CollectorError::Failed(format!("{m}; {t}"))),
                (memory, thermal) => {
                    match memory {
                        Ok(level) => into.memory_pressure = Some(level),
                        Err(e) => into.note(Self::NAME, NoteKind::Error, e),
                    }
                    match thermal {
                        Ok(state) => into.thermal_state = Some(state),
                        Err(e) => into.note(Self::NAME, NoteKind::Error, e),
                    }
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysctl_and_notifyutil_output() {
        assert_eq!(parse_memory_pressure("1\n"), Some(MemoryPressure::Normal));
        assert_eq!(parse_memory_pressure("2"), Some(MemoryPressure::Warning));
        assert_eq!(parse_memory_pressure("4\n"), Some(MemoryPressure::Critical));
        assert_eq!(parse_memory_pressure("x"), None);
        assert_eq!(
            parse_thermal_pressure("com.apple.system.thermalpressurelevel 0\n"),
            Some(ThermalState::Nominal)
        );
        assert_eq!(parse_thermal_pressure("2"), Some(ThermalState::Serious));
        assert_eq!(parse_thermal_pressure("4"), Some(ThermalState::Critical));
        assert_eq!(parse_thermal_pressure(""), None);
    }
}
