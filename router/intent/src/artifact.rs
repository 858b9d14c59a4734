//! The versioned tier A artifact: a JSON file holding everything inference needs.
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "model": "intent-tier-a-v1",
//!   "labels": ["chat", "code", ...],          // column order of weights and intercepts
//!   "features": { FeatureConfig },           // hashing parameters
//!   "intercepts": [7 numbers],
//!   "weights": { "layout": "sparse-bucket-rows", "scale": 0.01,
//!                "rows": [[bucket, [7 integers]], ...] }, // weight = integer × scale;
//!                                                          // ascending buckets; others are zero
//!   "training": { data hashes, hyper-parameters, ... },
//!   "metrics": { held-out accuracy, macro-F1, per-class table }
//! }
//! ```
//!
//! `training` and `metrics` are informational; inference reads the rest and
//! [`validate_into_tier_a`] checks all of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::FeatureConfig;
use crate::{Intent, IntentError, TierA, LANES, NUM_INTENTS};

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The only weight layout this build reads.
pub const WEIGHT_LAYOUT: &str = "sparse-bucket-rows";

/// A serialised tier A model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Layout version of this file; must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Model name and version, e.g. `"intent-tier-a-v1"`.
    pub model: String,
    /// Label of each weight column, a permutation of all intent labels.
    pub labels: Vec<String>,
    /// Feature hashing parameters.
    pub features: FeatureConfig,
    /// Bias per label, in `labels` order.
    pub intercepts: Vec<f32>,
    /// The weight matrix, stored sparsely by bucket.
    pub weights: Weights,
    /// How the model was trained (informational).
    #[serde(default)]
    pub training: Option<TrainingInfo>,
    /// Evaluation results at training time (informational).
    #[serde(default)]
    pub metrics: Option<ArtifactMetrics>,
}

/// Weight matrix rows for the buckets with a non-zero weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Must be [`WEIGHT_LAYOUT`].
    pub layout: String,
    /// Quantisation step: a stored integer `q` means the weight `q × scale` (finite, > 0).
    pub scale: f32,
    /// One row per bucket with a non-zero weight, in strictly ascending bucket order.
    pub rows: Vec<WeightRow>,
}

/// The weights of one hash bucket: `[bucket, [q_label0, q_label1, ...]]` in JSON, each weight
/// stored as an integer multiple of [`Weights::scale`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRow(
    /// Bucket id, `< 2^buckets_log2`.
    pub u32,
    /// One quantised weight per label, in the artifact's `labels` order.
    pub Vec<i32>,
);

/// Provenance of an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// The program that wrote the artifact.
    pub trainer: String,
    /// The solver (`linfa-logistic MultiLogisticRegression (L-BFGS)`).
    pub solver: String,
    /// L2 regularisation strength (linfa's `alpha`, on the summed log-loss).
    pub alpha: f64,
    /// Solver iteration cap.
    pub max_iterations: u64,
    /// Solver gradient tolerance.
    pub gradient_tolerance: f64,
    /// Weights were rounded to this many decimal places (`weights.scale = 10^-weight_decimals`).
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
    /// The regularisation strengths compared by cross-validation on the training split.
    #[serde(default)]
    pub alpha_candidates: Vec<f64>,
    /// Number of cross-validation folds (0 or 1: no model selection was done).
    #[serde(default)]
    pub cv_folds: usize,
    /// Cross-validation results, one per candidate `alpha`.
    #[serde(default)]
    pub cv: Vec<CvScore>,
    /// Hash buckets used as columns of the design matrix.
    #[serde(default)]
    pub train_buckets: usize,
    /// Buckets present in fewer training examples than this were left out.
    #[serde(default)]
    pub min_bucket_examples: usize,
    /// Buckets whose largest absolute weight was below this were dropped after fitting.
    #[serde(default)]
    pub prune_below: f64,
}

/// Cross-validated quality of one regularisation strength (training split only).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CvScore {
    /// The candidate L2 strength.
    pub alpha: f64,
    /// Mean accuracy over the validation folds (pooled).
    pub accuracy: f64,
    /// Macro-F1 over the pooled validation predictions.
    pub macro_f1: f64,
    /// Mean negative log-likelihood of the true label.
    pub log_loss: f64,
}

/// Evaluation numbers stored with the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactMetrics {
    /// Accuracy of the exported model on its own training set.
    #[serde(default)]
    pub train_accuracy: Option<f64>,
    /// Held-out accuracy, if a held-out set was given.
    pub heldout_accuracy: Option<f64>,
    /// Held-out macro-averaged F1.
    pub heldout_macro_f1: Option<f64>,
    /// Held-out precision/recall/F1 per label.
    pub heldout_per_class: Option<BTreeMap<String, ClassScores>>,
}

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Correct predictions of the label / all predictions of it.
    pub precision: f64,
    /// Correct predictions of the label / all examples of it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of examples of the label.
    pub support: usize,
}

impl Artifact {
    /// Parses an artifact from JSON (without validating it; see [`TierA::from_artifact`]).
    pub fn from_json(text: &str) -> Result<Artifact, IntentError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Serialises the artifact the way the training binary writes it: indented down to the
    /// weight rows, one row per line, numbers in their shortest round-trip form, ending with a
    /// newline. The output is a pure function of the artifact, so equal models give equal bytes.
    pub fn to_json(&self) -> Result<String, IntentError> {
        let mut out = Vec::with_capacity(256 * 1024);
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut out, ShallowPretty::new(PRETTY_DEPTH));
        self.serialize(&mut serializer)?;
        out.push(b'\n');
        // serde_json only ever writes UTF-8.
        String::from_utf8(out).map_err(|e| IntentError::Training(e.to_string()))
    }
}

/// Containers nested deeper than this are written on one line.
const PRETTY_DEPTH: usize = 3;
/// Items nested deeper than this are not indented.
const MAX_INDENT: usize = 2;

/// A JSON formatter that indents the outer `max_depth` levels and writes deeper containers
/// compactly (so a weight row or a per-class score sits on one line).
struct ShallowPretty {
    depth: usize,
    max_depth: usize,
    has_value: bool,
}

impl ShallowPretty {
    fn new(max_depth: usize) -> ShallowPretty {
        ShallowPretty {
            depth: 0,
            max_depth,
            has_value: false,
        }
    }

    fn pretty(&self) -> bool {
        self.depth <= self.max_depth
    }

    /// A newline and two spaces per level, up to [`MAX_INDENT`] levels (deeper items, like
    /// weight rows, start at the margin so the file stays small).
    fn newline_indent<W: ?Sized + std::io::Write>(
        writer: &mut W,
        level: usize,
    ) -> std::io::Result<()> {
        writer.write_all(b"\n")?;
        let level = if level > MAX_INDENT { 0 } else { level };
        for _ in 0..level {
            writer.write_all(b"  ")?;
        }
        Ok(())
    }

    fn begin<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        open: &[u8],
    ) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(open)
    }

    fn end<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        close: &[u8],
    ) -> std::io::Result<()> {
        if self.pretty() && self.has_value {
            Self::newline_indent(writer, self.depth - 1)?;
        }
        self.depth -= 1;
        writer.write_all(close)
    }

    fn item<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            writer.write_all(b",")?;
        }
        if self.pretty() {
            Self::newline_indent(writer, self.depth)?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for ShallowPretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.begin(writer, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.end(writer, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
    ) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.begin(writer, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        self.end(writer, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(if self.pretty() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
    ) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Validates `artifact` and builds the dense in-memory model.
/// For each column of an artifact, the canonical index of its label; the labels must be a
/// permutation of all intents.
pub(crate) fn label_columns(labels: &[String]) -> Result<[usize; NUM_INTENTS], IntentError> {
    if labels.len() != NUM_INTENTS {
        return Err(IntentError::Labels(format!(
            "expected {NUM_INTENTS} labels, found {}",
            labels.len()
        )));
    }
    let mut columns = [0usize; NUM_INTENTS];
    let mut seen = [false; NUM_INTENTS];
    for (j, label) in labels.iter().enumerate() {
        let intent: Intent = label.parse()?;
        if seen[intent.index()] {
            return Err(IntentError::Labels(format!(
                "label {label:?} appears twice"
            )));
        }
        seen[intent.index()] = true;
        columns[j] = intent.index();
    }
    Ok(columns)
}

pub(crate) fn validate_into_tier_a(artifact: &Artifact) -> Result<TierA, IntentError> {
    if artifact.schema_version != SCHEMA_VERSION {
        return Err(IntentError::SchemaVersion {
            found: artifact.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    artifact.features.validate()?;

    // Column j of the artifact holds canonical intent `columns[j]`.
    let columns = label_columns(&artifact.labels)?;

    if artifact.intercepts.len() != NUM_INTENTS {
        return Err(IntentError::Dimensions(format!(
            "intercepts has {} values, expected {NUM_INTENTS} (one per label)",
            artifact.intercepts.len()
        )));
    }
    let mut intercepts = [0.0f32; LANES];
    for (j, b) in artifact.intercepts.iter().enumerate() {
        if !b.is_finite() {
            return Err(IntentError::NonFinite("intercepts".into()));
        }
        intercepts[columns[j]] = *b;
    }

    let w = &artifact.weights;
    if w.layout != WEIGHT_LAYOUT {
        return Err(IntentError::Dimensions(format!(
            "weights.layout {:?} is not supported (expected {WEIGHT_LAYOUT:?})",
            w.layout
        )));
    }
    let scale = w.scale;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(IntentError::NonFinite(format!(
            "weights.scale ({scale} must be finite and positive)"
        )));
    }
    let buckets = artifact.features.num_buckets();
    let mut index = vec![0u32; buckets];
    let mut dense = Vec::with_capacity(w.rows.len());
    let mut previous: Option<u32> = None;
    for (i, WeightRow(bucket, row)) in w.rows.iter().enumerate() {
        let bucket = *bucket;
        if bucket as usize >= buckets {
            return Err(IntentError::Dimensions(format!(
                "weights.rows[{i}] bucket {bucket} is out of range (2^{} = {buckets} buckets)",
                artifact.features.buckets_log2
            )));
        }
        if previous.is_some_and(|p| p >= bucket) {
            return Err(IntentError::Dimensions(format!(
                "weights.rows must be in strictly ascending bucket order (row {i}, bucket {bucket})"
            )));
        }
        previous = Some(bucket);
        if row.len() != NUM_INTENTS {
            return Err(IntentError::Dimensions(format!(
                "weights.rows[{i}] has {} weights, expected {NUM_INTENTS} (one per label)",
                row.len()
            )));
        }
        let mut target = [0.0f32; LANES];
        for (j, q) in row.iter().enumerate() {
            let value = *q as f32 * scale;
            if !value.is_finite() {
                return Err(IntentError::NonFinite(format!("weights.rows[{i}]")));
            }
            target[columns[j]] = value;
        }
        dense.push(target);
        // `dense.len()` ≤ rows ≤ buckets ≤ 2^20, so it fits.
        index[bucket as usize] = u32::try_from(dense.len()).unwrap_or(u32::MAX);
    }
    Ok(TierA::from_parts(
        artifact.features.clone(),
        index,
        dense,
        intercepts,
        artifact.model.clone(),
    ))
}
