//! Tier A: artifact validation, data loading, training determinism and the quality of the
//! built-in model.

// Helpers outside `#[test]` functions panic on purpose too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use switchyard_intent::artifact::{Artifact, WeightRow};
use switchyard_intent::train::{self, Dataset, TrainConfig};
use switchyard_intent::{Intent, IntentError, TierA, BUILTIN_ARTIFACT, NUM_INTENTS};

fn crate_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A small, valid artifact to break in different ways.
fn tiny_artifact() -> Artifact {
    let mut artifact = Artifact::from_json(BUILTIN_ARTIFACT).unwrap();
    artifact.weights.rows.truncate(3);
    artifact
}

fn tiny_json_value() -> serde_json::Value {
    serde_json::to_value(tiny_artifact()).unwrap()
}

fn load_value(value: &serde_json::Value) -> Result<TierA, IntentError> {
    TierA::from_json(&value.to_string())
}

#[test]
fn tiny_artifact_is_valid() {
    let model = load_value(&tiny_json_value()).unwrap();
    assert_eq!(model.nonzero_buckets(), 3);
}

#[test]
fn rejects_invalid_json() {
    assert!(matches!(TierA::from_json(""), Err(IntentError::Json(_))));
    assert!(matches!(
        TierA::from_json("{\"schema_version\": 1"),
        Err(IntentError::Json(_))
    ));
    assert!(matches!(
        TierA::from_json("[1, 2, 3]"),
        Err(IntentError::Json(_))
    ));
    let mut v = tiny_json_value();
    v.as_object_mut().unwrap().remove("weights");
    assert!(matches!(load_value(&v), Err(IntentError::Json(_))));
    let mut v = tiny_json_value();
    v["features"]["surprise"] = serde_json::json!(true);
    assert!(matches!(load_value(&v), Err(IntentError::Json(_))));
    let mut v = tiny_json_value();
    v["intercepts"][0] = serde_json::json!("zero");
    assert!(matches!(load_value(&v), Err(IntentError::Json(_))));
}

#[test]
fn rejects_other_schema_versions() {
    let mut v = tiny_json_value();
    v["schema_version"] = serde_json::json!(2);
    match load_value(&v) {
        Err(IntentError::SchemaVersion {
            found: 2,
            expected: 1,
        }) => {}
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn rejects_bad_labels() {
    let mut v = tiny_json_value();
    v["labels"][3] = serde_json::json!("poetry");
    assert!(matches!(load_value(&v), Err(IntentError::UnknownLabel(l)) if l == "poetry"));

    let mut v = tiny_json_value();
    v["labels"][3] = serde_json::json!("chat");
    assert!(matches!(load_value(&v), Err(IntentError::Labels(_))));

    let mut v = tiny_json_value();
    v["labels"].as_array_mut().unwrap().pop();
    assert!(matches!(load_value(&v), Err(IntentError::Labels(_))));
}

#[test]
fn label_order_in_the_artifact_is_honoured() {
    // Swapping two label names and their columns must give the same model.
    let original = tiny_artifact();
    let mut swapped = original.clone();
    swapped.labels.swap(0, 6);
    swapped.intercepts.swap(0, 6);
    for WeightRow(_, row) in &mut swapped.weights.rows {
        row.swap(0, 6);
    }
    let a = TierA::from_artifact(&original).unwrap();
    let b = TierA::from_artifact(&swapped).unwrap();
    for text in [
        "read this aloud",
        "hello there",
        "write a 2000-word essay on rivers",
    ] {
        assert_eq!(a.classify(text), b.classify(text));
    }
}

#[test]
fn rejects_dimension_errors() {
    let mut v = tiny_json_value();
    v["intercepts"].as_array_mut().unwrap().pop();
    assert!(matches!(load_value(&v), Err(IntentError::Dimensions(_))));

    let mut v = tiny_json_value();
    v["weights"]["rows"][1][1]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(5));
    assert!(matches!(load_value(&v), Err(IntentError::Dimensions(_))));

    let mut v = tiny_json_value();
    v["weights"]["rows"][0][0] = serde_json::json!(1u64 << 15);
    assert!(
        matches!(load_value(&v), Err(IntentError::Dimensions(m)) if m.contains("out of range"))
    );

    let mut v = tiny_json_value();
    let rows = v["weights"]["rows"].as_array_mut().unwrap();
    rows.swap(0, 1);
    assert!(matches!(load_value(&v), Err(IntentError::Dimensions(m)) if m.contains("ascending")));

    let mut v = tiny_json_value();
    v["weights"]["layout"] = serde_json::json!("dense");
    assert!(matches!(load_value(&v), Err(IntentError::Dimensions(_))));
}

#[test]
fn rejects_non_finite_numbers() {
    // JSON has no NaN; a value beyond f32's range becomes infinite when read.
    let mut v = tiny_json_value();
    v["weights"]["scale"] = serde_json::json!(1e39);
    assert!(matches!(load_value(&v), Err(IntentError::NonFinite(_))));
    let mut v = tiny_json_value();
    v["weights"]["scale"] = serde_json::json!(1e30);
    v["weights"]["rows"][2][1][4] = serde_json::json!(2_000_000_000);
    assert!(matches!(load_value(&v), Err(IntentError::NonFinite(_))));
    for bad_scale in [0.0, -0.01] {
        let mut v = tiny_json_value();
        v["weights"]["scale"] = serde_json::json!(bad_scale);
        assert!(matches!(load_value(&v), Err(IntentError::NonFinite(_))));
    }
    // Weights are integers: a fraction or an out-of-range number is malformed JSON.
    let mut v = tiny_json_value();
    v["weights"]["rows"][2][1][4] = serde_json::json!(0.5);
    assert!(matches!(load_value(&v), Err(IntentError::Json(_))));
    let mut v = tiny_json_value();
    v["intercepts"][2] = serde_json::json!(-1e300);
    assert!(matches!(load_value(&v), Err(IntentError::NonFinite(_))));

    let mut artifact = tiny_artifact();
    artifact.weights.scale = f32::NAN;
    assert!(matches!(
        TierA::from_artifact(&artifact),
        Err(IntentError::NonFinite(_))
    ));
    let mut artifact = tiny_artifact();
    artifact.intercepts[1] = f32::INFINITY;
    assert!(matches!(
        TierA::from_artifact(&artifact),
        Err(IntentError::NonFinite(_))
    ));
}

#[test]
fn rejects_unsupported_feature_configs() {
    for (key, value) in [
        ("hash", serde_json::json!("md5")),
        ("buckets_log2", serde_json::json!(30)),
        ("char_ngram_min", serde_json::json!(0)),
        ("char_ngram_max", serde_json::json!(9)),
        ("word_ngram_max", serde_json::json!(3)),
        ("max_head_bytes", serde_json::json!(4)),
        ("tf", serde_json::json!("raw")),
        ("norm", serde_json::json!("l1")),
    ] {
        let mut v = tiny_json_value();
        v["features"][key] = value;
        assert!(
            matches!(load_value(&v), Err(IntentError::FeatureConfig(_))),
            "{key} should be rejected"
        );
    }
}

#[test]
fn artifact_json_round_trips() {
    let artifact = Artifact::from_json(BUILTIN_ARTIFACT).unwrap();
    let json = artifact.to_json().unwrap();
    assert_eq!(Artifact::from_json(&json).unwrap(), artifact);
    // The committed file is exactly what the writer produces.
    assert_eq!(json, BUILTIN_ARTIFACT);
}

#[test]
fn data_errors_name_the_line() {
    let path = Path::new("bad.jsonl");
    let cases = [
        ("{\"text\": \"hi\", \"intent\": \"chat\"}\n{not json}\n", 2, "invalid example"),
        ("\n{\"text\": \"hi\", \"intent\": \"poetry\"}\n", 2, "unknown intent"),
        ("{\"text\": \"  \", \"intent\": \"chat\"}\n", 1, "empty"),
        ("{\"text\": \"hi\"}\n", 1, "intent"),
        ("{\"text\": \"hi\", \"intent\": \"chat\", \"x\": 1}\n", 1, "unknown field"),
        (
            "{\"text\": \"Hi  there\", \"intent\": \"chat\"}\n{\"text\": \"hi there\", \"intent\": \"tts\"}\n",
            2,
            "duplicate text (first on line 1)",
        ),
    ];
    for (text, line, needle) in cases {
        match Dataset::parse(path, text) {
            Err(IntentError::Data {
                line: got, message, ..
            }) => {
                assert_eq!(got, line, "{text:?}: {message}");
                assert!(message.contains(needle), "{text:?}: {message}");
            }
            other => panic!("{text:?}: expected a data error, got {other:?}"),
        }
    }
    let error = Dataset::parse(path, "oops\n").unwrap_err();
    assert!(error.to_string().starts_with("bad.jsonl:1: "), "{error}");
    assert!(matches!(
        Dataset::load(Path::new("/nonexistent/train.jsonl")),
        Err(IntentError::Io { .. })
    ));
}

#[test]
fn overlapping_heldout_is_rejected() {
    let a = Dataset::parse(
        Path::new("a"),
        "{\"text\": \"Read this aloud\", \"intent\": \"tts\"}\n",
    )
    .unwrap();
    let b = Dataset::parse(
        Path::new("b"),
        "{\"text\": \"hello\", \"intent\": \"chat\"}\n{\"text\": \"read  this ALOUD\", \"intent\": \"tts\"}\n",
    )
    .unwrap();
    assert!(matches!(
        a.check_disjoint(&b),
        Err(IntentError::Data { line: 2, .. })
    ));
}

fn tiny_training_set() -> Dataset {
    let examples: [(&str, [&str; 4]); NUM_INTENTS] = [
        (
            "chat",
            [
                "hello, how are you?",
                "why is the sky blue",
                "thanks a lot!",
                "tell me a joke",
            ],
        ),
        (
            "code",
            [
                "write a python function to sort a list",
                "fix this rust compile error",
                "sql query for top customers",
                "regex for emails in javascript",
            ],
        ),
        (
            "summarize",
            [
                "summarize this article",
                "tl;dr of the text below",
                "give me the key points of this report",
                "condense these notes",
            ],
        ),
        (
            "long-form",
            [
                "write a 2000-word essay on rivers",
                "write a long story about pirates",
                "draft a detailed report on solar power",
                "write a blog post about travel",
            ],
        ),
        (
            "tool-use",
            [
                "what's the weather in Paris right now",
                "set an alarm for 7am",
                "send an email to Bob",
                "check the bitcoin price",
            ],
        ),
        (
            "classify",
            [
                "is this review positive or negative",
                "classify this email as spam or not",
                "label the sentiment of these tweets",
                "which category fits this ticket",
            ],
        ),
        (
            "tts",
            [
                "read this aloud",
                "say this out loud please",
                "convert this text to speech",
                "narrate this story in a calm voice",
            ],
        ),
    ];
    let mut text = String::new();
    for (label, texts) in examples {
        for t in texts {
            text.push_str(&serde_json::json!({"text": t, "intent": label}).to_string());
            text.push('\n');
        }
    }
    Dataset::parse(Path::new("tiny.jsonl"), &text).unwrap()
}

#[test]
fn training_is_deterministic_and_fits_a_tiny_set() {
    let data = tiny_training_set();
    let cfg = TrainConfig {
        alphas: vec![0.1, 1.0],
        cv_folds: 2,
        min_bucket_examples: 1,
        features: switchyard_intent::FeatureConfig {
            buckets_log2: 12,
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let first = train::train(&cfg, &data).unwrap();
    let second = train::train(&cfg, &data).unwrap();
    let json = first.artifact.to_json().unwrap();
    assert_eq!(json, second.artifact.to_json().unwrap());
    assert_eq!(first.cv.len(), 2);
    assert!(cfg.alphas.contains(&first.alpha));

    // The artifact loads back into the same model and fits its training data.
    let reloaded = TierA::from_json(&json).unwrap();
    let evaluation = train::evaluate(&reloaded, &data.examples);
    assert!(evaluation.accuracy >= 0.9, "{evaluation}");
    let info = first.artifact.training.as_ref().unwrap();
    assert_eq!(info.train_examples, 28);
    assert_eq!(info.train_sha256, data.sha256);
    assert_eq!(info.train_examples_per_label["tts"], 4);
}

#[test]
fn training_rejects_missing_labels_and_bad_config() {
    let mut data = tiny_training_set();
    data.examples.retain(|e| e.intent != Intent::Tts);
    let cfg = TrainConfig {
        alphas: vec![1.0],
        ..TrainConfig::default()
    };
    assert!(
        matches!(train::train(&cfg, &data), Err(IntentError::Training(m)) if m.contains("tts"))
    );

    let data = tiny_training_set();
    for cfg in [
        TrainConfig {
            alphas: vec![],
            ..TrainConfig::default()
        },
        TrainConfig {
            alphas: vec![-1.0],
            ..TrainConfig::default()
        },
        TrainConfig {
            alphas: vec![0.1, 1.0],
            cv_folds: 1,
            ..TrainConfig::default()
        },
        TrainConfig {
            alphas: vec![0.1, 1.0],
            cv_folds: 5,
            ..TrainConfig::default()
        },
    ] {
        assert!(
            matches!(train::train(&cfg, &data), Err(IntentError::Training(_))),
            "{cfg:?}"
        );
    }
}

#[test]
fn builtin_classifies_obvious_requests() {
    let model = TierA::builtin().unwrap();
    assert_eq!(model.version(), "intent-tier-a-v1");
    let cases: [(Intent, &[&str]); NUM_INTENTS] = [
        (
            Intent::Chat,
            &[
                "hi, how are you doing today?",
                "why do cats purr?",
                "thanks, that helped a lot",
            ],
        ),
        (
            Intent::Code,
            &[
                "write a python function that reverses a linked list",
                "fix this TypeError in my javascript code",
                "```rust\nfn main() { let x: i32 = \"a\"; }\n```\nwhy doesn't this compile?",
            ],
        ),
        (
            Intent::Summarize,
            &[
                "summarize this article in three bullet points",
                "tl;dr this article for me please",
                "give me the key takeaways of this meeting transcript",
            ],
        ),
        (
            Intent::LongForm,
            &[
                "write a 2000-word essay on the industrial revolution",
                "write a long bedtime story about a dragon",
                "draft a detailed report on electric cars",
            ],
        ),
        (
            Intent::ToolUse,
            &[
                "what's the weather in Paris right now?",
                "set an alarm for 6am tomorrow",
                "send an email to my boss saying I'm late",
            ],
        ),
        (
            Intent::Classify,
            &[
                "is this review positive or negative: \"terrible service\"",
                "classify this email as spam or not spam",
                "label the sentiment of each tweet below",
            ],
        ),
        (
            Intent::Tts,
            &[
                "read this aloud",
                "convert this text to speech with a female voice",
                "please read the following paragraph out loud",
            ],
        ),
    ];
    for (intent, texts) in cases {
        for text in texts {
            let p = model.classify(text);
            assert_eq!(p.intent, intent, "{text:?}: {p:?}");
        }
    }
}

#[test]
fn odd_inputs_do_not_panic() {
    let model = TierA::builtin().unwrap();
    let giant = "lorem ipsum dolor sit amet ".repeat(200_000);
    let emoji = "🙂🎉漢字 ".repeat(10_000);
    let texts = [
        "",
        " ",
        "\n\t  \r\n",
        "?",
        "\u{0}",
        "a",
        "🙂",
        giant.as_str(),
        emoji.as_str(),
        "\u{202e}read this aloud",
    ];
    for text in texts {
        let p = model.classify(text);
        let sum: f32 = p.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
        assert!(p.probabilities.iter().all(|x| x.is_finite() && *x >= 0.0));
        assert!(p.confidence >= 1.0 / NUM_INTENTS as f32);
        assert_eq!(p.probability(p.intent), p.confidence);
        let (runner_up, q) = p.runner_up();
        assert_ne!(runner_up, p.intent);
        assert!(q <= p.confidence);
    }
    // Blank input gives the intercept-only prior, the same for any blank text.
    assert_eq!(model.classify(""), model.classify(" \n "));
}

#[test]
fn classify_is_consistent_across_threads() {
    let model = std::sync::Arc::new(TierA::builtin().unwrap());
    let texts = [
        "read this aloud",
        "summarize this",
        "write a haiku about rust",
        "weather in Oslo",
    ];
    let expected: Vec<_> = texts.iter().map(|t| model.classify(t)).collect();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || texts.iter().map(|t| model.classify(t)).collect::<Vec<_>>())
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap(), expected);
    }
    let mut scratch = switchyard_intent::Scratch::new();
    for (text, p) in texts.iter().zip(&expected) {
        assert_eq!(&model.classify_with(text, &mut scratch), p);
    }
}

#[test]
fn builtin_artifact_matches_the_training_data() {
    let artifact = Artifact::from_json(BUILTIN_ARTIFACT).unwrap();
    let info = artifact.training.as_ref().unwrap();
    let train_set = Dataset::load(&crate_path("data/train.jsonl")).unwrap();
    assert_eq!(
        info.train_sha256, train_set.sha256,
        "data/train.jsonl changed since the artifact was trained; rerun switchyard-train-intent"
    );
    assert_eq!(info.train_examples, train_set.examples.len());
    let heldout = Dataset::load(&crate_path("data/heldout.jsonl")).unwrap();
    assert_eq!(
        info.heldout_sha256.as_deref(),
        Some(heldout.sha256.as_str())
    );
    // The held-out data never overlaps the training data.
    train_set.check_disjoint(&heldout).unwrap();
}

#[test]
fn training_data_is_varied_enough() {
    let train_set = Dataset::load(&crate_path("data/train.jsonl")).unwrap();
    for intent in Intent::ALL {
        assert!(train_set.counts()[intent.index()] >= 60, "{intent}");
    }
}

#[test]
fn builtin_reaches_the_heldout_target() {
    let model = TierA::builtin().unwrap();
    let heldout = Dataset::load(&crate_path("data/heldout.jsonl")).unwrap();
    let evaluation = train::evaluate(&model, &heldout.examples);
    assert!(evaluation.total >= 150);
    assert!(
        evaluation.accuracy >= 0.95,
        "held-out accuracy {:.4} < 0.95\n{evaluation}",
        evaluation.accuracy
    );
    assert!(evaluation.macro_f1 >= 0.94, "{evaluation}");
    // The numbers stored in the artifact are the ones this build measures.
    let artifact = Artifact::from_json(BUILTIN_ARTIFACT).unwrap();
    let metrics = artifact.metrics.unwrap();
    let stored = metrics.heldout_accuracy.unwrap();
    assert!(
        (stored - evaluation.accuracy).abs() < 1e-6,
        "{stored} vs {}",
        evaluation.accuracy
    );
}
