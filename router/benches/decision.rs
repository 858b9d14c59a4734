#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]
//! Route decision latency, end to end through the three stages, for four kinds of request:
//! a short text that tier A decides, a low-confidence text that goes to tier B (when the
//! MiniLM model and ONNX Runtime are installed), an image request and an audio request.
//!
//! `cargo bench -p switchyard-router --bench decision` prints p50/p99 over many decisions
//! for each case (the figures `docs/BENCHMARKS.md` records), then runs criterion's own
//! measurement of the same closures (skip that with `BENCH_PERCENTILES_ONLY=1`).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use switchyard_engine_onnx::{EmbedderOptions, MiniLmEmbedder, MiniLmPaths};
use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
use switchyard_intent::TierA;
use switchyard_router::{
    BoxView, Claimed, Classifiers, Endpoint, ModelView, Part, RouteRequest, Router, RouterConfig,
    TierBSetup,
};
use switchyard_telemetry::Snapshot;

struct Onnx(MiniLmEmbedder);

impl SentenceEmbedder for Onnx {
    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed(text).map_err(|e| e.to_string())
    }
    fn dim(&self) -> usize {
        self.0.dim()
    }
}

fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| dirs_cache().map(|d| d.join("switchyard/models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

fn dirs_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
}

fn tier_b() -> Option<TierBSetup> {
    let paths = MiniLmPaths::in_models_dir(&models_dir());
    if !paths.all_present() {
        eprintln!(
            "tier B skipped: MiniLM / onnxruntime not in {}",
            models_dir().display()
        );
        return None;
    }
    switchyard_engine_onnx::init_runtime(&paths.runtime_library).ok()?;
    let head = TierB::builtin().ok()?;
    let options = EmbedderOptions {
        threads: 2,
        max_tokens: head.max_tokens(),
        spin: false,
        ..EmbedderOptions::default()
    };
    let embedder = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options).ok()?;
    Some(TierBSetup {
        head: Arc::new(head),
        embedder: Arc::new(Onnx(embedder)),
    })
}

fn views() -> Vec<ModelView> {
    let model = |id: &str, weights: u64, kv: u64| ModelView {
        id: id.into(),
        tasks: vec!["chat".into(), "completion".into()],
        engines: vec!["llama.cpp/cpu".into()],
        weights_bytes: weights,
        kv_bytes_per_token: kv,
        context_per_request: 2048,
        loaded: true,
        queued: 0,
        active: 1,
        slots: 8,
    };
    vec![
        model("smollm2-135m-instruct", 100_000_000, 92_160),
        model("gemma3-270m", 250_000_000, 36_864),
    ]
}

fn png() -> Arc<[u8]> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0".to_vec();
    v.resize(256, 0);
    Arc::from(v)
}

fn wav() -> Arc<[u8]> {
    let mut v = b"RIFF\x24\x7d\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data\0\x7d\0\0".to_vec();
    v.resize(32_044, 0);
    Arc::from(v)
}

fn chat(parts: Vec<Part>) -> RouteRequest {
    RouteRequest {
        endpoint: Endpoint::ChatCompletions,
        model: "auto".into(),
        parts,
        max_tokens: Some(64),
        hints: Default::default(),
    }
}

/// A 128-token-ish request whose intent tier A is unsure about, found among candidates.
fn unsure_text(tier_a: &TierA, threshold: f32) -> Option<String> {
    let candidates = [
        "hmm so about the thing we talked about yesterday with the numbers and the list, can you do something with it, maybe make it shorter or sort it out, whatever works best, I am not sure what I need exactly",
        "the quarterly figures came in and the team wants to know what it means for the roadmap, give me your take",
        "could you go through these notes and tell me which ones matter, then maybe write something up",
        "ok next one please",
        "I need help with the report and the script and also the email to the client",
    ];
    candidates
        .iter()
        .find(|t| tier_a.classify(t).confidence < threshold)
        .map(|t| (*t).to_owned())
}

/// p50 and p99 of whole decisions, and the mean time of each stage (from the trace).
fn percentiles(
    router: &Router,
    request: &RouteRequest,
    view: &BoxView<'_>,
    n: usize,
) -> (Duration, Duration, Vec<(&'static str, f64)>) {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n.min(200) {
        black_box(router.decide(request, view, false).ok());
    }
    let mut stages: Vec<(&'static str, f64)> = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let decision = black_box(router.decide(request, view, false).ok());
        samples.push(started.elapsed());
        for stage in decision.iter().flat_map(|d| &d.stages) {
            match stages.iter_mut().find(|(name, _)| *name == stage.stage) {
                Some((_, total)) => *total += stage.nanos as f64,
                None => stages.push((stage.stage, stage.nanos as f64)),
            }
        }
    }
    samples.sort();
    for (_, total) in &mut stages {
        *total /= n as f64 * 1e3;
    }
    (samples[n / 2], samples[(n * 99) / 100], stages)
}

fn bench(c: &mut Criterion) {
    let profile = switchyard_profiles::resolve("cpu-x86").expect("cpu-x86 profile");
    let threshold = profile.policy.classifier.tier_a_threshold;
    let tier_a = Arc::new(TierA::builtin().expect("tier A artifact"));
    let router = Router::new(RouterConfig {
        profile: Arc::new(profile),
        classifiers: Classifiers {
            tier_a: Arc::clone(&tier_a),
            tier_b: tier_b(),
        },
    });
    let snapshot = Snapshot::now();
    let models = views();
    let view = BoxView {
        snapshot: &snapshot,
        models: &models,
        default_max_tokens: 512,
    };
    let mut cases = vec![
        (
            "tier_a_short_text",
            chat(vec![Part::Text("What's the capital of France?".into())]),
        ),
        (
            "image_request",
            chat(vec![
                Part::Text("What does this sign say?".into()),
                Part::Bytes {
                    claimed: Claimed::Image,
                    data: png(),
                    field: "messages[0].content[1]".into(),
                },
            ]),
        ),
        (
            "audio_request",
            chat(vec![Part::Bytes {
                claimed: Claimed::Audio,
                data: wav(),
                field: "messages[0].content[0]".into(),
            }]),
        ),
    ];
    if router.config().classifiers.tier_b.is_some() {
        match unsure_text(&tier_a, threshold) {
            Some(text) => cases.push(("tier_b_low_confidence_text", chat(vec![Part::Text(text)]))),
            None => eprintln!("tier B case skipped: no candidate text is under the threshold"),
        }
    }
    for (name, request) in &cases {
        let decision = router.decide(request, &view, false);
        let summary = decision
            .as_ref()
            .map(|d| d.summary())
            .unwrap_or_else(|e| e.to_string());
        let n = if name.starts_with("tier_b") {
            2_000
        } else {
            20_000
        };
        let (p50, p99, stages) = percentiles(&router, request, &view, n);
        let stages: Vec<String> = stages
            .iter()
            .map(|(name, us)| format!("{name} {us:.1} us"))
            .collect();
        println!(
            "{name:28} p50 {:>9.1} us  p99 {:>9.1} us  ({n} decisions; mean per stage: {})\n{:30}{summary}",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            stages.join(", "),
            ""
        );
    }
    if std::env::var_os("BENCH_PERCENTILES_ONLY").is_some() {
        return;
    }
    let mut group = c.benchmark_group("route_decision");
    for (name, request) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(router.decide(request, &view, false).ok()))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
