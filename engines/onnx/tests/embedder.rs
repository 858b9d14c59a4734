//! The MiniLM embedder against the real model (skipped when the models are not fetched).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failures

mod common;

use std::sync::OnceLock;

use switchyard_engine_onnx::{
    init_runtime, EmbedderOptions, ExecutionProvider, MiniLmEmbedder, OnnxError, Placement,
};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One embedder for the whole test binary (the runtime can be loaded once per process).
fn embedder(test: &str) -> Option<&'static MiniLmEmbedder> {
    static EMBEDDER: OnceLock<MiniLmEmbedder> = OnceLock::new();
    let paths = common::minilm_paths(test)?;
    Some(EMBEDDER.get_or_init(|| {
        init_runtime(&paths.runtime_library).unwrap();
        MiniLmEmbedder::load(&paths.model, &paths.tokenizer, 2).unwrap()
    }))
}

#[test]
fn embeddings_are_unit_length_384_floats_on_cpu() {
    let Some(e) = embedder("embeddings_are_unit_length_384_floats_on_cpu") else {
        return;
    };
    assert_eq!(e.dim(), 384);
    assert_eq!(e.execution_provider(), ExecutionProvider::Cpu);
    assert_eq!(e.execution_provider().as_str(), "cpu");
    for text in [
        "hello",
        "Write a Rust function that reverses a string",
        "",
        "🙂 ?!",
    ] {
        let v = e.embed(text).unwrap();
        assert_eq!(v.len(), 384, "{text:?}");
        assert!(v.iter().all(|x| x.is_finite()), "{text:?}");
        let norm = cosine(&v, &v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_texts() {
    let Some(e) = embedder("paraphrases_are_closer_than_unrelated_texts") else {
        return;
    };
    let a = e
        .embed("Can you summarize this article in three sentences?")
        .unwrap();
    let b = e
        .embed("Please give me a short summary of this text.")
        .unwrap();
    let c = e
        .embed("What's the weather going to be like in Paris tomorrow?")
        .unwrap();
    let (ab, ac, bc) = (cosine(&a, &b), cosine(&a, &c), cosine(&b, &c));
    assert!(ab > ac + 0.2 && ab > bc + 0.2, "ab {ab} ac {ac} bc {bc}");
    // Same text, same vector.
    let a2 = e
        .embed("Can you summarize this article in three sentences?")
        .unwrap();
    assert!(cosine(&a, &a2) > 0.99999);
}

/// Reference values from Python `onnxruntime` 1.31.1 + `tokenizers` 0.23 on the same files
/// (mean pool over the mask, L2): the first 6 dimensions.
#[test]
fn matches_python_onnxruntime_reference() {
    let Some(e) = embedder("matches_python_onnxruntime_reference") else {
        return;
    };
    let cases: [(&str, [f32; 6]); 2] = [
        (
            "hello",
            [
                -0.066655, 0.048998, 0.055886, 0.082741, -0.082367, -0.074121,
            ],
        ),
        (
            "Can you summarize this article in three sentences?",
            [0.01943, 0.151406, -0.006527, 0.014362, 0.0392, 0.055094],
        ),
    ];
    for (text, expected) in cases {
        let v = e.embed(text).unwrap();
        for (i, (got, want)) in v.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 2e-4, "{text:?}[{i}]: {got} vs {want}");
        }
    }
}

#[test]
fn batch_matches_single_embeddings() {
    let Some(e) = embedder("batch_matches_single_embeddings") else {
        return;
    };
    let texts = [
        "short",
        "a somewhat longer sentence about routing requests to models",
        "read this out loud please",
    ];
    let batch = e.embed_batch(&texts).unwrap();
    assert_eq!(batch.len(), 3);
    for (text, v) in texts.iter().zip(&batch) {
        let single = e.embed(text).unwrap();
        let cos = cosine(&single, v);
        assert!(cos > 0.9999, "{text:?}: cosine {cos}");
        let max_diff = single
            .iter()
            .zip(v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-3, "{text:?}: max diff {max_diff}");
    }
    assert!(e.embed_batch::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn long_texts_are_truncated_to_128_tokens() {
    let Some(e) = embedder("long_texts_are_truncated_to_128_tokens") else {
        return;
    };
    let long = "the quick brown fox jumps over the lazy dog ".repeat(100);
    assert_eq!(e.token_count(&long).unwrap(), 128);
    assert_eq!(e.token_count("hello world").unwrap(), 4); // [CLS] hello world [SEP]
    let v = e.embed(&long).unwrap();
    assert_eq!(v.len(), 384);
    // A giant input costs no more than its start, and embeds like its start.
    let giant = long.repeat(200); // ~900 KB
    let started = std::time::Instant::now();
    let g = e.embed(&giant).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(cosine(&g, &v) > 0.9999);
}

#[test]
fn bad_files_give_clear_errors() {
    let Some(paths) = common::minilm_paths("bad_files_give_clear_errors") else {
        return;
    };
    init_runtime(&paths.runtime_library).unwrap();
    // The same library again is fine; another one is refused.
    init_runtime(&paths.runtime_library).unwrap();
    let other = std::env::temp_dir().join("libonnxruntime-other.so");
    std::fs::write(&other, b"x").unwrap();
    let err = init_runtime(&other).unwrap_err();
    assert!(
        matches!(err, OnnxError::RuntimeAlreadyLoaded { .. }),
        "{err}"
    );

    let dir = tempfile_dir();
    let missing = dir.join("nope.onnx");
    let err = MiniLmEmbedder::load(&missing, &paths.tokenizer, 1).unwrap_err();
    assert!(matches!(err, OnnxError::ModelMissing { .. }), "{err}");
    assert!(err.to_string().contains("nope.onnx"), "{err}");
    let err = MiniLmEmbedder::load(&paths.model, &dir.join("nope.json"), 1).unwrap_err();
    assert!(matches!(err, OnnxError::TokenizerMissing { .. }), "{err}");

    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"not an onnx model").unwrap();
    let err = MiniLmEmbedder::load(&garbage, &paths.tokenizer, 1).unwrap_err();
    assert!(matches!(err, OnnxError::Session { .. }), "{err}");
    assert!(err.to_string().contains("garbage.onnx"), "{err}");

    let bad_tokenizer = dir.join("tokenizer.json");
    std::fs::write(&bad_tokenizer, b"{\"not\": \"a tokenizer\"}").unwrap();
    let err = MiniLmEmbedder::load(&paths.model, &bad_tokenizer, 1).unwrap_err();
    assert!(matches!(err, OnnxError::Tokenizer { .. }), "{err}");

    let zero = EmbedderOptions {
        threads: 0,
        ..EmbedderOptions::default()
    };
    let err = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &zero).unwrap_err();
    assert!(matches!(err, OnnxError::Options(_)), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-onnx-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn gpu_providers_missing_from_the_library_fall_back_to_the_cpu_with_reasons() {
    let Some(first) = embedder("gpu_providers_fall_back") else {
        return;
    };
    let paths = common::minilm_paths("gpu_providers_fall_back").unwrap();
    let options = EmbedderOptions {
        threads: 1,
        placement: Placement {
            providers: vec![
                ExecutionProvider::TensorRt,
                ExecutionProvider::Cuda,
                ExecutionProvider::CoreMl,
            ],
            tensorrt_cache: Some(std::env::temp_dir().join("switchyard-trt-cache-test")),
            ..Placement::default()
        },
        ..EmbedderOptions::default()
    };
    let placed = MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options).unwrap();
    let report = placed.provider_report();
    // The pinned wheel is ONNX Runtime's CPU build: none of the GPU providers is in it.
    assert_eq!(report.used, ExecutionProvider::Cpu);
    let skipped: Vec<_> = report.skipped.iter().map(|s| s.provider).collect();
    assert_eq!(
        skipped,
        vec![
            ExecutionProvider::TensorRt,
            ExecutionProvider::Cuda,
            ExecutionProvider::CoreMl
        ]
    );
    for s in &report.skipped {
        assert!(
            s.reason.contains("not in this ONNX Runtime build")
                && s.reason.contains(s.provider.ort_name()),
            "{s:?}"
        );
    }
    // The fallback session computes the same vectors as the plain CPU one.
    let a = placed.embed("the provider changed").unwrap();
    let b = first.embed("the provider changed").unwrap();
    assert!(cosine(&a, &b) > 0.9999);
}
