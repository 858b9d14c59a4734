//! Tier B of the intent classifier: a linear head (multinomial logistic regression) over a
//! sentence embedding, consulted only when tier A is unsure.
//!
//! The head may also read an optional block of hashed n-gram features (the same
//! [`features::extract`](crate::features::extract) function tier A uses, with tier B's own
//! [`FeatureConfig`]): `logits = W_e · embedding + scale · W_n · ngrams + b`, one linear model
//! trained jointly. Whether that block is used, and its scale, is chosen by cross-validation on
//! the training data; the n-gram part costs microseconds next to the embedding.
//!
//! This crate does not run the embedding model: callers pass any [`SentenceEmbedder`] (the
//! gateway adapts `switchyard_engine_onnx::MiniLmEmbedder`, all-MiniLM-L6-v2, to it). The head
//! is trained offline by `switchyard-train-intent-tier-b` (crate `switchyard-intent-train`)
//! and shipped as a versioned JSON artifact:
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "version": "intent-tier-b-v1",
//!   "embedding_model": "all-minilm-l6-v2",   // the embedder the head was trained on
//!   "max_tokens": 48,                        // ... and its token limit
//!   "labels": ["chat", "code", ...],          // row order of weights and intercepts
//!   "dim": 384,
//!   "weights": [[dim numbers] per label],
//!   "intercepts": [one number per label],
//!   "ngrams": { "features": {FeatureConfig}, "scale": s,     // optional
//!               "buckets": [ascending ids], "rows": [[one number per label] per bucket] },
//!   "training": { data sha256, solver, hyper-parameters, cross-validation },
//!   "metrics": { train / cross-validation / held-out accuracy, macro-F1, per class }
//! }
//! ```
//!
//! ```
//! use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
//!
//! /// A stand-in embedder: every text maps to the same unit vector.
//! struct Constant(usize);
//! impl SentenceEmbedder for Constant {
//!     fn embed(&self, _text: &str) -> Result<Vec<f32>, String> {
//!         let mut v = vec![0.0; self.0];
//!         v[0] = 1.0;
//!         Ok(v)
//!     }
//!     fn dim(&self) -> usize {
//!         self.0
//!     }
//! }
//!
//! let tier_b = TierB::builtin()?;
//! let prediction = tier_b.classify(&Constant(tier_b.dim()), "read this aloud").unwrap();
//! assert!((prediction.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
//! # Ok::<(), switchyard_intent::IntentError>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::features::{self, FeatureConfig, Scratch};
use crate::{IntentError, Prediction, NUM_INTENTS};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The built-in tier B artifact, compiled into the binary (see [`TierB::builtin`]).
pub const BUILTIN_ARTIFACT: &str = include_str!("../artifacts/intent-tier-b-v1.json");

/// A sentence embedding model, as tier B sees it: text in, fixed-width vector out.
///
/// Implementations should return L2-normalised vectors of [`SentenceEmbedder::dim`] floats,
/// the same kind of vectors the head was trained on (see [`TierB::embedding_model`]).
pub trait SentenceEmbedder: Send + Sync {
    /// Embeds one text. The error is a human-readable reason.
    fn embed(&self, text: &str) -> Result<Vec<f32>, String>;

    /// Width of the vectors [`SentenceEmbedder::embed`] returns.
    fn dim(&self) -> usize;

    /// The engine that runs the embedding model (`llama.cpp`, `onnxruntime`), named in the
    /// route trace's reason.
    fn engine(&self) -> &str {
        "unnamed engine"
    }
}

/// Why tier B could not classify a text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TierBError {
    /// The embedder failed.
    #[error("sentence embedder failed: {0}")]
    Embedder(String),
    /// The embedding does not have the width the head was trained on.
    #[error("embedding has {found} dimensions, tier B head expects {expected}")]
    Dimension {
        /// Width of the head.
        expected: usize,
        /// Width of the embedding.
        found: usize,
    },
    /// The embedding contains NaN or infinite values.
    #[error("embedding contains non-finite values")]
    NonFinite,
}

/// A serialised tier B head (the JSON file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierBArtifact {
    /// Layout version of this file; must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Model name and version, e.g. `"intent-tier-b-v1"`.
    pub version: String,
    /// Catalog id of the embedding model the head was trained on (`"all-minilm-l6-v2"`).
    pub embedding_model: String,
    /// Token limit (special tokens included) the embeddings were computed with; serve with the
    /// same limit (see [`TierB::max_tokens`]).
    pub max_tokens: usize,
    /// Label of each weight row, a permutation of all intent labels.
    pub labels: Vec<String>,
    /// Embedding width; the length of every weight row.
    pub dim: usize,
    /// One row of `dim` weights per label, in `labels` order.
    pub weights: Vec<Vec<f32>>,
    /// Bias per label, in `labels` order.
    pub intercepts: Vec<f32>,
    /// Weights of the optional hashed n-gram block; absent for an embedding-only head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngrams: Option<NgramBlock>,
    /// How the head was trained (informational).
    #[serde(default)]
    pub training: Option<TierBTraining>,
    /// Evaluation at training time (informational).
    #[serde(default)]
    pub metrics: Option<TierBMetrics>,
}

/// The hashed n-gram part of a tier B head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NgramBlock {
    /// Feature hashing parameters.
    pub features: FeatureConfig,
    /// Factor applied to the L2-normalised n-gram vector before the weights (the block's
    /// weight relative to the unit-length embedding).
    pub scale: f32,
    /// Strictly ascending bucket ids with a non-zero row; other buckets weigh nothing.
    pub buckets: Vec<u32>,
    /// One row of weights per listed bucket, one weight per label in `labels` order.
    pub rows: Vec<Vec<f32>>,
}

/// Provenance of a tier B artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierBTraining {
    /// The program that wrote the artifact.
    pub trainer: String,
    /// The solver (`linfa-logistic MultiLogisticRegression (L-BFGS)`).
    pub solver: String,
    /// L2 regularisation strength (linfa's `alpha`, on the summed log-loss), as selected.
    pub alpha: f64,
    /// Scale of the n-gram block, as selected (0 = embedding only).
    pub ngram_scale: f64,
    /// The (`alpha`, `ngram_scale`) pairs tried, with their cross-validation accuracy on the
    /// training set (never on held-out data).
    pub grid: Vec<GridScore>,
    /// Number of cross-validation folds (stratified, by position within each label).
    pub cv_folds: usize,
    /// Solver iteration cap.
    pub max_iterations: u64,
    /// Solver gradient tolerance.
    pub gradient_tolerance: f64,
    /// Decimal places weights were rounded to when exported.
    pub weight_decimals: u32,
    /// Path of the training file as given on the command line.
    pub train_file: String,
    /// SHA-256 (hex) of the training file's bytes.
    pub train_sha256: String,
    /// Number of training examples.
    pub train_examples: usize,
    /// Training examples per label.
    pub train_examples_per_label: BTreeMap<String, usize>,
    /// Path of the held-out file, if one was evaluated.
    pub heldout_file: Option<String>,
    /// SHA-256 (hex) of the held-out file's bytes.
    pub heldout_sha256: Option<String>,
    /// Number of held-out examples.
    pub heldout_examples: Option<usize>,
}

/// One point of the hyper-parameter search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridScore {
    /// Regularisation strength.
    pub alpha: f64,
    /// Scale of the n-gram block (0 = embedding only).
    pub ngram_scale: f64,
    /// Cross-validation accuracy on the training set (pooled over the folds).
    pub cv_accuracy: f64,
}

/// Evaluation numbers stored with a tier B artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierBMetrics {
    /// Accuracy of the exported head on its own training set.
    pub train_accuracy: f64,
    /// Cross-validation accuracy of the selected `alpha` on the training set.
    pub cv_accuracy: f64,
    /// Held-out accuracy, if a held-out set was given (reported only, never used to select).
    pub heldout_accuracy: Option<f64>,
    /// Held-out macro-averaged F1.
    pub heldout_macro_f1: Option<f64>,
    /// Held-out precision/recall/F1 per label.
    pub heldout_per_class: Option<BTreeMap<String, TierBClassScores>>,
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierBClassScores {
    /// Correct predictions of the label / all predictions of it.
    pub precision: f64,
    /// Correct predictions of the label / all examples of it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of examples of the label.
    pub support: usize,
}

/// The tier B classifier: a validated linear head, rows in [`Intent::ALL`](crate::Intent::ALL) order.
///
/// Cheap to share; `Send + Sync`. Classification costs one embedding plus a 7 × `dim` dot
/// product (and, with an n-gram block, one hashed feature pass over the text).
#[derive(Debug, Clone)]
pub struct TierB {
    dim: usize,
    /// Row-major `[NUM_INTENTS][dim]`, canonical intent order.
    weights: Vec<f32>,
    intercepts: [f32; NUM_INTENTS],
    ngrams: Option<NgramHead>,
    version: String,
    embedding_model: String,
    max_tokens: usize,
}

/// The n-gram block, columns in canonical intent order. Sparse: only the buckets with weights
/// (a few thousand of 2^18) are held, found by binary search, so the head costs ~100 KB
/// rather than 7 MB of a dense table.
#[derive(Debug, Clone)]
struct NgramHead {
    features: FeatureConfig,
    scale: f32,
    /// Strictly ascending bucket ids, one per row of `rows`.
    buckets: Vec<u32>,
    rows: Vec<[f32; NUM_INTENTS]>,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

impl TierB {
    /// Parses and validates an artifact.
    pub fn from_json(text: &str) -> Result<TierB, IntentError> {
        let artifact: TierBArtifact = serde_json::from_str(text)?;
        TierB::from_artifact(&artifact)
    }

    /// Reads, parses and validates an artifact file.
    pub fn load(path: &Path) -> Result<TierB, IntentError> {
        TierB::from_json(&crate::read_artifact(path)?)
    }

    /// The artifact compiled into this crate (`artifacts/intent-tier-b-v1.json`).
    pub fn builtin() -> Result<TierB, IntentError> {
        TierB::from_json(BUILTIN_ARTIFACT)
    }

    /// Builds the head from a parsed artifact, validating every field.
    pub fn from_artifact(artifact: &TierBArtifact) -> Result<TierB, IntentError> {
        if artifact.schema_version != SCHEMA_VERSION {
            return Err(IntentError::SchemaVersion {
                found: artifact.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        if artifact.max_tokens < 8 {
            return Err(IntentError::Dimensions(format!(
                "max_tokens {} is below 8",
                artifact.max_tokens
            )));
        }
        let dim = artifact.dim;
        if dim == 0 {
            return Err(IntentError::Dimensions("dim must be positive".into()));
        }
        let rows = crate::artifact::label_columns(&artifact.labels)?;
        if artifact.weights.len() != NUM_INTENTS || artifact.intercepts.len() != NUM_INTENTS {
            return Err(IntentError::Dimensions(format!(
                "expected {NUM_INTENTS} weight rows and intercepts, found {} and {}",
                artifact.weights.len(),
                artifact.intercepts.len()
            )));
        }
        let mut weights = vec![0.0f32; NUM_INTENTS * dim];
        let mut intercepts = [0.0f32; NUM_INTENTS];
        for (j, (row, bias)) in artifact
            .weights
            .iter()
            .zip(&artifact.intercepts)
            .enumerate()
        {
            if row.len() != dim {
                return Err(IntentError::Dimensions(format!(
                    "weight row {j} ({}) has {} values, dim is {dim}",
                    artifact.labels[j],
                    row.len()
                )));
            }
            if !bias.is_finite() {
                return Err(IntentError::NonFinite(format!("intercepts[{j}]")));
            }
            if let Some(k) = row.iter().position(|w| !w.is_finite()) {
                return Err(IntentError::NonFinite(format!("weights[{j}][{k}]")));
            }
            let i = rows[j];
            weights[i * dim..(i + 1) * dim].copy_from_slice(row);
            intercepts[i] = *bias;
        }
        let ngrams = match &artifact.ngrams {
            Some(block) => Some(validate_ngrams(block, &rows)?),
            None => None,
        };
        Ok(TierB {
            dim,
            weights,
            intercepts,
            ngrams,
            version: artifact.version.clone(),
            embedding_model: artifact.embedding_model.clone(),
            max_tokens: artifact.max_tokens,
        })
    }

    /// The model version recorded in the artifact (e.g. `"intent-tier-b-v1"`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Catalog id of the embedding model the head expects (e.g. `"all-minilm-l6-v2"`).
    pub fn embedding_model(&self) -> &str {
        &self.embedding_model
    }

    /// Token limit (special tokens included) the embedder must use: the head was trained on
    /// embeddings of each text's first `max_tokens` tokens. Longer texts still reach the
    /// n-gram block, which reads their start and end.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embedding width the head expects.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The n-gram feature parameters, when the head has an n-gram block.
    pub fn ngram_features(&self) -> Option<&FeatureConfig> {
        self.ngrams.as_ref().map(|n| &n.features)
    }

    /// Embeds `text` with `embedder` and classifies the embedding.
    pub fn classify(
        &self,
        embedder: &dyn SentenceEmbedder,
        text: &str,
    ) -> Result<Prediction, TierBError> {
        let embedding = embedder.embed(text).map_err(TierBError::Embedder)?;
        self.classify_embedding(text, &embedding)
    }

    /// Classifies `text` whose embedding was computed elsewhere (batch evaluation, a cache).
    pub fn classify_embedding(
        &self,
        text: &str,
        embedding: &[f32],
    ) -> Result<Prediction, TierBError> {
        Ok(from_logits(self.logits(text, embedding)?))
    }

    /// Raw scores (logits) of `text` with its `embedding`, indexed like [`Intent::ALL`](crate::Intent::ALL).
    pub fn logits(&self, text: &str, embedding: &[f32]) -> Result<[f32; NUM_INTENTS], TierBError> {
        if embedding.len() != self.dim {
            return Err(TierBError::Dimension {
                expected: self.dim,
                found: embedding.len(),
            });
        }
        if !embedding.iter().all(|x| x.is_finite()) {
            return Err(TierBError::NonFinite);
        }
        let mut scores = self.intercepts;
        for (score, row) in scores.iter_mut().zip(self.weights.chunks_exact(self.dim)) {
            *score += row.iter().zip(embedding).map(|(w, x)| w * x).sum::<f32>();
        }
        if let Some(ngrams) = &self.ngrams {
            let from_tls = SCRATCH.try_with(|cell| {
                cell.try_borrow_mut()
                    .ok()
                    .map(|mut slot| ngrams.scores(text, slot.get_or_insert_with(Scratch::new)))
            });
            let block = match from_tls {
                Ok(Some(block)) => block,
                // Thread-local storage is being torn down (or re-entered): a fresh buffer.
                _ => ngrams.scores(text, &mut Scratch::new()),
            };
            for (score, b) in scores.iter_mut().zip(block) {
                *score += b;
            }
        }
        Ok(scores)
    }
}

impl NgramHead {
    /// `scale · W_n · normalised n-gram vector of text`.
    fn scores(&self, text: &str, scratch: &mut Scratch) -> [f32; NUM_INTENTS] {
        let mut acc = [0.0f32; NUM_INTENTS];
        let mut sum_sq = 0.0f32;
        features::extract(&self.features, text, scratch, |bucket, value| {
            sum_sq += value * value;
            if let Ok(k) = self.buckets.binary_search(&bucket) {
                for (a, w) in acc.iter_mut().zip(&self.rows[k]) {
                    *a += value * w;
                }
            }
        });
        let factor = if sum_sq > 0.0 {
            self.scale / sum_sq.sqrt()
        } else {
            0.0
        };
        acc.map(|a| a * factor)
    }
}

/// Validates an n-gram block and densifies it into canonical column order.
fn validate_ngrams(
    block: &NgramBlock,
    rows_of_labels: &[usize; NUM_INTENTS],
) -> Result<NgramHead, IntentError> {
    block.features.validate()?;
    if !(block.scale.is_finite() && block.scale > 0.0) {
        return Err(IntentError::NonFinite(
            "ngrams.scale (must be positive)".into(),
        ));
    }
    if block.buckets.len() != block.rows.len() {
        return Err(IntentError::Dimensions(format!(
            "ngrams: {} buckets but {} rows",
            block.buckets.len(),
            block.rows.len()
        )));
    }
    let num_buckets = block.features.num_buckets();
    let mut rows = vec![[0.0f32; NUM_INTENTS]; block.rows.len()];
    let mut previous: Option<u32> = None;
    for (k, (&bucket, row)) in block.buckets.iter().zip(&block.rows).enumerate() {
        if previous.is_some_and(|p| p >= bucket) || bucket as usize >= num_buckets {
            return Err(IntentError::Dimensions(format!(
                "ngrams.buckets[{k}] = {bucket} is out of order or not below {num_buckets}"
            )));
        }
        previous = Some(bucket);
        if row.len() != NUM_INTENTS {
            return Err(IntentError::Dimensions(format!(
                "ngrams.rows[{k}] has {} values, expected {NUM_INTENTS}",
                row.len()
            )));
        }
        for (j, w) in row.iter().enumerate() {
            if !w.is_finite() {
                return Err(IntentError::NonFinite(format!("ngrams.rows[{k}][{j}]")));
            }
            rows[k][rows_of_labels[j]] = *w;
        }
    }
    Ok(NgramHead {
        features: block.features.clone(),
        scale: block.scale,
        buckets: block.buckets.clone(),
        rows,
    })
}

/// Builds a [`Prediction`] from raw scores indexed like [`Intent::ALL`](crate::Intent::ALL) with a numerically
/// stable softmax (the same rule tier A uses).
pub fn from_logits(scores: [f32; NUM_INTENTS]) -> Prediction {
    Prediction::from_scores(scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Intent;

    /// A deterministic fake embedder: one-hot on a chosen dimension, or an error.
    struct OneHot {
        dim: usize,
        hot: usize,
        fail: bool,
    }

    impl SentenceEmbedder for OneHot {
        fn embed(&self, _text: &str) -> Result<Vec<f32>, String> {
            if self.fail {
                return Err("model not loaded".into());
            }
            let mut v = vec![0.0; self.dim];
            v[self.hot] = 1.0;
            Ok(v)
        }
        fn dim(&self) -> usize {
            self.dim
        }
    }

    /// Row `i` of label `labels[i]` puts weight 5 on dimension `i`.
    fn artifact(labels: &[&str]) -> TierBArtifact {
        let dim = 8;
        TierBArtifact {
            schema_version: SCHEMA_VERSION,
            version: "intent-tier-b-test".into(),
            embedding_model: "fake".into(),
            max_tokens: 128,
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            dim,
            weights: (0..labels.len())
                .map(|i| (0..dim).map(|k| if k == i { 5.0 } else { 0.0 }).collect())
                .collect(),
            intercepts: vec![0.0; labels.len()],
            ngrams: None,
            training: None,
            metrics: None,
        }
    }

    /// An n-gram block whose every bucket votes for `tts` with weight 10.
    fn tts_ngrams() -> NgramBlock {
        let features = FeatureConfig {
            buckets_log2: 8,
            ..FeatureConfig::default()
        };
        let buckets: Vec<u32> = (0..256).collect();
        let mut row = vec![0.0; NUM_INTENTS];
        row[Intent::Tts.index()] = 10.0;
        NgramBlock {
            features,
            scale: 1.0,
            rows: vec![row; buckets.len()],
            buckets,
        }
    }

    const CANONICAL: [&str; 7] = [
        "chat",
        "code",
        "summarize",
        "long-form",
        "tool-use",
        "classify",
        "tts",
    ];

    #[test]
    fn builtin_artifact_loads_and_matches_minilm() {
        let tier_b = TierB::builtin().unwrap();
        assert_eq!(tier_b.dim(), 384);
        assert_eq!(tier_b.embedding_model(), "all-minilm-l6-v2");
        assert_eq!(tier_b.version(), "intent-tier-b-v1");
        let parsed: TierBArtifact = serde_json::from_str(BUILTIN_ARTIFACT).unwrap();
        let metrics = parsed.metrics.unwrap();
        assert!(metrics.heldout_accuracy.unwrap() >= 0.90);
        assert_eq!(parsed.training.unwrap().train_sha256.len(), 64);
    }

    #[test]
    fn classify_maps_rows_to_canonical_intents_even_when_permuted() {
        let mut labels = CANONICAL;
        labels.reverse(); // row 0 is now "tts"
        let tier_b = TierB::from_artifact(&artifact(&labels)).unwrap();
        for (row, label) in labels.iter().enumerate() {
            let embedder = OneHot {
                dim: 8,
                hot: row,
                fail: false,
            };
            let p = tier_b.classify(&embedder, "anything").unwrap();
            assert_eq!(p.intent.as_str(), *label);
            assert!(p.confidence > 0.9);
            assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert_eq!(p.probability(p.intent), p.confidence);
        }
    }

    #[test]
    fn ngram_block_adds_to_the_embedding_scores() {
        let mut a = artifact(&CANONICAL);
        a.ngrams = Some(tts_ngrams());
        let tier_b = TierB::from_artifact(&a).unwrap();
        assert!(tier_b.ngram_features().is_some());
        let mut chat = [0.0f32; 8];
        chat[0] = 1.0;
        // Any text has n-grams, all voting tts (weight 10 > the embedding's 5 for chat).
        let p = tier_b.classify_embedding("read this aloud", &chat).unwrap();
        assert_eq!(p.intent, Intent::Tts);
        let logits = tier_b.logits("read this aloud", &chat).unwrap();
        // 10 · (L1 norm of a unit-L2 vector) >= 10.
        assert!(logits[Intent::Tts.index()] >= 10.0 - 1e-4, "{logits:?}");
        assert!((logits[Intent::Chat.index()] - 5.0).abs() < 1e-6);
        // No n-grams in an empty text: the embedding decides.
        assert_eq!(
            tier_b.classify_embedding("", &chat).unwrap().intent,
            Intent::Chat
        );

        let mut bad = tts_ngrams();
        bad.buckets.swap(0, 1);
        a.ngrams = Some(bad);
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::Dimensions(_))
        ));
        let mut bad = tts_ngrams();
        bad.scale = 0.0;
        a.ngrams = Some(bad);
        assert!(TierB::from_artifact(&a).is_err());
        let mut bad = tts_ngrams();
        bad.rows[3].pop();
        a.ngrams = Some(bad);
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::Dimensions(_))
        ));
    }

    #[test]
    fn embedder_failures_and_wrong_widths_are_errors() {
        let tier_b = TierB::from_artifact(&artifact(&CANONICAL)).unwrap();
        let failing = OneHot {
            dim: 8,
            hot: 0,
            fail: true,
        };
        assert!(matches!(
            tier_b.classify(&failing, "x"),
            Err(TierBError::Embedder(m)) if m.contains("not loaded")
        ));
        assert_eq!(
            tier_b.classify_embedding("x", &[0.0; 5]),
            Err(TierBError::Dimension {
                expected: 8,
                found: 5
            })
        );
        let mut nan = [0.0f32; 8];
        nan[3] = f32::NAN;
        assert_eq!(
            tier_b.classify_embedding("x", &nan),
            Err(TierBError::NonFinite)
        );
    }

    #[test]
    fn invalid_artifacts_are_rejected() {
        let mut a = artifact(&CANONICAL);
        a.schema_version = 2;
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::SchemaVersion { found: 2, .. })
        ));

        let mut a = artifact(&CANONICAL);
        a.labels[1] = "chat".into();
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::Labels(_))
        ));

        let mut a = artifact(&CANONICAL);
        a.labels[1] = "poetry".into();
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::UnknownLabel(_))
        ));

        let a = artifact(&CANONICAL[..6]);
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::Labels(_))
        ));

        let mut a = artifact(&CANONICAL);
        a.weights[2].pop();
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::Dimensions(_))
        ));

        let mut a = artifact(&CANONICAL);
        a.weights[4][1] = f32::INFINITY;
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::NonFinite(m)) if m == "weights[4][1]"
        ));

        let mut a = artifact(&CANONICAL);
        a.intercepts[0] = f32::NAN;
        assert!(matches!(
            TierB::from_artifact(&a),
            Err(IntentError::NonFinite(_))
        ));

        assert!(matches!(
            TierB::from_json("{\"schema_version\": 1}"),
            Err(IntentError::Json(_))
        ));
    }

    #[test]
    fn from_logits_is_a_stable_softmax() {
        let p = from_logits([1000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 999.0]);
        assert_eq!(p.intent, Intent::Chat);
        assert!((p.probabilities[0] - 0.7311).abs() < 1e-3);
        assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let uniform = from_logits([0.0; NUM_INTENTS]);
        assert!((uniform.confidence - 1.0 / 7.0).abs() < 1e-6);
    }
}
