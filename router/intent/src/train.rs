//! Offline training and evaluation of tier A.
//!
//! The pipeline, as run by the `switchyard-train-intent` binary:
//!
//! 1. [`Dataset::load`] reads a JSONL file of `{"text": ..., "intent": ...}` lines (errors name
//!    the file and line; duplicate texts are rejected).
//! 2. [`train`] turns every text into its hashed feature vector with [`features::extract`] (the
//!    function inference uses), keeps the buckets present in at least
//!    [`TrainConfig::min_bucket_examples`] training examples as columns, fits linfa's
//!    `MultiLogisticRegression` (through an exact Gram-matrix reparametrisation, see `fit`),
//!    picks the L2 strength `alpha` by stratified k-fold cross-validation **on the training
//!    split only**, refits on the whole split, prunes buckets with only small weights
//!    ([`TrainConfig::prune_below`]) and exports the weights into an [`Artifact`] (quantised to
//!    integer steps, all-zero rows dropped).
//! 3. [`add_heldout_metrics`] evaluates the exported model, exactly as it will run, on a held-out
//!    file that played no part in steps 1–2, and records the result in the artifact.
//!
//! [`evaluate`] and [`Evaluation`] give accuracy, macro-F1, per-class precision/recall/F1 and
//! the confusion matrix for any labelled set.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::artifact::{
    Artifact, ArtifactMetrics, ClassScores, CvScore, TrainingInfo, WeightRow, Weights,
    SCHEMA_VERSION, WEIGHT_LAYOUT,
};
use crate::features::{self, FeatureConfig, Scratch};
use crate::{Intent, IntentError, TierA, NUM_INTENTS};

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The request text.
    pub text: String,
    /// Its intent.
    pub intent: Intent,
    /// 1-based line number in the file it came from.
    pub line: usize,
}

/// A labelled data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Where it was read from (as given).
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    /// The examples, in file order.
    pub examples: Vec<Example>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    intent: String,
}

/// Lower-cases and collapses whitespace: the key used to detect duplicate texts.
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

impl Dataset {
    /// Reads and parses a JSONL file (see [`Dataset::parse`]).
    pub fn load(path: &Path) -> Result<Dataset, IntentError> {
        let bytes = std::fs::read(path).map_err(|source| IntentError::Io {
            path: path.to_owned(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| IntentError::Data {
            path: path.to_owned(),
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            message: "file is not valid UTF-8".into(),
        })?;
        Dataset::parse(path, text)
    }

    /// Parses JSONL text: one `{"text": "...", "intent": "<label>"}` object per line; blank
    /// lines are skipped. `path` is only used in error messages and [`Dataset::path`].
    ///
    /// Rejects unknown fields, unknown labels, empty texts and duplicate texts (compared after
    /// [`normalize_text`]), naming the offending line.
    pub fn parse(path: &Path, text: &str) -> Result<Dataset, IntentError> {
        let error = |line: usize, message: String| IntentError::Data {
            path: path.to_owned(),
            line,
            message,
        };
        let mut examples = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(raw)
                .map_err(|e| error(line, format!("invalid example: {e}")))?;
            let intent: Intent = parsed
                .intent
                .parse()
                .map_err(|e: IntentError| error(line, e.to_string()))?;
            if parsed.text.trim().is_empty() {
                return Err(error(line, "text is empty".into()));
            }
            if let Some(first) = seen.insert(normalize_text(&parsed.text), line) {
                return Err(error(
                    line,
                    format!("duplicate text (first on line {first})"),
                ));
            }
            examples.push(Example {
                text: parsed.text,
                intent,
                line,
            });
        }
        Ok(Dataset {
            path: path.to_owned(),
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            examples,
        })
    }

    /// Number of examples of each intent, indexed like [`Intent::ALL`].
    pub fn counts(&self) -> [usize; NUM_INTENTS] {
        let mut counts = [0; NUM_INTENTS];
        for example in &self.examples {
            counts[example.intent.index()] += 1;
        }
        counts
    }

    /// Fails if any text of `other` also appears (after [`normalize_text`]) in this set.
    pub fn check_disjoint(&self, other: &Dataset) -> Result<(), IntentError> {
        let mine: BTreeMap<String, usize> = self
            .examples
            .iter()
            .map(|e| (normalize_text(&e.text), e.line))
            .collect();
        for example in &other.examples {
            if let Some(line) = mine.get(&normalize_text(&example.text)) {
                return Err(IntentError::Data {
                    path: other.path.clone(),
                    line: example.line,
                    message: format!(
                        "text also appears in {} line {line}; held-out data must not overlap \
                         the training data",
                        self.path.display()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Hyper-parameters of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Model name and version written into the artifact.
    pub model: String,
    /// Feature hashing parameters.
    pub features: FeatureConfig,
    /// Candidate L2 strengths (linfa's `alpha`); with one candidate no cross-validation runs.
    pub alphas: Vec<f64>,
    /// Folds of the stratified cross-validation that picks `alpha`.
    pub cv_folds: usize,
    /// Buckets present in fewer training examples than this get no weight (they are left out of
    /// the design matrix). Rare features mostly memorise; dropping them keeps the solver fast and
    /// the artifact small.
    pub min_bucket_examples: usize,
    /// Buckets whose largest absolute weight is below this are dropped after fitting (in
    /// cross-validation too, so the selection sees the pruned model). Keeps the artifact small.
    pub prune_below: f64,
    /// L-BFGS iteration cap.
    pub max_iterations: u64,
    /// L-BFGS gradient-norm tolerance.
    pub gradient_tolerance: f64,
    /// Weights are exported as integers in steps of `10^-weight_decimals`; intercepts are
    /// rounded to `max(weight_decimals, 4)` decimal places.
    pub weight_decimals: u32,
    /// Name of the trainer recorded in the artifact.
    pub trainer: String,
    /// Training file name recorded in the artifact (defaults to the dataset's path).
    pub train_file_label: Option<String>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: "intent-tier-a-v1".into(),
            features: FeatureConfig::default(),
            alphas: vec![0.003, 0.01, 0.03],
            cv_folds: 5,
            min_bucket_examples: 3,
            prune_below: 0.3,
            max_iterations: 400,
            gradient_tolerance: 1e-4,
            weight_decimals: 2,
            trainer: concat!("switchyard-train-intent ", env!("CARGO_PKG_VERSION")).into(),
            train_file_label: None,
        }
    }
}

impl TrainConfig {
    fn validate(&self) -> Result<(), IntentError> {
        self.features.validate()?;
        if self.alphas.is_empty() {
            return Err(IntentError::Training("no alpha candidates".into()));
        }
        if let Some(a) = self.alphas.iter().find(|a| !(a.is_finite() && **a >= 0.0)) {
            return Err(IntentError::Training(format!("invalid alpha {a}")));
        }
        if self.alphas.len() > 1 && self.cv_folds < 2 {
            return Err(IntentError::Training(
                "several alpha candidates need cv_folds >= 2".into(),
            ));
        }
        if !(self.gradient_tolerance.is_finite() && self.gradient_tolerance > 0.0) {
            return Err(IntentError::Training(format!(
                "invalid gradient tolerance {}",
                self.gradient_tolerance
            )));
        }
        if !(self.prune_below.is_finite() && self.prune_below >= 0.0) {
            return Err(IntentError::Training(format!(
                "invalid prune threshold {}",
                self.prune_below
            )));
        }
        if self.weight_decimals > 6 {
            return Err(IntentError::Training(format!(
                "weight_decimals {} is more than the exported integers hold",
                self.weight_decimals
            )));
        }
        Ok(())
    }
}

/// A sparse, L2-normalised feature vector: `(bucket, value)` sorted by bucket.
type SparseRow = Vec<(u32, f64)>;

/// A linear model in bucket space (before rounding/export).
#[derive(Debug, Clone)]
struct LinearModel {
    /// Ascending buckets with their weight rows (canonical intent order).
    rows: Vec<(u32, [f64; NUM_INTENTS])>,
    intercepts: [f64; NUM_INTENTS],
}

impl LinearModel {
    /// Drops the buckets whose weights are all below `threshold` in magnitude.
    fn prune(&mut self, threshold: f64) {
        if threshold > 0.0 {
            self.rows
                .retain(|(_, w)| w.iter().any(|v| v.abs() >= threshold));
        }
    }

    fn scores(&self, x: &[(u32, f64)]) -> [f64; NUM_INTENTS] {
        let mut scores = self.intercepts;
        for (bucket, value) in x {
            if let Ok(i) = self.rows.binary_search_by_key(bucket, |(b, _)| *b) {
                for (s, w) in scores.iter_mut().zip(&self.rows[i].1) {
                    *s += value * w;
                }
            }
        }
        scores
    }
}

/// Fits linfa's multinomial logistic regression on the sparse rows.
///
/// linfa works on dense matrices, and the design matrix `X` (examples × buckets) is wide and
/// very sparse. The L2-penalised optimum `W*` always lies in the row space of `X` (representer
/// theorem), so the fit is done in that space: with the Gram matrix `X Xᵀ = L Lᵀ` (Cholesky),
/// linfa solves the *same* problem with the n × n design `Z = L` (same loss, same `alpha`, same
/// Hessian spectrum), giving `B`; then `W = Xᵀ L⁻ᵀ B`, since `X W = L B` and `‖W‖ = ‖B‖`. The
/// result equals the direct fit on `X`, at a fraction of the cost when buckets outnumber
/// examples. A tiny ridge (`1e-9`) on the Gram diagonal keeps the factorisation defined.
fn fit(
    cfg: &TrainConfig,
    alpha: f64,
    rows: &[&SparseRow],
    labels: &[usize],
) -> Result<LinearModel, IntentError> {
    let mut present = [false; NUM_INTENTS];
    for &label in labels {
        present[label] = true;
    }
    if let Some(missing) = present.iter().position(|p| !p) {
        return Err(IntentError::Training(format!(
            "no training examples of {:?}; every intent needs some",
            Intent::ALL[missing].as_str()
        )));
    }
    let mut all: Vec<u32> = rows
        .iter()
        .flat_map(|r| r.iter().map(|(b, _)| *b))
        .collect();
    all.sort_unstable();
    // Each row lists a bucket at most once, so run lengths count examples.
    let mut columns = Vec::new();
    for run in all.chunk_by(|a, b| a == b) {
        if run.len() >= cfg.min_bucket_examples.max(1) {
            columns.push(run[0]);
        }
    }
    // Rows restricted to the kept columns, as (column index, value). Values are not
    // re-normalised: inference normalises over all features and dropped buckets weigh 0.
    let x: Vec<Vec<(usize, f64)>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|(bucket, v)| columns.binary_search(bucket).ok().map(|j| (j, *v)))
                .collect()
        })
        .collect();
    let n = x.len();
    let l = cholesky(&gram(&x, columns.len()), n)?;

    let z = Array2::from_shape_vec((n, n), l.clone())
        .map_err(|e| IntentError::Training(e.to_string()))?;
    let y = Array1::from(labels.to_vec());
    let dataset = DatasetBase::new(z, y);
    let fitted = MultiLogisticRegression::default()
        .alpha(alpha)
        .max_iterations(cfg.max_iterations)
        .gradient_tolerance(cfg.gradient_tolerance)
        .fit(&dataset)
        .map_err(|e| IntentError::Training(e.to_string()))?;
    // linfa orders classes ascending; with all labels present that is 0..NUM_INTENTS.
    if fitted.classes() != (0..NUM_INTENTS).collect::<Vec<_>>().as_slice() {
        return Err(IntentError::Training(format!(
            "unexpected class list from linfa: {:?}",
            fitted.classes()
        )));
    }
    let b = fitted.params();
    let intercept = fitted.intercept();
    if b.dim() != (n, NUM_INTENTS) || intercept.len() != NUM_INTENTS {
        return Err(IntentError::Training(format!(
            "unexpected parameter shape {:?} from linfa",
            b.dim()
        )));
    }
    // C = L⁻ᵀ B by back substitution (L is lower triangular, row-major).
    let mut c = vec![[0.0f64; NUM_INTENTS]; n];
    for i in (0..n).rev() {
        let mut acc = [0.0f64; NUM_INTENTS];
        for (k, a) in acc.iter_mut().enumerate() {
            *a = b[[i, k]];
        }
        for j in i + 1..n {
            let lji = l[j * n + i];
            if lji != 0.0 {
                for (a, cj) in acc.iter_mut().zip(&c[j]) {
                    *a -= lji * cj;
                }
            }
        }
        let lii = l[i * n + i];
        for (ci, a) in c[i].iter_mut().zip(acc) {
            *ci = a / lii;
        }
    }
    // W = Xᵀ C.
    let mut w = vec![[0.0f64; NUM_INTENTS]; columns.len()];
    for (row, ci) in x.iter().zip(&c) {
        for &(j, v) in row {
            for (wj, cik) in w[j].iter_mut().zip(ci) {
                *wj += v * cik;
            }
        }
    }
    let mut intercepts = [0.0; NUM_INTENTS];
    for (k, value) in intercepts.iter_mut().enumerate() {
        *value = intercept[k];
    }
    let model = LinearModel {
        rows: columns.into_iter().zip(w).collect(),
        intercepts,
    };
    let finite = model.intercepts.iter().all(|v| v.is_finite())
        && model
            .rows
            .iter()
            .all(|(_, w)| w.iter().all(|v| v.is_finite()));
    if !finite {
        return Err(IntentError::Training(format!(
            "solver diverged (non-finite weights) at alpha {alpha}"
        )));
    }
    Ok(model)
}

/// The Gram matrix `X Xᵀ` (row-major, n × n) of sparse rows over `width` columns.
fn gram(x: &[Vec<(usize, f64)>], width: usize) -> Vec<f64> {
    let n = x.len();
    let mut k = vec![0.0f64; n * n];
    let mut dense = vec![0.0f64; width];
    for i in 0..n {
        for &(j, v) in &x[i] {
            dense[j] = v;
        }
        for j in 0..=i {
            let dot: f64 = x[j].iter().map(|&(col, v)| v * dense[col]).sum();
            k[i * n + j] = dot;
            k[j * n + i] = dot;
        }
        for &(j, _) in &x[i] {
            dense[j] = 0.0;
        }
    }
    k
}

/// Diagonal ridge added before factorising the Gram matrix.
const GRAM_RIDGE: f64 = 1e-9;

/// Lower-triangular Cholesky factor (row-major, n × n, zeros above the diagonal) of
/// `k + GRAM_RIDGE·I`.
fn cholesky(k: &[f64], n: usize) -> Result<Vec<f64>, IntentError> {
    let mut l = vec![0.0f64; n * n];
    for i in 0..n {
        let (before, rest) = l.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &before[j * n..j * n + j + 1];
            let s: f64 = row_i[..j].iter().zip(&row_j[..j]).map(|(a, b)| a * b).sum();
            row_i[j] = (k[i * n + j] - s) / row_j[j];
        }
        let s: f64 = row_i[..i].iter().map(|v| v * v).sum();
        let pivot = k[i * n + i] + GRAM_RIDGE - s;
        if !(pivot.is_finite() && pivot > 0.0) {
            return Err(IntentError::Training(format!(
                "Gram matrix is not positive definite at example {i} (duplicate feature vectors?)"
            )));
        }
        row_i[i] = pivot.sqrt();
    }
    Ok(l)
}

/// Stratified fold of each example: the i-th example of a label (in file order) goes to fold
/// `i % folds`.
fn fold_assignment(labels: &[usize], folds: usize) -> Vec<usize> {
    let mut seen = [0usize; NUM_INTENTS];
    labels
        .iter()
        .map(|&label| {
            let fold = seen[label] % folds;
            seen[label] += 1;
            fold
        })
        .collect()
}

fn argmax(scores: &[f64; NUM_INTENTS]) -> usize {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best
}

fn log_softmax_at(scores: &[f64; NUM_INTENTS], index: usize) -> f64 {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    scores[index] - max - sum.ln()
}

fn cross_validate(
    cfg: &TrainConfig,
    alpha: f64,
    data: &Dataset,
    rows: &[SparseRow],
    labels: &[usize],
) -> Result<(CvScore, Vec<Misclassified>), IntentError> {
    let folds = fold_assignment(labels, cfg.cv_folds);
    let mut confusion = [[0usize; NUM_INTENTS]; NUM_INTENTS];
    let mut log_loss = 0.0;
    let mut misclassified = Vec::new();
    for fold in 0..cfg.cv_folds {
        let mut train_rows = Vec::new();
        let mut train_labels = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if folds[i] != fold {
                train_rows.push(row);
                train_labels.push(labels[i]);
            }
        }
        let mut model = fit(cfg, alpha, &train_rows, &train_labels)?;
        model.prune(cfg.prune_below);
        for (i, row) in rows.iter().enumerate() {
            if folds[i] == fold {
                let scores = model.scores(row);
                let predicted = argmax(&scores);
                confusion[labels[i]][predicted] += 1;
                log_loss -= log_softmax_at(&scores, labels[i]);
                if predicted != labels[i] {
                    let example = &data.examples[i];
                    misclassified.push(Misclassified {
                        text: example.text.clone(),
                        line: example.line,
                        expected: example.intent,
                        predicted: Intent::ALL[predicted],
                        confidence: log_softmax_at(&scores, predicted).exp() as f32,
                    });
                }
            }
        }
    }
    misclassified.sort_by_key(|m| m.line);
    let evaluation = Evaluation::from_confusion(confusion, Vec::new());
    let score = CvScore {
        alpha,
        accuracy: round_metric(evaluation.accuracy),
        macro_f1: round_metric(evaluation.macro_f1),
        log_loss: round_metric(log_loss / rows.len().max(1) as f64),
    };
    Ok((score, misclassified))
}

fn round_to(value: f64, decimals: u32) -> f32 {
    let scale = 10f64.powi(decimals as i32);
    let rounded = ((value * scale).round() / scale) as f32;
    if rounded == 0.0 {
        0.0 // no "-0.0" in the artifact
    } else {
        rounded
    }
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct Trained {
    /// The artifact, ready to be written (held-out metrics not yet filled in).
    pub artifact: Artifact,
    /// The exported model, loaded back from `artifact` exactly as inference will load it.
    pub model: TierA,
    /// The chosen L2 strength.
    pub alpha: f64,
    /// Cross-validation scores per candidate (empty with a single candidate).
    pub cv: Vec<CvScore>,
    /// The exported model evaluated on its own training data.
    pub train_evaluation: Evaluation,
    /// Training examples misclassified during cross-validation at the chosen `alpha` (each
    /// predicted by a model that did not see it).
    pub cv_misclassified: Vec<Misclassified>,
}

/// Trains tier A on `data` (and nothing else) and exports it.
///
/// `alpha` is chosen among `cfg.alphas` by stratified `cfg.cv_folds`-fold cross-validation
/// on `data`: highest pooled macro-F1, then lowest log-loss, then the larger `alpha`. The
/// result is deterministic: the same data and configuration give an identical artifact.
pub fn train(cfg: &TrainConfig, data: &Dataset) -> Result<Trained, IntentError> {
    cfg.validate()?;
    let mut scratch = Scratch::new();
    let rows: Vec<SparseRow> = data
        .examples
        .iter()
        .map(|e| features::sparse_vector(&cfg.features, &e.text, &mut scratch))
        .collect();
    let labels: Vec<usize> = data.examples.iter().map(|e| e.intent.index()).collect();
    let counts = data.counts();
    if let Some(k) = counts.iter().position(|c| *c == 0) {
        return Err(IntentError::Training(format!(
            "{} has no examples of {:?}",
            data.path.display(),
            Intent::ALL[k].as_str()
        )));
    }
    if cfg.alphas.len() > 1 {
        if let Some(k) = counts.iter().position(|c| *c < cfg.cv_folds) {
            return Err(IntentError::Training(format!(
                "{:?} has {} examples, fewer than the {} cross-validation folds",
                Intent::ALL[k].as_str(),
                counts[k],
                cfg.cv_folds
            )));
        }
    }

    let mut cv = Vec::new();
    let mut cv_errors = Vec::new();
    if cfg.alphas.len() > 1 {
        for &alpha in &cfg.alphas {
            let (score, errors) = cross_validate(cfg, alpha, data, &rows, &labels)?;
            cv.push(score);
            cv_errors.push(errors);
        }
    }
    let alpha = select_alpha(&cfg.alphas, &cv);
    let cv_misclassified = cv
        .iter()
        .position(|s| s.alpha == alpha)
        .and_then(|i| cv_errors.get(i).cloned())
        .unwrap_or_default();

    let all_rows: Vec<&SparseRow> = rows.iter().collect();
    let mut model = fit(cfg, alpha, &all_rows, &labels)?;
    let train_buckets = model.rows.len();
    model.prune(cfg.prune_below);

    let decimals = cfg.weight_decimals;
    let step = 10f64.powi(decimals as i32);
    let mut weight_rows = Vec::with_capacity(model.rows.len());
    for (bucket, w) in &model.rows {
        let mut q = Vec::with_capacity(NUM_INTENTS);
        for v in w {
            let scaled = (v * step).round();
            if scaled.abs() > f64::from(i32::MAX) {
                return Err(IntentError::Training(format!(
                    "weight {v} does not fit the exported integers at {decimals} decimals"
                )));
            }
            q.push(scaled as i32);
        }
        if q.iter().any(|x| *x != 0) {
            weight_rows.push(WeightRow(*bucket, q));
        }
    }
    let artifact = Artifact {
        schema_version: SCHEMA_VERSION,
        model: cfg.model.clone(),
        labels: Intent::ALL.iter().map(|i| i.as_str().to_owned()).collect(),
        features: cfg.features.clone(),
        intercepts: model
            .intercepts
            .iter()
            .map(|v| round_to(*v, decimals.max(4)))
            .collect(),
        weights: Weights {
            layout: WEIGHT_LAYOUT.into(),
            scale: (1.0 / step) as f32,
            rows: weight_rows,
        },
        training: Some(TrainingInfo {
            trainer: cfg.trainer.clone(),
            solver: "linfa-logistic 0.8 MultiLogisticRegression (L-BFGS, L2 on weights, \
                     summed log-loss)"
                .into(),
            alpha,
            max_iterations: cfg.max_iterations,
            gradient_tolerance: cfg.gradient_tolerance,
            weight_decimals: decimals,
            train_file: cfg
                .train_file_label
                .clone()
                .unwrap_or_else(|| data.path.display().to_string()),
            train_sha256: data.sha256.clone(),
            train_examples: data.examples.len(),
            train_examples_per_label: Intent::ALL
                .iter()
                .map(|i| (i.as_str().to_owned(), counts[i.index()]))
                .collect(),
            heldout_file: None,
            heldout_sha256: None,
            heldout_examples: None,
            alpha_candidates: cfg.alphas.clone(),
            cv_folds: if cfg.alphas.len() > 1 {
                cfg.cv_folds
            } else {
                0
            },
            cv: cv.clone(),
            train_buckets,
            min_bucket_examples: cfg.min_bucket_examples,
            prune_below: cfg.prune_below,
        }),
        metrics: None,
    };
    let tier_a = TierA::from_artifact(&artifact)?;
    let train_evaluation = evaluate(&tier_a, &data.examples);
    let mut artifact = artifact;
    artifact.metrics = Some(ArtifactMetrics {
        train_accuracy: Some(round_metric(train_evaluation.accuracy)),
        heldout_accuracy: None,
        heldout_macro_f1: None,
        heldout_per_class: None,
    });
    Ok(Trained {
        artifact,
        model: tier_a,
        alpha,
        cv,
        train_evaluation,
        cv_misclassified,
    })
}

fn select_alpha(alphas: &[f64], cv: &[CvScore]) -> f64 {
    let mut best: Option<&CvScore> = None;
    for score in cv {
        best = match best {
            None => Some(score),
            Some(b) => {
                let better = score.macro_f1 > b.macro_f1 + 1e-12
                    || ((score.macro_f1 - b.macro_f1).abs() <= 1e-12
                        && (score.log_loss < b.log_loss - 1e-12
                            || ((score.log_loss - b.log_loss).abs() <= 1e-12
                                && score.alpha > b.alpha)));
                Some(if better { score } else { b })
            }
        };
    }
    match best {
        Some(b) => b.alpha,
        None => alphas.first().copied().unwrap_or(1.0),
    }
}

/// Rounds a metric to 6 decimals for the artifact (stable, readable numbers).
fn round_metric(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Evaluates the final `model` on a held-out set and records it in `artifact` (metrics and the
/// held-out file's name, hash and size). Never feeds back into training.
pub fn add_heldout_metrics(
    artifact: &mut Artifact,
    model: &TierA,
    heldout: &Dataset,
    heldout_file_label: &str,
) -> Evaluation {
    let evaluation = evaluate(model, &heldout.examples);
    if let Some(training) = artifact.training.as_mut() {
        training.heldout_file = Some(heldout_file_label.to_owned());
        training.heldout_sha256 = Some(heldout.sha256.clone());
        training.heldout_examples = Some(heldout.examples.len());
    }
    let per_class = Intent::ALL
        .iter()
        .map(|i| {
            let s = evaluation.per_class[i.index()];
            (
                i.as_str().to_owned(),
                ClassScores {
                    precision: round_metric(s.precision),
                    recall: round_metric(s.recall),
                    f1: round_metric(s.f1),
                    support: s.support,
                },
            )
        })
        .collect();
    let metrics = artifact.metrics.get_or_insert(ArtifactMetrics {
        train_accuracy: None,
        heldout_accuracy: None,
        heldout_macro_f1: None,
        heldout_per_class: None,
    });
    metrics.heldout_accuracy = Some(round_metric(evaluation.accuracy));
    metrics.heldout_macro_f1 = Some(round_metric(evaluation.macro_f1));
    metrics.heldout_per_class = Some(per_class);
    evaluation
}

/// One wrong prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Misclassified {
    /// The text.
    pub text: String,
    /// Line in its data file.
    pub line: usize,
    /// The label in the data.
    pub expected: Intent,
    /// What the model said.
    pub predicted: Intent,
    /// The model's confidence in `predicted`.
    pub confidence: f32,
}

/// Quality of a model on a labelled set.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// `confusion[actual][predicted]`, indexed like [`Intent::ALL`].
    pub confusion: [[usize; NUM_INTENTS]; NUM_INTENTS],
    /// Number of examples.
    pub total: usize,
    /// Number predicted correctly.
    pub correct: usize,
    /// `correct / total` (0 for an empty set).
    pub accuracy: f64,
    /// Unweighted mean of the per-class F1 scores.
    pub macro_f1: f64,
    /// Precision, recall, F1 and support per intent, indexed like [`Intent::ALL`]. A class
    /// never predicted has precision 0; one with no examples has recall 0.
    pub per_class: [ClassScores; NUM_INTENTS],
    /// The wrong predictions, in data order.
    pub misclassified: Vec<Misclassified>,
}

/// Classifies every example with `model` and scores the predictions.
pub fn evaluate(model: &TierA, examples: &[Example]) -> Evaluation {
    let mut confusion = [[0usize; NUM_INTENTS]; NUM_INTENTS];
    let mut misclassified = Vec::new();
    for example in examples {
        let prediction = model.classify(&example.text);
        confusion[example.intent.index()][prediction.intent.index()] += 1;
        if prediction.intent != example.intent {
            misclassified.push(Misclassified {
                text: example.text.clone(),
                line: example.line,
                expected: example.intent,
                predicted: prediction.intent,
                confidence: prediction.confidence,
            });
        }
    }
    Evaluation::from_confusion(confusion, misclassified)
}

impl Evaluation {
    /// Computes every score from a confusion matrix (`confusion[actual][predicted]`).
    pub fn from_confusion(
        confusion: [[usize; NUM_INTENTS]; NUM_INTENTS],
        misclassified: Vec<Misclassified>,
    ) -> Evaluation {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let total: usize = confusion.iter().flatten().sum();
        let correct: usize = (0..NUM_INTENTS).map(|k| confusion[k][k]).sum();
        let mut per_class = [ClassScores {
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
            support: 0,
        }; NUM_INTENTS];
        for (k, scores) in per_class.iter_mut().enumerate() {
            let support: usize = confusion[k].iter().sum();
            let predicted: usize = confusion.iter().map(|row| row[k]).sum();
            let tp = confusion[k][k];
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            *scores = ClassScores {
                precision,
                recall,
                f1,
                support,
            };
        }
        let macro_f1 = per_class.iter().map(|s| s.f1).sum::<f64>() / NUM_INTENTS as f64;
        Evaluation {
            confusion,
            total,
            correct,
            accuracy: ratio(correct, total),
            macro_f1,
            per_class,
            misclassified,
        }
    }
}

impl fmt::Display for Evaluation {
    /// A plain-text report: accuracy, macro-F1, per-class table, confusion matrix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "accuracy {:.4} ({}/{}), macro-F1 {:.4}",
            self.accuracy, self.correct, self.total, self.macro_f1
        )?;
        writeln!(
            f,
            "{:<10} {:>9} {:>9} {:>9} {:>8}",
            "intent", "precision", "recall", "f1", "support"
        )?;
        for intent in Intent::ALL {
            let s = self.per_class[intent.index()];
            writeln!(
                f,
                "{:<10} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                intent.as_str(),
                s.precision,
                s.recall,
                s.f1,
                s.support
            )?;
        }
        writeln!(f, "confusion (rows: actual, columns: predicted)")?;
        write!(f, "{:<10}", "")?;
        for intent in Intent::ALL {
            write!(f, " {:>9}", intent.as_str())?;
        }
        writeln!(f)?;
        for actual in Intent::ALL {
            write!(f, "{:<10}", actual.as_str())?;
            for predicted in Intent::ALL {
                write!(
                    f,
                    " {:>9}",
                    self.confusion[actual.index()][predicted.index()]
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_from_confusion() {
        let mut c = [[0usize; NUM_INTENTS]; NUM_INTENTS];
        c[0][0] = 3;
        c[0][1] = 1;
        c[1][1] = 2;
        let e = Evaluation::from_confusion(c, Vec::new());
        assert_eq!(e.total, 6);
        assert_eq!(e.correct, 5);
        assert!((e.accuracy - 5.0 / 6.0).abs() < 1e-12);
        assert!((e.per_class[0].precision - 1.0).abs() < 1e-12);
        assert!((e.per_class[0].recall - 0.75).abs() < 1e-12);
        assert!((e.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((e.per_class[1].recall - 1.0).abs() < 1e-12);
        // Classes without support or predictions count as F1 0 in the macro average.
        let f1_0 = 2.0 * 0.75 / 1.75;
        let f1_1 = 2.0 * (2.0 / 3.0) / (5.0 / 3.0);
        assert!((e.macro_f1 - (f1_0 + f1_1) / 7.0).abs() < 1e-12);
        assert!(e.to_string().contains("macro-F1"));
    }

    #[test]
    fn empty_confusion_is_zero_not_nan() {
        let e = Evaluation::from_confusion([[0; NUM_INTENTS]; NUM_INTENTS], Vec::new());
        assert_eq!(e.accuracy, 0.0);
        assert_eq!(e.macro_f1, 0.0);
    }

    #[test]
    fn folds_are_stratified() {
        let labels = [0, 0, 1, 0, 1, 1, 0];
        assert_eq!(fold_assignment(&labels, 2), vec![0, 1, 0, 0, 1, 0, 1]);
    }

    #[test]
    fn rounding_has_no_negative_zero() {
        assert_eq!(round_to(-0.0001, 3).to_bits(), 0.0f32.to_bits());
        assert_eq!(round_to(1.23456, 3), 1.235);
    }

    #[test]
    fn alpha_selection_prefers_f1_then_loss_then_larger_alpha() {
        let s = |alpha, macro_f1, log_loss| CvScore {
            alpha,
            accuracy: 0.0,
            macro_f1,
            log_loss,
        };
        assert_eq!(select_alpha(&[1.0], &[]), 1.0);
        assert_eq!(
            select_alpha(&[], &[s(0.1, 0.9, 0.5), s(1.0, 0.95, 0.6)]),
            1.0
        );
        assert_eq!(
            select_alpha(&[], &[s(0.1, 0.9, 0.5), s(1.0, 0.9, 0.6)]),
            0.1
        );
        assert_eq!(
            select_alpha(&[], &[s(0.1, 0.9, 0.5), s(1.0, 0.9, 0.5)]),
            1.0
        );
    }
}
