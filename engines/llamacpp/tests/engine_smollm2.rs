//! Engine-level tests of the llama.cpp engine with the real SmolLM2-135M-Instruct GGUF (fetched
//! by `switchyard models fetch`; scripts/test.sh does it first).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use switchyard_core::{
    ChatMessage, Engine, EngineConfig, EngineError, FinishReason, GenerateRequest, Generation,
    GenerationEvent, LoadedModel, Manifest, Prompt, SamplingParams,
};
use switchyard_engine_llamacpp::LlamaCppEngine;

fn manifest() -> Manifest {
    let dir = std::env::var_os("SWITCHYARD_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs::cache_dir().unwrap().join("switchyard").join("models"))
        .join("smollm2-135m-instruct");
    Manifest::load(&dir).unwrap_or_else(|e| panic!("run `switchyard models fetch` first: {e}"))
}

fn config() -> EngineConfig {
    EngineConfig {
        threads: 2,
        slots: 4,
        context_per_slot: 256,
        batch_size: 256,
        queue_size: 2,
    }
}

/// One model for the whole file (tests run in parallel threads).
fn model() -> Arc<dyn LoadedModel> {
    static MODEL: OnceLock<Arc<dyn LoadedModel>> = OnceLock::new();
    Arc::clone(MODEL.get_or_init(|| LlamaCppEngine.load(&manifest(), &config()).unwrap()))
}

fn greedy(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: Prompt::Chat(vec![ChatMessage {
            role: "user".into(),
            content: prompt.into(),
        }]),
        sampling: SamplingParams {
            temperature: 0.0,
            max_tokens,
            ..SamplingParams::default()
        },
    }
}

fn drain(mut g: Generation) -> (String, FinishReason, u32) {
    let mut text = String::new();
    loop {
        match g.events.blocking_recv() {
            Some(GenerationEvent::Token { text: t }) => text.push_str(&t),
            Some(GenerationEvent::Finished { reason, usage }) => {
                return (text, reason, usage.completion_tokens)
            }
            Some(GenerationEvent::Failed(e)) => panic!("generation failed: {e}"),
            None => panic!("stream ended without Finished"),
        }
    }
}

fn wait_idle(model: &Arc<dyn LoadedModel>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while model.status().active + model.status().queued > 0 {
        assert!(
            Instant::now() < deadline,
            "model never became idle: {:?}",
            model.status()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn memory_estimate_matches_the_loaded_model() {
    let estimate = LlamaCppEngine
        .memory_estimate(&manifest(), &config())
        .unwrap();
    let loaded = model().status().memory_bytes;
    let ratio = estimate as f64 / loaded as f64;
    assert!(
        (0.9..1.1).contains(&ratio),
        "estimate {estimate} vs loaded {loaded}"
    );
    assert_eq!(model().status().engine, "llama.cpp/cpu");
    let caps = model().capabilities();
    assert_eq!((caps.context_per_request, caps.parallel_slots), (256, 4));
}

#[test]
fn greedy_generation_is_deterministic_and_counted() {
    let m = model();
    let (a, reason, n) = drain(m.generate(greedy("What is 2 plus 2?", 24)).unwrap());
    let (b, _, _) = drain(m.generate(greedy("What is 2 plus 2?", 24)).unwrap());
    assert_eq!(a, b);
    assert!(a.contains('4'), "{a:?}");
    assert!(n <= 24);
    if reason == FinishReason::Length {
        assert_eq!(n, 24);
    }
}

#[test]
fn stop_sequence_ends_generation_before_it() {
    let m = model();
    let mut req = greedy("What is 2 plus 2?", 24);
    req.sampling.stop = vec!["4".into()];
    let (text, reason, _) = drain(m.generate(req).unwrap());
    assert_eq!(reason, FinishReason::Stop);
    assert!(!text.contains('4'), "{text:?}");
}

#[test]
fn too_long_prompt_is_refused_before_queueing() {
    let err = model()
        .generate(greedy(&"word ".repeat(400), 8))
        .unwrap_err();
    match err {
        EngineError::InvalidRequest { message, param } => {
            assert!(message.contains("context is 256 tokens"), "{message}");
            assert_eq!(param.as_deref(), Some("messages"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn requests_decode_together_and_cancellation_frees_slots() {
    // A private model so other tests do not disturb the counts.
    let m = LlamaCppEngine.load(&manifest(), &config()).unwrap();
    let mut running: Vec<Generation> = (0..4)
        .map(|_| {
            m.generate(greedy("Write a long story about a dragon.", 200))
                .unwrap()
        })
        .collect();
    // All four are decoded at once (continuous batching), not queued one after another.
    for g in &mut running {
        assert!(matches!(
            g.events.blocking_recv(),
            Some(GenerationEvent::Token { .. })
        ));
    }
    assert_eq!(m.status().active, 4);
    // Two more wait in the queue (queue_size 2); the next is refused.
    let queued: Vec<Generation> = (0..2)
        .map(|_| m.generate(greedy("Hi", 4)).unwrap())
        .collect();
    assert!(matches!(
        m.generate(greedy("Hi", 4)),
        Err(EngineError::QueueFull { .. })
    ));
    // Dropping a generation cancels it within a decode step; its slot goes to a queued one.
    drop(running.drain(..2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while m.status().queued > 0 {
        assert!(
            Instant::now() < deadline,
            "queued requests never started: {:?}",
            m.status()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    for g in queued {
        drain(g);
    }
    drop(running);
    wait_idle(&m);
    m.shutdown();
    assert!(matches!(
        m.generate(greedy("Hi", 4)),
        Err(EngineError::Unavailable(_))
    ));
}

#[test]
fn a_truncated_gguf_is_a_load_error_naming_the_file() {
    // The weights load on the worker thread: a file llama.cpp refuses must come back as a
    // clear error from `load`, not hang the caller or kill the process.
    let source = manifest();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        source.dir.join(switchyard_core::manifest::MANIFEST_FILE),
        dir.path().join(switchyard_core::manifest::MANIFEST_FILE),
    )
    .unwrap();
    let gguf = source.primary_path().unwrap();
    let bytes = std::fs::read(&gguf).unwrap();
    let copy = dir.path().join(gguf.file_name().unwrap());
    std::fs::write(&copy, &bytes[..bytes.len() / 3]).unwrap();
    let broken = Manifest::load(dir.path()).unwrap();
    let started = Instant::now();
    let err = match LlamaCppEngine.load(&broken, &config()) {
        Ok(_) => panic!("a truncated GGUF loaded"),
        Err(e) => e,
    };
    assert!(matches!(err, EngineError::Load(_)), "{err:?}");
    assert!(
        err.to_string().contains(&*copy.to_string_lossy()),
        "the error names the file: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
