//! The example traces under `traces/` parse, are marked synthetic, and cross the thresholds
//! their descriptions (and `traces/README.md`) promise.

use std::path::PathBuf;
use std::time::Duration;

use switchyard_telemetry::{ReplayCollector, ReplayTrace};

const GIB: u64 = 1 << 30;

fn trace(name: &str) -> ReplayTrace {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("traces")
        .join(name);
    ReplayTrace::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_one_second_samples(trace: &ReplayTrace, at_least: usize) {
    let records = trace.records();
    assert!(records.len() >= at_least, "{} records", records.len());
    assert_eq!(records[0].t_ms, 0);
    assert!(records.windows(2).all(|w| w[1].t_ms - w[0].t_ms == 1000));
}

#[test]
fn jetson_heating_trace_crosses_the_throttle_limit_and_cools() {
    let trace = trace("jetson-orin-nano-heating.jsonl");
    assert!(trace.is_synthetic());
    let header = trace.header().unwrap();
    assert!(header.description.starts_with("SYNTHETIC"));
    assert_eq!(header.extra["throttle_limit_c"], 85.0);
    assert_one_second_samples(&trace, 180); // a few minutes

    let replay = ReplayCollector::new(trace.clone(), 1.0).unwrap();
    let series: Vec<(u64, f32, f32)> = replay
        .steps(Duration::from_secs(1))
        .map(|(t, s)| {
            let gpu = &s.gpus[0];
            assert!(gpu.unified_memory);
            assert_eq!(
                gpu.vram_total_bytes,
                s.memory.as_ref().map(|m| m.total_bytes)
            );
            assert_eq!(gpu.vram_free_bytes, s.memory_available_bytes());
            assert_eq!(s.sources, ["replay"]);
            let secs = t.as_secs();
            (secs, gpu.temperature_c.unwrap(), s.hottest_c().unwrap())
        })
        .collect();
    let (first, last) = (series[0], series[series.len() - 1]);
    assert!(
        (44.0..=46.0).contains(&first.1),
        "starts near 45 °C: {first:?}"
    );
    let peak = series.iter().map(|s| s.1).fold(f32::MIN, f32::max);
    assert!((94.0..=98.0).contains(&peak), "peaks near 95 °C: {peak}");
    assert!((58.0..=62.0).contains(&last.1), "cools to ~60 °C: {last:?}");
    // Rises through 85, 88 (profile throttle_c) and 95 (critical_c) in that order, then falls back.
    let crossing = |limit: f32| series.iter().find(|s| s.1 >= limit).map(|s| s.0).unwrap();
    assert!(crossing(85.0) < crossing(88.0) && crossing(88.0) < crossing(95.0));
    let cooled = series
        .iter()
        .rev()
        .find(|s| s.1 >= 85.0)
        .map(|s| s.0)
        .unwrap();
    assert!(cooled > crossing(95.0) && cooled < last.0);
    // The hottest sensor is at least the GPU's.
    assert!(series.iter().all(|s| s.2 >= s.1));
}

#[test]
fn rtx_trace_fills_24gb_of_vram_then_frees_it() {
    let trace = trace("rtx-vram-filling.jsonl");
    assert!(trace.is_synthetic());
    assert!(trace.header().unwrap().description.starts_with("SYNTHETIC"));
    assert_one_second_samples(&trace, 120);

    let replay = ReplayCollector::new(trace, 1.0).unwrap();
    let series: Vec<(u64, u64, u64, u64)> = replay
        .steps(Duration::from_secs(1))
        .map(|(_, s)| {
            let gpu = &s.gpus[0];
            assert!(!gpu.unified_memory);
            let total = gpu.vram_total_bytes.unwrap();
            let used = gpu.vram_used_bytes.unwrap();
            let free = s.gpu_vram_free_bytes(0).unwrap();
            assert_eq!(used + free, total);
            (total, used, free, s.largest_vram_free_bytes().unwrap())
        })
        .collect();
    let total = series[0].0;
    assert!(
        (24 * 1_000_000_000..=24 * GIB).contains(&total),
        "a 24 GB card: {total}"
    );
    let max_used = series.iter().map(|s| s.1).max().unwrap();
    assert!(
        max_used >= 23 * GIB + GIB / 2 - GIB / 100,
        "fills to ~23.5 GiB: {max_used}"
    );
    let min_free = series.iter().map(|s| s.2).min().unwrap();
    assert!(
        min_free < GIB / 2 + GIB / 10,
        "nearly full: {min_free} free"
    );
    let full_at = series.iter().position(|s| s.1 == max_used).unwrap();
    let last = series[series.len() - 1];
    assert!(last.1 < GIB, "frees again: {} used at the end", last.1);
    assert!(
        series[..full_at]
            .windows(2)
            .filter(|w| w[1].1 < w[0].1)
            .count()
            < 10
    );
    assert_eq!(series[full_at].3, series[full_at].2);
}
