//! Latency of tier B (tokenise + embed with all-MiniLM-L6-v2 + linear head), on ONNX Runtime
//! and, when `models fetch` has derived its Q8_0 GGUF, on llama.cpp, for requests of 16 and 128
//! tokens: p50/p90/p99 over many sequential requests, through the
//! same `TierB::classify(&dyn SentenceEmbedder, text)` call the router makes.
//!
//! ```text
//! cargo bench -p switchyard-intent-train --bench tier_b_latency
//! TIER_B_THREADS=2 TIER_B_SPIN=0 TIER_B_ITERS=500 TIER_B_TOKENS=16,64,128 \
//!     TIER_B_MAX_TOKENS=128 cargo bench -p switchyard-intent-train --bench tier_b_latency
//! ```
//!
//! By default the embedder truncates to the head's own token limit (`TierB::max_tokens`, as
//! the gateway serves it); `TIER_B_MAX_TOKENS` overrides it (e.g. 128 to time full-length
//! embeddings). A plain bench binary rather than criterion: the requirement is a tail
//! percentile (p99), which criterion does not report.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use switchyard_engine_llamacpp::encoder::{EncoderOptions, SentenceEncoder};
use switchyard_engine_onnx::{init_runtime, EmbedderOptions, MiniLmEmbedder, MiniLmPaths};
use switchyard_intent::tier_b::SentenceEmbedder;
use switchyard_intent::TierB;
use switchyard_intent_train::{
    default_models_dir, minilm_gguf, GgufSentenceEmbedder, MiniLmSentenceEmbedder,
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A text of exactly `tokens` tokens (special tokens included), counted by `counter` (an
/// embedder whose limit is above `tokens`).
fn text_of(counter: &MiniLmEmbedder, tokens: usize) -> String {
    let words = "please route this request about summarising the quarterly report for the \
                 board and then read the summary aloud in a calm voice while checking the \
                 calendar for tomorrow afternoon meetings with the design team";
    let words: Vec<&str> = words.split_whitespace().collect();
    let mut text = String::new();
    let mut i = 0;
    while counter.token_count(&text).unwrap() < tokens {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(words[i % words.len()]);
        i += 1;
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

/// Prints p50/p90/p99/max/mean of `tier_b.classify` over `iterations` runs per text.
fn measure(
    tier_b: &TierB,
    embedder: &dyn SentenceEmbedder,
    texts: &[(usize, String)],
    iterations: usize,
    embedded_tokens: impl Fn(&str) -> usize,
) {
    for (tokens, text) in texts {
        let embedded = embedded_tokens(text);
        for _ in 0..20 {
            tier_b.classify(embedder, text).unwrap();
        }
        let mut samples = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            let prediction = tier_b.classify(embedder, text).unwrap();
            samples.push(start.elapsed());
            std::hint::black_box(prediction);
        }
        samples.sort();
        let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
        println!(
            "  {tokens:>3}-token request ({embedded:>3} embedded): p50 {:.2} ms  p90 {:.2} ms  \
             p99 {:.2} ms  max {:.2} ms  mean {:.2} ms",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 90.0)),
            ms(percentile(&samples, 99.0)),
            ms(percentile(&samples, 100.0)),
            ms(mean)
        );
    }
}

fn main() {
    // `cargo test --benches` lists bench targets with `--list`: nothing to do then.
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
    let tier_b = TierB::builtin().unwrap();
    let threads = env_usize("TIER_B_THREADS", 2);
    let iterations = env_usize("TIER_B_ITERS", 400);
    init_runtime(&paths.runtime_library).unwrap();
    let options = EmbedderOptions {
        threads,
        max_tokens: env_usize("TIER_B_MAX_TOKENS", tier_b.max_tokens()),
        spin: env_usize("TIER_B_SPIN", 1) != 0,
        ..EmbedderOptions::default()
    };
    let embedder = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options).unwrap();
    let counter = MiniLmEmbedder::load_with(
        &paths.model,
        &paths.tokenizer,
        &EmbedderOptions {
            threads: 1,
            max_tokens: 512,
            spin: false,
            ..EmbedderOptions::default()
        },
    )
    .unwrap();
    let adapter = MiniLmSentenceEmbedder(embedder);
    println!(
        "tier B latency: {} threads (spin {}), {} on {}, embeds the first {} tokens, \
         {iterations} iterations per size",
        threads,
        options.spin,
        tier_b.embedding_model(),
        adapter.0.execution_provider(),
        options.max_tokens,
    );
    let sizes: Vec<usize> = std::env::var("TIER_B_TOKENS")
        .ok()
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 128]);
    let texts: Vec<(usize, String)> = sizes
        .iter()
        .map(|&tokens| (tokens, text_of(&counter, tokens)))
        .collect();
    measure(&tier_b, &adapter, &texts, iterations, |t| {
        adapter.0.token_count(t).unwrap()
    });
    // The same requests on llama.cpp with the Q8_0 GGUF `models fetch` derives (what the
    // gateway serves when it is there).
    let gguf = minilm_gguf(&default_models_dir());
    if gguf.is_file() {
        let encoder = SentenceEncoder::load(
            &gguf,
            &EncoderOptions {
                threads: threads as i32,
                max_tokens: options.max_tokens,
                context: options.max_tokens,
            },
        )
        .unwrap();
        println!(
            "tier B latency on llama.cpp ({}), {threads} threads, first {} tokens:",
            gguf.display(),
            encoder.max_tokens()
        );
        let gguf_adapter = GgufSentenceEmbedder(encoder);
        measure(&tier_b, &gguf_adapter, &texts, iterations, |t| {
            adapter.0.token_count(t).unwrap()
        });
    } else {
        println!("  (no {}: llama.cpp rows skipped)", gguf.display());
    }
    // Tokenisation alone (a 128-token text).
    let text = text_of(&counter, 128);
    let start = Instant::now();
    let n = 2_000u32;
    for _ in 0..n {
        std::hint::black_box(adapter.0.token_count(std::hint::black_box(&text)).unwrap());
    }
    println!(
        "  tokenise a 128-token text: {:.1} us per call",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    // The head alone (no embedding): dot products plus the n-gram block.
    let embedding = adapter.0.embed(&text).unwrap();
    let start = Instant::now();
    let n = 20_000u32;
    for _ in 0..n {
        std::hint::black_box(
            tier_b
                .classify_embedding(&text, std::hint::black_box(&embedding))
                .unwrap(),
        );
    }
    println!(
        "  head only (128-token text): {:.1} us per call",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}
