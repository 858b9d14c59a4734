//! Latency of tier A (`TierA::classify`) with the built-in artifact.
//!
//! ```text
//! cargo bench -p switchyard-intent --bench tier_a            # percentiles + criterion
//! cargo bench -p switchyard-intent --bench tier_a -- --percentiles-only
//! ```
//!
//! Before the criterion benchmarks run, a plain loop times 10,000 single calls per input and
//! prints p50/p99/max in microseconds (criterion reports means, the router's budget is a p99).

#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use switchyard_intent::TierA;

const SHORT: &str = "what's the weather in Paris tomorrow?";

/// About 128 tokens: an instruction followed by pasted text.
const MEDIUM: &str = "Please summarize the following update for the leadership team in three \
bullet points. Over the last quarter the platform team migrated the remaining services to the \
new cluster, cut the median deploy time from forty minutes to eleven, and retired the legacy \
queue. Two incidents affected customers: a certificate expired on the billing API for 25 \
minutes, and a bad configuration push slowed search for about an hour. Hiring is behind plan by \
two engineers. Next quarter we will focus on cost: right-sizing instances, moving cold data to \
cheaper storage, and reviewing every third-party contract before renewal.";

const CALLS: usize = 10_000;

fn percentiles(model: &TierA, name: &str, text: &str) {
    // Warm up the thread-local scratch and the caches.
    for _ in 0..1_000 {
        black_box(model.classify(black_box(text)));
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = Instant::now();
        black_box(model.classify(black_box(text)));
        samples.push(start.elapsed());
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).copied().unwrap_or(Duration::ZERO)
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "tier_a/{name:<8} ({:>4} bytes) {CALLS} calls: p50 {:>6.2} µs  p99 {:>6.2} µs  max {:>7.2} µs",
        text.len(),
        us(at(0.50)),
        us(at(0.99)),
        us(at(1.0)),
    );
}

fn main() {
    let model = match TierA::builtin() {
        Ok(model) => model,
        Err(error) => {
            eprintln!("cannot load the built-in artifact: {error}");
            std::process::exit(1);
        }
    };
    let long = MEDIUM.repeat(40);
    let inputs = [
        ("short", SHORT),
        ("128tok", MEDIUM),
        ("40kB", long.as_str()),
    ];

    for (name, text) in inputs {
        percentiles(&model, name, text);
    }
    if std::env::args().any(|a| a == "--percentiles-only") {
        return;
    }

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("tier_a");
    for (name, text) in inputs {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| b.iter(|| model.classify(black_box(text))));
    }
    group.finish();
    criterion.final_summary();
}
