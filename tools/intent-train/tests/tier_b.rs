//! Tier B end to end: the built-in artifact, the real embedder, the held-out split.
//! Tests that need the models skip (with the reason printed) when they are not fetched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failures

use std::path::PathBuf;

use switchyard_engine_llamacpp::encoder::{EncoderOptions, SentenceEncoder};
use switchyard_engine_onnx::{
    init_runtime, EmbedderOptions, MiniLmEmbedder, MiniLmPaths, MINILM_ID,
};
use switchyard_intent::tier_b::{TierBArtifact, BUILTIN_ARTIFACT};
use switchyard_intent::{Intent, TierB};
use switchyard_intent_train::train::evaluate_head;
use switchyard_intent_train::{
    default_models_dir, embed_all, load_jsonl, minilm_gguf, workspace_dir, GgufSentenceEmbedder,
    MiniLmSentenceEmbedder,
};

fn data(name: &str) -> PathBuf {
    workspace_dir().join("router/intent/data").join(name)
}

fn embedder(test: &str) -> Option<MiniLmEmbedder> {
    let paths = MiniLmPaths::in_models_dir(&default_models_dir());
    if !paths.all_present() {
        eprintln!(
            "SKIPPED {test}: ONNX Runtime / {MINILM_ID} not found under {} \
             (run `switchyard models fetch`)",
            default_models_dir().display()
        );
        return None;
    }
    init_runtime(&paths.runtime_library).unwrap();
    // Embed exactly as the head was trained (and as the gateway serves it).
    let options = EmbedderOptions {
        threads: 2,
        max_tokens: TierB::builtin().unwrap().max_tokens(),
        ..EmbedderOptions::default()
    };
    Some(MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options).unwrap())
}

#[test]
fn builtin_artifact_loads_and_was_trained_on_the_current_data() {
    let tier_b = TierB::builtin().unwrap();
    assert_eq!(tier_b.dim(), 384);
    assert_eq!(tier_b.embedding_model(), MINILM_ID);
    let artifact: TierBArtifact = serde_json::from_str(BUILTIN_ARTIFACT).unwrap();
    let training = artifact.training.expect("artifact records its training");
    let train = load_jsonl(&data("train.jsonl")).unwrap();
    assert_eq!(
        training.train_sha256, train.sha256,
        "router/intent/data/train.jsonl changed since tier B was trained: rerun \
         `cargo run --release -p switchyard-intent-train --bin switchyard-train-intent-tier-b`"
    );
    assert_eq!(training.train_examples, train.examples.len());
    assert!(tier_b.max_tokens() >= 8 && tier_b.max_tokens() <= 128);
}

#[test]
fn heldout_accuracy_of_the_builtin_head() {
    let Some(embedder) = embedder("heldout_accuracy_of_the_builtin_head") else {
        return;
    };
    let tier_b = TierB::builtin().unwrap();
    let heldout = load_jsonl(&data("heldout.jsonl")).unwrap();
    let embeddings = embed_all(&MiniLmSentenceEmbedder(embedder), &heldout.examples).unwrap();
    let texts: Vec<&str> = heldout.examples.iter().map(|e| e.text.as_str()).collect();
    let labels: Vec<Intent> = heldout.examples.iter().map(|e| e.intent).collect();
    let evaluation = evaluate_head(&tier_b, &texts, &embeddings, &labels).unwrap();
    eprintln!(
        "tier B held-out: accuracy {:.4}, macro-F1 {:.4} over {} examples",
        evaluation.accuracy, evaluation.macro_f1, evaluation.examples
    );
    assert!(evaluation.accuracy >= 0.90, "{evaluation:?}");

    // The artifact's recorded numbers are what this machine reproduces.
    let artifact: TierBArtifact = serde_json::from_str(BUILTIN_ARTIFACT).unwrap();
    let recorded = artifact.metrics.unwrap().heldout_accuracy.unwrap();
    assert!(
        (recorded - evaluation.accuracy).abs() <= 0.01,
        "recorded {recorded}, measured {}",
        evaluation.accuracy
    );
}

#[test]
fn classify_through_the_sentence_embedder_trait() {
    let Some(embedder) = embedder("classify_through_the_sentence_embedder_trait") else {
        return;
    };
    let tier_b = TierB::builtin().unwrap();
    let adapter = MiniLmSentenceEmbedder(embedder);
    let cases = [
        ("Please read this paragraph out loud for me", Intent::Tts),
        (
            "Write a Python function that parses a CSV file",
            Intent::Code,
        ),
        (
            "Summarize the following article in two sentences",
            Intent::Summarize,
        ),
    ];
    for (text, expected) in cases {
        let p = tier_b.classify(&adapter, text).unwrap();
        assert_eq!(p.intent, expected, "{text:?}: {p:?}");
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

fn gguf_embedder(test: &str) -> Option<GgufSentenceEmbedder> {
    let gguf = minilm_gguf(&default_models_dir());
    if !gguf.is_file() {
        eprintln!(
            "SKIPPED {test}: {} not found (run `switchyard models fetch`)",
            gguf.display()
        );
        return None;
    }
    let max_tokens = TierB::builtin().unwrap().max_tokens();
    let options = EncoderOptions {
        threads: 2,
        max_tokens,
        context: max_tokens,
    };
    Some(GgufSentenceEmbedder(
        SentenceEncoder::load(&gguf, &options).unwrap(),
    ))
}

/// The gateway serves tier B on llama.cpp whenever the GGUF is there: the head, trained on the
/// int8 ONNX model's embeddings, must keep its held-out accuracy on those vectors too.
#[test]
fn heldout_accuracy_on_the_llamacpp_encoder() {
    let test = "heldout_accuracy_on_the_llamacpp_encoder";
    let (Some(onnx), Some(gguf)) = (embedder(test), gguf_embedder(test)) else {
        return;
    };
    let tier_b = TierB::builtin().unwrap();
    let heldout = load_jsonl(&data("heldout.jsonl")).unwrap();
    let on_gguf = embed_all(&gguf, &heldout.examples).unwrap();
    let on_onnx = embed_all(&MiniLmSentenceEmbedder(onnx), &heldout.examples).unwrap();
    let cosines: Vec<f32> = on_gguf
        .iter()
        .zip(&on_onnx)
        .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x * y).sum())
        .collect();
    let min = cosines.iter().copied().fold(f32::INFINITY, f32::min);
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    let texts: Vec<&str> = heldout.examples.iter().map(|e| e.text.as_str()).collect();
    let labels: Vec<Intent> = heldout.examples.iter().map(|e| e.intent).collect();
    let evaluation = evaluate_head(&tier_b, &texts, &on_gguf, &labels).unwrap();
    eprintln!(
        "tier B held-out on llama.cpp Q8_0: accuracy {:.4}, macro-F1 {:.4} over {} examples; \
         cosine to the ONNX int8 vectors min {min:.4}, mean {mean:.4}",
        evaluation.accuracy, evaluation.macro_f1, evaluation.examples
    );
    assert!(min > 0.99, "min cosine {min}");
    let artifact: TierBArtifact = serde_json::from_str(BUILTIN_ARTIFACT).unwrap();
    let recorded = artifact.metrics.unwrap().heldout_accuracy.unwrap();
    assert!(
        evaluation.accuracy >= recorded - 0.02,
        "recorded {recorded} on ONNX Runtime, {} on llama.cpp",
        evaluation.accuracy
    );
}
