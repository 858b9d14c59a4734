//! The [`Collector`] trait, its error type, and [`UnavailableCollector`], the placeholder that
//! keeps telling operators why a collector is missing.

use crate::snapshot::Snapshot;

/// Why a collector could not contribute to a snapshot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CollectorError {
    /// The collector does not exist on this machine (no driver, no sysfs files, other OS).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The collector exists but failed this time.
    #[error("{0}")]
    Failed(String),
}

impl CollectorError {
    /// The reason, without the kind prefix.
    pub fn reason(&self) -> &str {
        match self {
            CollectorError::Unavailable(r) | CollectorError::Failed(r) => r,
        }
    }
}

/// A source of telemetry. The sampler calls [`Collector::collect`] once per period on its own
/// thread; the collector writes what it knows into the snapshot being assembled (appending to
/// lists, setting the fields it owns) and leaves everything else alone.
///
/// On `Ok` the sampler lists [`Collector::name`] in [`Snapshot::sources`]; on `Err` it adds a
/// note instead. A collector may also add notes itself (e.g. "no sensors").
pub trait Collector {
    /// Short stable name, used in `sources`, notes and metric labels (`sysinfo`, `nvml`, …).
    fn name(&self) -> &'static str;

    /// Reads the current values into `into`.
    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError>;
}

/// Stands in for a collector that is absent on this machine: every collect returns
/// [`CollectorError::Unavailable`] with the recorded reason, so each snapshot carries the note.
#[derive(Debug, Clone)]
pub struct UnavailableCollector {
    name: &'static str,
    reason: String,
}

impl UnavailableCollector {
    /// A placeholder for collector `name`, absent because of `reason`.
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        UnavailableCollector {
            name,
            reason: reason.into(),
        }
    }

    /// The recorded reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl Collector for UnavailableCollector {
    fn name(&self) -> &'static str {
        self.name
    }

    fn collect(&mut self, _into: &mut Snapshot) -> Result<(), CollectorError> {
        Err(CollectorError::Unavailable(self.reason.clone()))
    }
}
