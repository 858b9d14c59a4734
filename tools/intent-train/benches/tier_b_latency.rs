//! Latency of tier B (embed with all-MiniLM-L6-v2 on ONNX Runtime + linear head) for 16- and
//! 128-token inputs: p50/p90/p99 over many sequential requests.
//!
//! ```text
//! cargo bench -p switchyard-intent-train --bench tier_b_latency
//! TIER_B_THREADS=2 TIER_B_ITERS=500 cargo bench -p switchyard-intent-train --bench tier_b_latency
//! ```
//!
//! A plain bench binary rather than criterion: the requirement is a tail percentile (p99),
//! which criterion does not report.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use switchyard_engine_onnx::{init_runtime, MiniLmEmbedder, MiniLmPaths};
use switchyard_intent::TierB;
use switchyard_intent_train::{default_models_dir, MiniLmSentenceEmbedder};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A text of exactly `tokens` tokens (special tokens included).
fn text_of(embedder: &MiniLmEmbedder, tokens: usize) -> String {
    let words = "please route this request about summarising the quarterly report for the \
                 board and then read the summary aloud in a calm voice while checking the \
                 calendar for tomorrow afternoon meetings with the design team";
    let words: Vec<&str> = words.split_whitespace().collect();
    let mut text = String::new();
    for i in 0.. {
        let count = embedder.token_count(&text).unwrap();
        if count >= tokens {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(words[i % words.len()]);
    }
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: do nothing then.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let paths = MiniLmPaths::in_models_dir(&default_models_dir());
    if !paths.all_present() {
        println!(
            "SKIPPED tier_b_latency: models not found under {} (run `switchyard models fetch`)",
            default_models_dir().display()
        );
        return;
    }
    let threads = env_usize("TIER_B_THREADS", 2);
    let iterations = env_usize("TIER_B_ITERS", 400);
    init_runtime(&paths.runtime_library).unwrap();
    let embedder = MiniLmEmbedder::load(&paths.model, &paths.tokenizer, threads).unwrap();
    let tier_b = TierB::builtin().unwrap();
    let adapter = MiniLmSentenceEmbedder(embedder);
    println!(
        "tier B latency: {} threads, {} on {}, {iterations} iterations per size",
        threads,
        tier_b.embedding_model(),
        adapter.0.execution_provider()
    );
    for tokens in [16, 128] {
        let text = text_of(&adapter.0, tokens);
        let actual = adapter.0.token_count(&text).unwrap();
        for _ in 0..20 {
            tier_b.classify(&adapter, &text).unwrap();
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let prediction = tier_b.classify(&adapter, &text).unwrap();
            samples.push(start.elapsed());
            std::hint::black_box(prediction);
        }
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        println!(
            "  {actual:>3} tokens: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 90.0)),
            ms(percentile(&samples, 99.0)),
            ms(percentile(&samples, 100.0)),
            ms(mean)
        );
    }
    // The head alone (no embedding).
    let text = "how long does the head take";
    let embedding = adapter.0.embed(text).unwrap();
    let start = Instant::now();
    let n = 100_000u32;
    for _ in 0..n {
        std::hint::black_box(
            tier_b
                .classify_embedding(text, std::hint::black_box(&embedding))
                .unwrap(),
        );
    }
    println!(
        "  head only: {:.0} ns per call",
        start.elapsed().as_nanos() as f64 / f64::from(n)
    );
}
