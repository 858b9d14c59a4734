//! Benchmark: the gateway against a direct llama-cpp-2 loop, same model, prompt and threads.
//!
//! Run: `source scripts/native-cpu.sh && cargo bench -p switchyard-gateway --bench
//! gateway_vs_direct` (models fetched first; the script builds ggml as the README commands do).
//! Each round runs the direct single stream, then the gateway at 1, 4 and 8 streams, so drifts
//! in the host's speed weigh on both sides; every round's figures go to stderr.
//! Environment: `BENCH_TOKENS` (default 128), `BENCH_THREADS` (default 2), `BENCH_ROUNDS`
//! (default 3), `BENCH_MODEL` (a model id in the models dir; default the SmolLM2 sample),
//! `BENCH_DIRECT_ONLY` (set: only the direct llama-cpp-2 rows, no gateway). Prints a Markdown table for docs/BENCHMARKS.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;

const DEFAULT_MODEL: &str = "smollm2-135m-instruct";
const PROMPT: &str = "Once upon a time, in a small village by the sea, there lived";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Direct loop: returns (generated tokens, decode tok/s measured from the first to the last token).
fn direct(model_path: &std::path::Path, threads: i32, max_tokens: usize) -> (usize, f64) {
    let mut backend = LlamaBackend::init().unwrap();
    backend.void_logs();
    let model =
        LlamaModel::load_from_file(&backend, model_path, &LlamaModelParams::default()).unwrap();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048))
        .with_n_batch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params).unwrap();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(PROMPT.as_bytes(), vocab.should_add_bos(), false);
    let mut batch = LlamaBatch::new(512, 1);
    let last = tokens.len() - 1;
    for (i, t) in tokens.iter().enumerate() {
        batch.add(*t, i as i32, &[0], i == last).unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    let mut sampler = LlamaSampler::greedy();
    let mut pos = tokens.len() as i32;
    let mut generated = 0;
    let mut first_at = None;
    let mut last_at = Instant::now();
    loop {
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break;
        }
        generated += 1;
        let piece = vocab.token_to_piece(token, false, None);
        if std::env::var_os("BENCH_SHOW").is_some() {
            print!("{}", String::from_utf8_lossy(&piece));
        }
        last_at = Instant::now();
        first_at.get_or_insert(last_at);
        if generated >= max_tokens {
            break;
        }
        batch.clear();
        batch.add(token, pos, &[0], true).unwrap();
        pos += 1;
        ctx.decode(&mut batch).unwrap();
    }
    let span = last_at - first_at.unwrap();
    (generated, (generated - 1) as f64 / span.as_secs_f64())
}

/// Direct batched loop: `n_seq` copies of the prompt decoded together, one batch per step.
/// Returns aggregate tok/s over the generation phase: the ceiling for the gateway's batching.
fn direct_batched(
    model_path: &std::path::Path,
    threads: i32,
    max_tokens: usize,
    n_seq: usize,
) -> f64 {
    let backend = LlamaBackend::init().unwrap();
    let model =
        LlamaModel::load_from_file(&backend, model_path, &LlamaModelParams::default()).unwrap();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(2048 * n_seq as u32))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_seq_max(n_seq as u32)
        .with_kv_unified(false)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params).unwrap();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(PROMPT.as_bytes(), vocab.should_add_bos(), false);
    let mut batch = LlamaBatch::new(512, 1);
    for seq in 0..n_seq {
        for (i, t) in tokens.iter().enumerate() {
            batch
                .add(*t, i as i32, &[seq as i32], i == tokens.len() - 1)
                .unwrap();
        }
    }
    ctx.decode(&mut batch).unwrap();
    let mut samplers: Vec<LlamaSampler> = (0..n_seq).map(|_| LlamaSampler::greedy()).collect();
    let mut logits_at: Vec<i32> = (0..n_seq)
        .map(|s| ((s + 1) * tokens.len() - 1) as i32)
        .collect();
    let started = Instant::now();
    let mut generated = 0;
    for pos in (tokens.len() as i32..).take(max_tokens) {
        let next: Vec<_> = (0..n_seq)
            .map(|s| samplers[s].sample(&ctx, logits_at[s]))
            .collect();
        batch.clear();
        for (s, t) in next.iter().enumerate() {
            batch.add(*t, pos, &[s as i32], true).unwrap();
            logits_at[s] = s as i32;
        }
        generated += n_seq;
        ctx.decode(&mut batch).unwrap();
    }
    generated as f64 / started.elapsed().as_secs_f64()
}

/// Prompt-processing speed: one decode of a 512-token batch. With `all_logits`, every
/// position's logits are computed, as decoding needs them for every generated token (a prompt
/// needs them only for its last): the ceiling for any batched decode of this model.
fn direct_pp512(model_path: &std::path::Path, threads: i32, all_logits: bool) -> f64 {
    let backend = LlamaBackend::init().unwrap();
    let model =
        LlamaModel::load_from_file(&backend, model_path, &LlamaModelParams::default()).unwrap();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(1024))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(&backend, params).unwrap();
    let vocab = model.vocab();
    let tokens = vocab.tokenize(PROMPT.as_bytes(), false, false);
    let mut best = 0.0f64;
    for _ in 0..3 {
        ctx.clear_kv_cache();
        let mut batch = LlamaBatch::new(512, 1);
        for i in 0..512 {
            batch
                .add(
                    tokens[i % tokens.len()],
                    i as i32,
                    &[0],
                    all_logits || i == 511,
                )
                .unwrap();
        }
        let started = Instant::now();
        ctx.decode(&mut batch).unwrap();
        best = best.max(512.0 / started.elapsed().as_secs_f64());
    }
    best
}

struct StreamResult {
    tokens: usize,
    ttft: Duration,
    decode_tps: f64,
}

fn one_stream(
    addr: std::net::SocketAddr,
    model: &str,
    max_tokens: usize,
) -> (StreamResult, Instant) {
    let body = serde_json::json!({
        "model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0,
        "stream": true, "stream_options": {"include_usage": true}
    })
    .to_string();
    let started = Instant::now();
    let s = support::stream(addr, "/v1/completions", &body);
    assert_eq!(s.status, 200);
    let events = s.collect();
    let content: Vec<&(String, Instant)> = events
        .iter()
        .filter(|(d, _)| d.contains("\"text\":\"") && !d.contains("\"text\":\"\""))
        .collect();
    let (_, usage) = support::chat_stream_text(&events);
    let tokens = usage.unwrap()["completion_tokens"].as_u64().unwrap() as usize;
    let first = content.first().unwrap().1;
    let last = content.last().unwrap().1;
    let decode_tps = (tokens - 1) as f64 / (last - first).as_secs_f64();
    (
        StreamResult {
            tokens,
            ttft: first - started,
            decode_tps,
        },
        last,
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    let max_tokens = env_or("BENCH_TOKENS", 128);
    let threads = env_or("BENCH_THREADS", 2);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let model_id = std::env::var("BENCH_MODEL").unwrap_or_else(|_| DEFAULT_MODEL.into());
    let model_dir = support::require_model(&model_id);
    let manifest = switchyard_core::Manifest::load(&model_dir).unwrap();
    let model_path = manifest.primary_path().unwrap();

    // 1. Direct loop baseline. With the gateway, its rounds alternate with the gateway's (below)
    // so that the host's speed, which drifts on a shared box, weighs on both alike.
    let direct_only = std::env::var_os("BENCH_DIRECT_ONLY").is_some();
    let mut direct_tps = Vec::new();
    let mut direct_tokens = 0;
    if direct_only {
        for _ in 0..rounds {
            let (n, tps) = direct(&model_path, threads as i32, max_tokens);
            direct_tokens = n;
            direct_tps.push(tps);
        }
    }

    let pp512 = direct_pp512(&model_path, threads as i32, false);
    let pp512_all = direct_pp512(&model_path, threads as i32, true);
    let mut batched = Vec::new();
    for n in [4usize, 8] {
        batched.push((
            n,
            direct_batched(&model_path, threads as i32, max_tokens, n),
        ));
    }

    if direct_only {
        let d = {
            let mut v = direct_tps.clone();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        println!("\n## direct only ({model_id}, {threads} threads, {max_tokens} tokens)\n");
        println!("| direct single decode tok/s (median) | {d:.1} |");
        for (n, tps) in &batched {
            println!(
                "| direct {n} sequences in one batch | {tps:.1} ({:.2}×) |",
                tps / d
            );
        }
        println!("| pp512 | {pp512:.1} ({:.2}×) |", pp512 / d);
        println!(
            "| 512 tokens, all logits | {pp512_all:.1} ({:.2}×) |",
            pp512_all / d
        );
        return;
    }

    // 2. Gateway: resident memory with no model loaded, then streams.
    let config = format!("[engine]\nthreads = {threads}\nslots = 8\n[limits]\nqueue_size = 64\n");
    let gw = support::start(&config, &support::models_dir());
    std::thread::sleep(Duration::from_millis(300));
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        })
        .unwrap();
    // Warm-up: loads the model.
    one_stream(gw.addr, &model_id, 8);

    // Each round: one direct single stream, then the gateway at 1, 4 and 8 streams.
    let levels = [1usize, 4, 8];
    let mut single_tps = Vec::new();
    let mut ttfts: Vec<Vec<Duration>> = vec![Vec::new(); levels.len()];
    let mut aggregate: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
    for _ in 0..rounds {
        let (n, tps) = direct(&model_path, threads as i32, max_tokens);
        direct_tokens = n;
        direct_tps.push(tps);
        for (level, &concurrency) in levels.iter().enumerate() {
            let started = Instant::now();
            let handles: Vec<_> = (0..concurrency)
                .map(|_| {
                    let addr = gw.addr;
                    let model = model_id.clone();
                    std::thread::spawn(move || one_stream(addr, &model, max_tokens))
                })
                .collect();
            let results: Vec<(StreamResult, Instant)> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            let end = results.iter().map(|r| r.1).max().unwrap();
            let total: usize = results.iter().map(|r| r.0.tokens).sum();
            aggregate[level].push(total as f64 / (end - started).as_secs_f64());
            for (r, _) in &results {
                ttfts[level].push(r.ttft);
                if concurrency == 1 {
                    single_tps.push(r.decode_tps);
                }
            }
        }
        eprintln!(
            "round: direct single {:.1} tok/s; gateway single {:.1} tok/s, aggregate 1/4/8 streams {:.1} / {:.1} / {:.1}",
            tps,
            single_tps.last().copied().unwrap_or(0.0),
            aggregate[0].last().copied().unwrap_or(0.0),
            aggregate[1].last().copied().unwrap_or(0.0),
            aggregate[2].last().copied().unwrap_or(0.0),
        );
    }
    let rows: Vec<_> = levels
        .iter()
        .enumerate()
        .map(|(level, &concurrency)| {
            let t = &mut ttfts[level];
            t.sort();
            let agg = aggregate[level].iter().sum::<f64>() / aggregate[level].len() as f64;
            (concurrency, agg, percentile(t, 0.5), percentile(t, 0.99))
        })
        .collect();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let d = median(&mut direct_tps);
    let g = median(&mut single_tps);
    println!("\n## gateway_vs_direct ({model_id}, {threads} threads, {max_tokens} tokens, {rounds} rounds)\n");
    println!("| measure | value |\n|---|---|");
    println!(
        "| direct llama-cpp-2 loop, decode tok/s (median) | {d:.1} ({direct_tokens} tokens) |"
    );
    println!("| gateway single stream, decode tok/s (median) | {g:.1} |");
    println!("| ratio gateway ÷ direct | {:.3} |", g / d);
    let single_agg = rows[0].1;
    for (c, agg, p50, p99) in &rows {
        println!(
            "| {c} stream(s): aggregate tok/s | {agg:.1} ({:.2}× single) |\n| {c} stream(s): TTFT p50 / p99 | {:.1} ms / {:.1} ms |",
            agg / single_agg,
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
    for (n, tps) in &batched {
        println!("| direct llama-cpp-2, {n} sequences in one batch: aggregate tok/s | {tps:.1} ({:.2}× direct single) |", tps / d);
    }
    println!(
        "| direct prompt processing (pp512), tok/s | {pp512:.1} ({:.2}× direct single) |",
        pp512 / d
    );
    println!(
        "| direct 512 tokens with logits at every position, tok/s | {pp512_all:.1} ({:.2}× direct single) |",
        pp512_all / d
    );
    println!(
        "| gateway RSS, no model loaded | {:.1} MB |",
        rss_kib as f64 / 1024.0
    );
}
