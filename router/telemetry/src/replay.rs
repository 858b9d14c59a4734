//! [`ReplayCollector`]: plays a recorded [`ReplayTrace`] back as live telemetry, at a chosen
//! speed, on the real clock or on a [`ManualClock`] that tests step by hand.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::collector::{Collector, CollectorError};
use crate::snapshot::{NoteKind, Snapshot};
use crate::trace::{EndBehavior, ReplayTrace, TraceError, TraceRecord};

/// A clock that only moves when told to, shared between clones: hand one to
/// [`ReplayCollector::with_manual_clock`] and advance it from the test.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Current reading.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }

    /// Sets the reading.
    pub fn set(&self, t: Duration) {
        self.0.store(
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Moves the reading forward by `dt`.
    pub fn advance(&self, dt: Duration) {
        let dt = u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(dt))
            });
    }
}

#[derive(Clone, Debug)]
enum Clock {
    Real(Instant),
    Manual(ManualClock),
}

impl Clock {
    fn elapsed(&self) -> Duration {
        match self {
            Clock::Real(start) => start.elapsed(),
            Clock::Manual(clock) => clock.now(),
        }
    }
}

/// Replays a trace: trace time = clock time × `speed` (1.0 real time, 10.0 ten times faster).
///
/// The value at trace time `t` is the last record with `t_ms <= t` (sample and hold, no
/// interpolation), so a policy simulation sees exactly the recorded values. After the last
/// record it holds or loops ([`EndBehavior`]). Each replayed snapshot carries an info note
/// naming the trace, its position, and whether it is synthetic.
#[derive(Clone, Debug)]
pub struct ReplayCollector {
    trace: Arc<ReplayTrace>,
    speed: f64,
    end: EndBehavior,
    clock: Clock,
}

impl ReplayCollector {
    /// Name used in sources and notes.
    pub const NAME: &'static str = "replay";

    /// Replays `trace` at `speed` on the real clock, starting now, holding the last record.
    pub fn new(trace: impl Into<Arc<ReplayTrace>>, speed: f64) -> Result<Self, TraceError> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(TraceError::BadSpeed(speed));
        }
        Ok(ReplayCollector {
            trace: trace.into(),
            speed,
            end: EndBehavior::Hold,
            clock: Clock::Real(Instant::now()),
        })
    }

    /// Loads `path` (format: [`ReplayTrace`]) and replays it at `speed`.
    pub fn from_file(path: impl AsRef<Path>, speed: f64) -> Result<Self, TraceError> {
        Self::new(ReplayTrace::load(path)?, speed)
    }

    /// Chooses what happens after the last record.
    pub fn with_end(mut self, end: EndBehavior) -> Self {
        self.end = end;
        self
    }

    /// Drives the replay from `clock` instead of the real clock (trace time is still
    /// `clock.now() × speed`).
    pub fn with_manual_clock(mut self, clock: ManualClock) -> Self {
        self.clock = Clock::Manual(clock);
        self
    }

    /// Restarts the real clock from now (a manual clock is left alone).
    pub fn restart(&mut self) {
        if let Clock::Real(start) = &mut self.clock {
            *start = Instant::now();
        }
    }

    /// The trace being replayed.
    pub fn trace(&self) -> &ReplayTrace {
        &self.trace
    }

    /// Replay speed.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Current trace time: clock time × speed.
    pub fn trace_time(&self) -> Duration {
        let secs = self.clock.elapsed().as_secs_f64() * self.speed;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }

    /// The snapshot at trace time `t` (independent of the clock and the speed): finalized,
    /// stamped now, with `sources == ["replay"]`. Deterministic apart from the timestamp.
    pub fn at(&self, t: Duration) -> Snapshot {
        let mut snapshot = Snapshot::now();
        self.apply(t, &mut snapshot);
        snapshot.sources.push(Self::NAME.to_string());
        snapshot.finalize();
        snapshot
    }

    /// The snapshot `offset_ms` milliseconds into the trace: [`ReplayCollector::at`] for
    /// simulations that step time themselves and must not sleep.
    pub fn snapshot_at(&self, offset_ms: u64) -> Snapshot {
        self.at(Duration::from_millis(offset_ms))
    }

    /// Steps through the trace once, without sleeping: `(t, snapshot at t)` for
    /// `t = 0, step, 2·step, …` up to the last record (or, with [`EndBehavior::Loop`], up to
    /// one loop period, exclusive). A zero `step` is taken as 1 ms.
    pub fn steps(&self, step: Duration) -> impl Iterator<Item = (Duration, Snapshot)> + '_ {
        let step = step.max(Duration::from_millis(1));
        let (end, inclusive) = match self.end {
            EndBehavior::Hold => (self.trace.duration(), true),
            EndBehavior::Loop => (self.trace.loop_period(), false),
        };
        std::iter::successors(Some(Duration::ZERO), move |t| t.checked_add(step))
            .take_while(move |t| if inclusive { *t <= end } else { *t < end })
            .map(|t| (t, self.at(t)))
    }

    /// The snapshot at the current trace time.
    pub fn current(&self) -> Snapshot {
        self.at(self.trace_time())
    }

    fn apply(&self, t: Duration, into: &mut Snapshot) {
        let record: &TraceRecord = self.trace.record_at(t, self.end);
        if record.cpu.is_some() {
            into.cpu.clone_from(&record.cpu);
        }
        if record.memory.is_some() {
            into.memory.clone_from(&record.memory);
        }
        into.temperatures
            .extend(record.temperatures.iter().cloned().map(|mut reading| {
                if reading.source.is_empty() {
                    reading.source = Self::NAME.to_string();
                }
                reading
            }));
        into.gpus.extend(record.gpus.iter().cloned().map(|mut gpu| {
            if gpu.source.is_empty() {
                gpu.source = Self::NAME.to_string();
            }
            gpu
        }));
        if record.thermal_state.is_some() {
            into.thermal_state = record.thermal_state;
        }
        if record.memory_pressure.is_some() {
            into.memory_pressure = record.memory_pressure;
        }
        let kind = if self.trace.is_synthetic() {
            "SYNTHETIC trace"
        } else {
            "trace"
        };
        let held = if self.end == EndBehavior::Hold && self.trace.is_finished(t) {
            ", past the end: holding the last record"
        } else {
            ""
        };
        into.note(
            Self::NAME,
            NoteKind::Info,
            format!(
                "replaying {kind} {} at t={:.1}s (record t_ms={}, speed {}x){held}",
                self.trace.origin().display(),
                t.as_secs_f64(),
                record.t_ms,
                self.speed
            ),
        );
    }
}

impl Collector for ReplayCollector {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
        self.apply(self.trace_time(), into);
        Ok(())
    }
}
