//! [`Sampler`]: runs the collectors on a named background thread once per period and publishes
//! each finished [`Snapshot`] through an [`ArcSwap`], so readers ([`TelemetryHandle::latest`])
//! never block and never do I/O.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::collector::{Collector, CollectorError};
use crate::snapshot::{NoteKind, Snapshot};

/// Name of the sampler thread.
pub const THREAD_NAME: &str = "switchyard-telemetry";

/// A collector that panics this many times in a row is no longer called (its note says so).
pub const MAX_CONSECUTIVE_PANICS: u32 = 3;

/// Starts background sampling; see [`Sampler::start`].
#[derive(Debug)]
pub struct Sampler;

impl Sampler {
    /// Shortest accepted period; shorter ones are raised to this.
    pub const MIN_PERIOD: Duration = Duration::from_millis(10);

    /// Starts a thread named [`THREAD_NAME`] that, every `period`, builds a fresh
    /// [`Snapshot`]: each collector writes into it in order (`Ok` adds its name to
    /// [`Snapshot::sources`], `Err` or a panic adds a note), then [`Snapshot::finalize`], then
    /// it becomes [`TelemetryHandle::latest`]. The first sample is taken at once; until it
    /// lands, `latest()` is an empty snapshot with an info note.
    ///
    /// Sampling stops when the last handle is dropped or on [`TelemetryHandle::stop`]. If the
    /// OS refuses to start a thread, the handle serves a snapshot whose note says so.
    pub fn start(collectors: Vec<Box<dyn Collector + Send>>, period: Duration) -> TelemetryHandle {
        let period = period.max(Self::MIN_PERIOD);
        let mut initial = Snapshot::now();
        initial.note(
            "telemetry",
            NoteKind::Info,
            "no sample taken yet (sampler starting)",
        );
        let shared = Arc::new(Shared::new(initial, period));
        let slots = collectors.into_iter().map(Slot::new).collect();
        let thread_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .spawn(move || run(&thread_shared, slots));
        let thread = match spawned {
            Ok(join) => Some(join),
            Err(e) => {
                tracing::error!(error = %e, "telemetry sampler thread could not start");
                let mut s = Snapshot::now();
                s.note(
                    "telemetry",
                    NoteKind::Error,
                    format!("sampler thread could not start: {e}"),
                );
                s.finalize();
                shared.latest.store(Arc::new(s));
                None
            }
        };
        TelemetryHandle::from_parts(shared, thread)
    }

    /// [`Sampler::start`] with [`crate::default_collectors`].
    pub fn start_default(period: Duration) -> TelemetryHandle {
        Self::start(crate::default_collectors(), period)
    }
}

/// Counters of a sampler, for the gateway's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerStats {
    /// Snapshots published so far.
    pub samples: u64,
    /// How long the last sample took (all collectors plus finalize).
    pub last_duration: Duration,
    /// Collector panics caught so far.
    pub collector_panics: u64,
}

/// Reads the latest snapshot of a [`Sampler`]. Cheap to clone; `Send + Sync`. Sampling stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct TelemetryHandle {
    shared: Arc<Shared>,
    worker: Arc<Worker>,
}

impl std::fmt::Debug for TelemetryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryHandle")
            .field("period", &self.shared.period)
            .field("stats", &self.stats())
            .field("running", &self.is_running())
            .finish()
    }
}

impl TelemetryHandle {
    /// A handle with no sampler thread that serves `snapshot` until [`TelemetryHandle::publish`]
    /// replaces it (tests, simulations that step a replay themselves).
    pub fn manual(snapshot: Snapshot) -> Self {
        let shared = Arc::new(Shared::new(snapshot, Duration::ZERO));
        Self::from_parts(shared, None)
    }

    fn from_parts(shared: Arc<Shared>, thread: Option<JoinHandle<()>>) -> Self {
        let worker = Arc::new(Worker {
            shared: Arc::clone(&shared),
            thread: Mutex::new(thread),
        });
        TelemetryHandle { shared, worker }
    }

    /// The latest snapshot. Never blocks and does no I/O; check [`Snapshot::age`] for
    /// staleness.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.shared.latest.load_full()
    }

    /// Replaces the latest snapshot (a running sampler overwrites it at its next sample).
    pub fn publish(&self, snapshot: Snapshot) {
        self.shared.latest.store(Arc::new(snapshot));
    }

    /// The sampling period (zero for a [`TelemetryHandle::manual`] handle).
    pub fn period(&self) -> Duration {
        self.shared.period
    }

    /// Samples taken, last sample duration and collector panics.
    pub fn stats(&self) -> SamplerStats {
        SamplerStats {
            samples: self.shared.samples.load(Ordering::Acquire),
            last_duration: Duration::from_nanos(self.shared.last_ns.load(Ordering::Acquire)),
            collector_panics: self.shared.panics.load(Ordering::Acquire),
        }
    }

    /// True while the sampler thread runs.
    pub fn is_running(&self) -> bool {
        lock(&self.worker.thread)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Blocks until at least `samples` samples have been published or `timeout` passes;
    /// returns whether they were (for start-up and tests, not for request paths).
    pub fn wait_for_samples(&self, samples: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.shared.state);
        while state.samples < samples {
            let now = Instant::now();
            if now >= deadline || state.stopped {
                return state.samples >= samples;
            }
            state = self
                .shared
                .sampled
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Stops sampling for every clone and waits for the thread to finish its current sample.
    /// The last snapshot stays available. Idempotent.
    pub fn stop(&self) {
        self.worker.stop();
    }
}

#[derive(Default)]
struct State {
    stop: bool,
    stopped: bool,
    samples: u64,
}

struct Shared {
    latest: ArcSwap<Snapshot>,
    period: Duration,
    samples: AtomicU64,
    last_ns: AtomicU64,
    panics: AtomicU64,
    state: Mutex<State>,
    /// Wakes the sampler thread early (stop).
    wake: Condvar,
    /// Wakes [`TelemetryHandle::wait_for_samples`].
    sampled: Condvar,
}

impl Shared {
    fn new(initial: Snapshot, period: Duration) -> Self {
        Shared {
            latest: ArcSwap::from_pointee(initial),
            period,
            samples: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            sampled: Condvar::new(),
        }
    }
}

/// Owned by all handles together; dropping the last one stops the thread.
struct Worker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    fn stop(&self) {
        {
            let mut state = lock(&self.shared.state);
            state.stop = true;
            state.stopped = true;
        }
        self.shared.wake.notify_all();
        self.shared.sampled.notify_all();
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            if thread.thread().id() != std::thread::current().id() && thread.join().is_err() {
                tracing::error!("telemetry sampler thread panicked");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A collector plus what the sampler remembers about it.
struct Slot {
    collector: Box<dyn Collector + Send>,
    name: &'static str,
    consecutive_panics: u32,
    /// Last outcome that was logged (`None` = ok), so a failure is logged once, not per sample.
    last_logged: Option<String>,
}

impl Slot {
    fn new(collector: Box<dyn Collector + Send>) -> Self {
        let name = collector.name();
        Slot {
            collector,
            name,
            consecutive_panics: 0,
            last_logged: None,
        }
    }

    /// Runs the collector into `snapshot`; returns whether it panicked.
    fn sample(&mut self, snapshot: &mut Snapshot) -> bool {
        if self.consecutive_panics >= MAX_CONSECUTIVE_PANICS {
            snapshot.note(
                self.name,
                NoteKind::Error,
                format!("disabled after {MAX_CONSECUTIVE_PANICS} consecutive panics"),
            );
            return false;
        }
        let outcome = run_collector(self.collector.as_mut(), snapshot);
        let panicked = matches!(outcome, Outcome::Panicked(_));
        self.consecutive_panics = if panicked {
            self.consecutive_panics + 1
        } else {
            0
        };
        let status = outcome.message();
        if status != self.last_logged {
            match (&outcome, &status) {
                (Outcome::Failed(CollectorError::Unavailable(_)), Some(m)) => {
                    tracing::info!(collector = self.name, "{m}");
                }
                (_, Some(m)) => tracing::warn!(collector = self.name, "{m}"),
                (_, None) => tracing::info!(collector = self.name, "collector recovered"),
            }
            self.last_logged = status;
        }
        panicked
    }
}

/// What one collect did.
enum Outcome {
    Ok,
    Failed(CollectorError),
    Panicked(String),
}

impl Outcome {
    fn message(&self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Failed(e @ CollectorError::Unavailable(_)) => Some(e.to_string()),
            Outcome::Failed(e) => Some(format!("failed: {}", e.reason())),
            Outcome::Panicked(m) => Some(format!("panicked: {m}")),
        }
    }
}

/// Runs one collector into `snapshot`, catching a panic: `Ok` lists it in `sources`, anything
/// else becomes a note from it.
fn run_collector(collector: &mut (dyn Collector + Send), snapshot: &mut Snapshot) -> Outcome {
    let name = collector.name();
    let result = catch_unwind(AssertUnwindSafe(|| collector.collect(snapshot)));
    let outcome = match result {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => Outcome::Failed(e),
        Err(payload) => Outcome::Panicked(
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string()),
        ),
    };
    let kind = match outcome {
        Outcome::Failed(CollectorError::Unavailable(_)) => NoteKind::Unavailable,
        _ => NoteKind::Error,
    };
    match outcome.message() {
        None => snapshot.sources.push(name.to_string()),
        Some(message) => snapshot.note(name, kind, message),
    }
    outcome
}

/// Takes one snapshot from `collectors` on the calling thread (one-shot tools, tests): the same
/// steps as one sampler period, panics caught.
pub fn collect_once(collectors: &mut [Box<dyn Collector + Send>]) -> Snapshot {
    let mut snapshot = Snapshot::now();
    for collector in collectors.iter_mut() {
        run_collector(collector.as_mut(), &mut snapshot);
    }
    snapshot.finalize();
    snapshot
}

fn run(shared: &Shared, mut slots: Vec<Slot>) {
    loop {
        let started = Instant::now();
        let mut snapshot = Snapshot::now();
        let mut panics = 0u64;
        for slot in &mut slots {
            panics += u64::from(slot.sample(&mut snapshot));
        }
        snapshot.finalize();
        shared.latest.store(Arc::new(snapshot));
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        shared.last_ns.store(took, Ordering::Release);
        shared.panics.fetch_add(panics, Ordering::AcqRel);
        let deadline = started + shared.period;
        let mut state = lock(&shared.state);
        state.samples += 1;
        shared.samples.store(state.samples, Ordering::Release);
        shared.sampled.notify_all();
        loop {
            if state.stop {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
