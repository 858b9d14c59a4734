//! Replay traces: parsing (good and bad lines, with file:line), timing at speed, end behaviour,
//! deterministic stepping, and replay through the sampler.

use std::io::Write;
use std::time::Duration;

use switchyard_telemetry::{
    Collector, EndBehavior, ManualClock, NoteKind, ReplayCollector, ReplayTrace, Sampler, Snapshot,
    TraceError,
};

const GOOD: &str = r#"{"synthetic": true, "description": "three steps", "device": "test box"}

{"t_ms": 0, "temperatures": [{"name": "gpu-thermal", "celsius": 40.0}], "comment": "idle"}
{"t_ms": 1000, "temperatures": [{"name": "gpu-thermal", "celsius": 60.0}], "gpus": [{"index": 0, "vram_total_bytes": 100, "vram_free_bytes": 30}]}
{"t_ms": 2000, "temperatures": [{"name": "gpu-thermal", "celsius": 90.0}], "memory": {"total_bytes": 10, "available_bytes": 4, "used_bytes": 6}}
"#;

fn parse(text: &str) -> Result<ReplayTrace, TraceError> {
    ReplayTrace::parse(text, "inline.jsonl")
}

fn hottest(s: &Snapshot) -> Option<f32> {
    s.hottest_c()
}

#[test]
fn parses_header_records_and_comments() {
    let trace = parse(GOOD).unwrap();
    assert!(trace.is_synthetic());
    let header = trace.header().unwrap();
    assert_eq!(header.description, "three steps");
    assert_eq!(header.device.as_deref(), Some("test box"));
    assert_eq!(trace.records().len(), 3);
    assert_eq!(trace.records()[0].comment.as_deref(), Some("idle"));
    assert_eq!(trace.duration(), Duration::from_secs(2));
    assert_eq!(trace.loop_period(), Duration::from_secs(3));
}

fn line_error(text: &str) -> (usize, String) {
    let err = match parse(text) {
        Ok(trace) => panic!("expected a line error, got {trace:?}"),
        Err(e) => e,
    };
    let shown = err.to_string();
    match err {
        TraceError::Line { line, message, .. } => {
            let prefix = format!("inline.jsonl:{line}: ");
            assert!(shown.starts_with(&prefix), "{shown}");
            (line, message)
        }
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn bad_lines_name_file_line_and_problem() {
    let header = r#"{"synthetic": true, "description": "x"}"#;
    let ok = r#"{"t_ms": 0}"#;
    let cases: &[(&str, usize, &str)] = &[
        ("{\"t_ms\": 0,", 1, "invalid JSON"),
        (&format!("{header}\n{ok}\n[1, 2]"), 3, "expected a JSON object"),
        (&format!("{ok}\n{{\"temperatures\": []}}"), 2, "missing field `t_ms`"),
        (&format!("{header}\n{ok}\n{{\"cpu_load\": 3}}"), 3, "missing `t_ms`"),
        (&format!("{ok}\n{{\"t_ms\": 5, \"gpuz\": []}}"), 2, "unknown field `gpuz`"),
        (
            &format!("{ok}\n\n{{\"t_ms\": 9, \"temperatures\": [{{\"name\": \"cpu\"}}]}}"),
            3,
            "missing field `celsius`",
        ),
        (
            &format!("{ok}\n{{\"t_ms\": 9, \"memory\": {{\"total_bytes\": 5}}}}"),
            2,
            "missing field `available_bytes`",
        ),
        (&format!("{header}\n{{\"t_ms\": 500}}\n{{\"t_ms\": 200}}"), 3, "not after"),
        (&format!("{ok}\n{{\"t_ms\": 0}}"), 2, "not after"),
        (&format!("{ok}\n{{\"t_ms\": -1}}"), 2, "invalid record"),
        (
            &format!("{ok}\n{{\"t_ms\": 1, \"temperatures\": [{{\"name\": \"c\", \"celsius\": 45000}}]}}"),
            2,
            "millidegrees",
        ),
        (
            &format!("{ok}\n{{\"t_ms\": 1, \"gpus\": [{{\"vram_total_bytes\": 1, \"vram_free_bytes\": 2}}]}}"),
            2,
            "vram_free_bytes 2 exceeds",
        ),
    ];
    for (text, line, needle) in cases {
        let (got_line, message) = line_error(text);
        assert_eq!(got_line, *line, "{text:?}: {message}");
        assert!(
            message.contains(needle),
            "{text:?}: {message:?} lacks {needle:?}"
        );
    }
}

#[test]
fn empty_and_missing_files_are_errors() {
    assert!(matches!(parse(""), Err(TraceError::Empty { .. })));
    let header_only = parse(r#"{"synthetic": true}"#).unwrap_err();
    assert_eq!(
        header_only.to_string(),
        "inline.jsonl: trace has no records"
    );
    let missing = ReplayCollector::from_file("/nonexistent/trace.jsonl", 1.0).unwrap_err();
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/trace.jsonl: "),
        "{missing}"
    );
    let trace = parse(GOOD).unwrap();
    assert!(ReplayCollector::new(trace.clone(), 0.0).is_err());
    assert!(ReplayCollector::new(trace, f64::NAN).is_err());
}

#[test]
fn file_errors_carry_the_path_and_line() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{{\"t_ms\": 0}}\n{{\"t_ms\": \"soon\"}}").unwrap();
    let err = ReplayCollector::from_file(file.path(), 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}:2: invalid record", file.path().display())),
        "{err}"
    );
}

#[test]
fn manual_clock_timing_at_speed() {
    let clock = ManualClock::new();
    let mut replay = ReplayCollector::new(parse(GOOD).unwrap(), 4.0)
        .unwrap()
        .with_manual_clock(clock.clone());
    let at = |replay: &mut ReplayCollector| {
        let mut s = Snapshot::now();
        replay.collect(&mut s).unwrap();
        s.finalize();
        hottest(&s)
    };
    assert_eq!(at(&mut replay), Some(40.0));
    clock.advance(Duration::from_millis(200)); // trace time 800 ms: still the first record
    assert_eq!(at(&mut replay), Some(40.0));
    clock.advance(Duration::from_millis(50)); // 1000 ms
    assert_eq!(at(&mut replay), Some(60.0));
    clock.set(Duration::from_millis(500)); // 2000 ms
    assert_eq!(at(&mut replay), Some(90.0));
    clock.set(Duration::from_secs(60)); // far past the end: held
    assert_eq!(at(&mut replay), Some(90.0));
    let mut looping = replay.clone().with_end(EndBehavior::Loop);
    clock.set(Duration::from_millis(750 + 250)); // 4000 ms = 1000 ms into the second loop
    assert_eq!(at(&mut looping), Some(60.0));
}

#[test]
fn real_clock_timing_at_speed() {
    let replay = ReplayCollector::new(parse(GOOD).unwrap(), 1000.0).unwrap();
    let before = replay.trace_time();
    std::thread::sleep(Duration::from_millis(5));
    let after = replay.trace_time();
    // 5 ms of wall time is at least 5 s of trace time at 1000x.
    assert!(
        after >= before + Duration::from_secs(5),
        "{before:?} -> {after:?}"
    );
    assert_eq!(hottest(&replay.current()), Some(90.0));
}

#[test]
fn stepping_is_deterministic_and_does_not_sleep() {
    let replay = ReplayCollector::new(parse(GOOD).unwrap(), 1.0).unwrap();
    let s = replay.snapshot_at(1500);
    assert_eq!(s.sources, ["replay"]);
    assert_eq!(s.hottest_c(), Some(60.0));
    assert_eq!(s.largest_vram_free_bytes(), Some(30));
    assert_eq!(s.gpus[0].source, "replay");
    assert!(s
        .notes
        .iter()
        .any(|n| n.kind == NoteKind::Info && n.message.contains("SYNTHETIC")));
    let steps: Vec<_> = replay
        .steps(Duration::from_millis(500))
        .map(|(t, s)| (t.as_millis(), s.hottest_c()))
        .collect();
    let expected = [
        (0, 40.0),
        (500, 40.0),
        (1000, 60.0),
        (1500, 60.0),
        (2000, 90.0),
    ];
    let expected: Vec<_> = expected.iter().map(|&(t, c)| (t, Some(c))).collect();
    assert_eq!(steps, expected);
    let looped = replay.clone().with_end(EndBehavior::Loop);
    assert_eq!(looped.steps(Duration::from_secs(1)).count(), 3);
    assert_eq!(looped.snapshot_at(3500).hottest_c(), Some(40.0));
    // Same offset, same values.
    let a = replay.snapshot_at(2000);
    let b = replay.snapshot_at(2000);
    assert_eq!(
        (a.temperatures, a.gpus, a.memory),
        (b.temperatures, b.gpus, b.memory)
    );
}

#[test]
fn replay_through_the_sampler() {
    let replay = ReplayCollector::new(parse(GOOD).unwrap(), 100.0).unwrap();
    let handle = Sampler::start(vec![Box::new(replay)], Duration::from_millis(10));
    // 2 s of trace time takes 20 ms of wall time at 100x; allow for a busy machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handle.latest().hottest_c() != Some(90.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            handle.latest()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(handle.latest().sources, ["replay"]);
}
