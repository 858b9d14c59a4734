//! The background sampler: publishes fresh snapshots, survives failing and panicking
//! collectors, counts samples, and stops promptly.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_telemetry::{
    Collector, CollectorError, CpuStats, NoteKind, Sampler, Snapshot, TelemetryHandle,
    UnavailableCollector, MAX_CONSECUTIVE_PANICS,
};

/// Writes an increasing counter into `cpu.logical_cores`; tells `dropped` when it is dropped.
struct Counting {
    count: Arc<AtomicU32>,
    dropped: Option<mpsc::Sender<()>>,
}

impl Collector for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn collect(&mut self, into: &mut Snapshot) -> Result<(), CollectorError> {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        into.cpu = Some(CpuStats {
            logical_cores: n as usize,
            ..CpuStats::default()
        });
        Ok(())
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if let Some(tx) = self.dropped.take() {
            let _ = tx.send(());
        }
    }
}

struct Failing;

impl Collector for Failing {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn collect(&mut self, _into: &mut Snapshot) -> Result<(), CollectorError> {
        Err(CollectorError::Failed("sensor bus timeout".into()))
    }
}

struct Panicking;

impl Collector for Panicking {
    fn name(&self) -> &'static str {
        "panicky"
    }
    fn collect(&mut self, _into: &mut Snapshot) -> Result<(), CollectorError> {
        panic!("boom from a collector");
    }
}

fn counting() -> (
    Box<dyn Collector + Send>,
    Arc<AtomicU32>,
    mpsc::Receiver<()>,
) {
    let count = Arc::new(AtomicU32::new(0));
    let (tx, rx) = mpsc::channel();
    let collector = Counting {
        count: Arc::clone(&count),
        dropped: Some(tx),
    };
    (Box::new(collector), count, rx)
}

fn cores(handle: &TelemetryHandle) -> usize {
    handle.latest().cpu.as_ref().map_or(0, |c| c.logical_cores)
}

#[test]
fn handle_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<TelemetryHandle>();
}

#[test]
fn sampler_updates_the_snapshot_then_stops() {
    let (collector, count, dropped) = counting();
    let handle = Sampler::start(vec![collector], Duration::from_millis(20));
    assert_eq!(handle.period(), Duration::from_millis(20));
    assert!(
        handle.wait_for_samples(3, Duration::from_secs(10)),
        "{:?}",
        handle.stats()
    );
    let first = handle.latest();
    assert_eq!(first.sources, ["counting"]);
    assert!(first.taken_at.is_some());
    assert!(first.age() < Duration::from_secs(10));
    assert!(cores(&handle) >= 3);
    let stats = handle.stats();
    assert!(stats.samples >= 3);
    assert!(stats.last_duration < Duration::from_secs(5));
    assert!(handle.is_running());

    // Newer samples replace older ones.
    let before = cores(&handle);
    assert!(handle.wait_for_samples(stats.samples + 2, Duration::from_secs(10)));
    assert!(cores(&handle) > before);

    let clone = handle.clone();
    let t = Instant::now();
    clone.stop();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(!handle.is_running());
    dropped
        .recv_timeout(Duration::from_secs(2))
        .expect("collectors are dropped when the thread exits");
    let frozen = count.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        count.load(Ordering::SeqCst),
        frozen,
        "no samples after stop"
    );
    // The last snapshot stays readable.
    assert_eq!(handle.latest().sources, ["counting"]);
    handle.stop(); // idempotent
}

#[test]
fn dropping_the_last_handle_stops_a_long_period_sampler_promptly() {
    let (collector, _count, dropped) = counting();
    let handle = Sampler::start(vec![collector], Duration::from_secs(3600));
    assert!(handle.wait_for_samples(1, Duration::from_secs(10)));
    let clone = handle.clone();
    drop(handle);
    assert!(clone.is_running(), "one handle left, still sampling");
    let t = Instant::now();
    drop(clone);
    dropped
        .recv_timeout(Duration::from_secs(2))
        .expect("thread exits when the last handle is dropped");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn errors_and_panics_become_notes_and_sampling_goes_on() {
    let (collector, _count, _dropped) = counting();
    let collectors: Vec<Box<dyn Collector + Send>> = vec![
        Box::new(UnavailableCollector::new(
            "nvml",
            "libnvidia-ml.so.1 not found",
        )),
        Box::new(Panicking),
        Box::new(Failing),
        collector,
    ];
    let handle = Sampler::start(collectors, Duration::from_millis(10));
    let wanted = u64::from(MAX_CONSECUTIVE_PANICS) + 2;
    assert!(handle.wait_for_samples(wanted, Duration::from_secs(10)));
    let s = handle.latest();
    assert_eq!(
        s.sources,
        ["counting"],
        "only the healthy collector contributed"
    );
    let note = |source: &str| {
        s.notes
            .iter()
            .find(|n| n.source == source)
            .cloned()
            .unwrap()
    };
    let nvml = note("nvml");
    assert_eq!(nvml.kind, NoteKind::Unavailable);
    assert_eq!(
        nvml.to_string(),
        "nvml: unavailable: libnvidia-ml.so.1 not found"
    );
    assert_eq!(note("failing").message, "failed: sensor bus timeout");
    assert_eq!(note("failing").kind, NoteKind::Error);
    let panicky = note("panicky");
    assert_eq!(panicky.kind, NoteKind::Error);
    assert!(
        panicky.message.contains("disabled after"),
        "after {MAX_CONSECUTIVE_PANICS} panics the collector is skipped: {panicky}"
    );
    assert_eq!(
        handle.stats().collector_panics,
        u64::from(MAX_CONSECUTIVE_PANICS)
    );
    assert!(handle.is_running());
    // No temperature anywhere: said so, not reported as 0 °C.
    assert_eq!(s.hottest_c(), None);
    assert!(s.notes.iter().any(|n| n.kind == NoteKind::NoSensors));
}

#[test]
fn first_panic_message_is_kept() {
    let mut collectors: Vec<Box<dyn Collector + Send>> = vec![Box::new(Panicking)];
    let s = switchyard_telemetry::collect_once(&mut collectors);
    assert_eq!(
        s.notes[0].to_string(),
        "panicky: panicked: boom from a collector"
    );
    assert!(s.sources.is_empty());
}

#[test]
fn latest_before_the_first_sample_is_an_explained_empty_snapshot() {
    let handle = Sampler::start(Vec::new(), Duration::from_secs(3600));
    let s = handle.latest();
    assert!(s.sources.is_empty());
    assert!(!s.notes.is_empty());
    assert!(handle.wait_for_samples(1, Duration::from_secs(10)));
}

#[test]
fn manual_handle_serves_what_is_published() {
    let handle = TelemetryHandle::manual(Snapshot::default());
    assert!(!handle.is_running());
    assert_eq!(handle.period(), Duration::ZERO);
    let mut s = Snapshot::now();
    s.sources.push("sim".into());
    handle.publish(s);
    assert_eq!(handle.latest().sources, ["sim"]);
    assert!(!handle.wait_for_samples(1, Duration::from_millis(10)));
}

#[test]
fn period_below_minimum_is_raised() {
    let handle = Sampler::start(Vec::new(), Duration::ZERO);
    assert_eq!(handle.period(), Sampler::MIN_PERIOD);
}
