//! Prints what telemetry sees here, as JSON: `cargo run -p switchyard-telemetry --example
//! snapshot [-- SAMPLES [TRACE.jsonl SPEED]]`. Takes SAMPLES snapshots one second apart
//! (default 2, so CPU load is measured) from the default collectors, or from a replayed trace.

use std::io::Write;
use std::time::Duration;

use switchyard_telemetry::{Collector, ReplayCollector, Sampler};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let samples: u64 = args.first().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let collectors: Vec<Box<dyn Collector + Send>> = match args.get(1) {
        Some(trace) => {
            let speed: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1.0);
            vec![Box::new(ReplayCollector::from_file(trace, speed)?)]
        }
        None => switchyard_telemetry::default_collectors(),
    };
    let telemetry = Sampler::start(collectors, Duration::from_secs(1));
    let mut out = std::io::stdout().lock();
    for n in 1..=samples.max(1) {
        telemetry.wait_for_samples(n, Duration::from_secs(30));
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&*telemetry.latest())?
        )?;
    }
    writeln!(out, "{:?}", telemetry.stats())?;
    Ok(())
}
