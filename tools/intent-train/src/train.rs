//! Fitting the linear head: multinomial logistic regression (linfa-logistic, L-BFGS) over
//! `[embedding, scale · hashed n-grams]`, with the L2 strength and the n-gram scale (0 = the
//! embedding alone) chosen by stratified k-fold cross-validation on the training set.
//!
//! linfa uses ndarray 0.16 while ONNX Runtime's side uses 0.17: embeddings cross over as plain
//! slices and are copied into an ndarray 0.16 matrix here.

use std::collections::BTreeMap;

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use switchyard_intent::features::{self, FeatureConfig, Scratch};
use switchyard_intent::tier_b::{
    GridScore, NgramBlock, TierBArtifact, TierBMetrics, TierBTraining,
};
use switchyard_intent::{Intent, TierB, NUM_INTENTS};

use crate::metrics::{evaluate, Evaluation};
use crate::{Dataset, TrainError};

/// Version string written into the artifact.
pub const VERSION: &str = "intent-tier-b-v1";
/// Solver description written into the artifact.
pub const SOLVER: &str = "linfa-logistic MultiLogisticRegression (L-BFGS)";

/// Hyper-parameters of the training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// L2 strengths to try (linfa's `alpha`, on the summed log-loss).
    pub alphas: Vec<f64>,
    /// Scales of the n-gram block to try; 0 means the embedding alone.
    pub ngram_scales: Vec<f64>,
    /// Hashing parameters of the n-gram block.
    pub ngram_features: FeatureConfig,
    /// Cross-validation folds (at least 2).
    pub folds: usize,
    /// Solver iteration cap.
    pub max_iterations: u64,
    /// Solver gradient tolerance.
    pub gradient_tolerance: f64,
    /// Decimal places the exported weights are rounded to.
    pub weight_decimals: u32,
    /// Threads for the grid search (does not change the result).
    pub jobs: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            alphas: vec![0.03, 0.1, 0.3],
            ngram_scales: vec![0.0, 1.0, 2.0, 4.0],
            ngram_features: FeatureConfig {
                buckets_log2: 12,
                ..FeatureConfig::default()
            },
            folds: 5,
            max_iterations: 300,
            gradient_tolerance: 1e-4,
            weight_decimals: 5,
            jobs: 1,
        }
    }
}

/// What identifies the run in the artifact besides the hyper-parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// Catalog id of the embedding model (`all-minilm-l6-v2`).
    pub embedding_model: String,
    /// Token limit of the embedder.
    pub max_tokens: usize,
    /// Training file path as it should be recorded.
    pub train_file: String,
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The artifact, with training-set metrics filled in and held-out fields empty.
    pub artifact: TierBArtifact,
    /// The exported (rounded) head, ready to classify.
    pub tier_b: TierB,
    /// Quality of the exported head on its own training set.
    pub train_evaluation: Evaluation,
}

/// The design matrix ingredients, computed once.
struct Features<'a> {
    texts: Vec<&'a str>,
    embeddings: &'a [Vec<f32>],
    labels: Vec<Intent>,
    /// L2-normalised hashed n-grams of each text, sorted by bucket.
    ngrams: Vec<Vec<(u32, f64)>>,
    /// Column (after the embedding columns) of every bucket seen in the training data.
    columns: BTreeMap<u32, usize>,
    dim: usize,
}

/// Trains the head on `embeddings` (one per example of `data`, same order): cross-validates
/// every (`alpha`, n-gram scale) pair, refits the best on all the data, rounds and exports it.
pub fn train(
    embeddings: &[Vec<f32>],
    data: &Dataset,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<TrainOutcome, TrainError> {
    if embeddings.len() != data.examples.len() {
        return Err(TrainError::Training(format!(
            "{} embeddings for {} examples",
            embeddings.len(),
            data.examples.len()
        )));
    }
    if config.alphas.is_empty() || config.ngram_scales.is_empty() || config.folds < 2 {
        return Err(TrainError::Training(
            "need at least one alpha, one n-gram scale and 2 folds".into(),
        ));
    }
    if config
        .ngram_scales
        .iter()
        .any(|s| !(s.is_finite() && *s >= 0.0))
    {
        return Err(TrainError::Training("n-gram scales must be >= 0".into()));
    }
    config.ngram_features.validate()?;
    let dim = embeddings.first().map_or(0, Vec::len);
    if dim == 0 || embeddings.iter().any(|e| e.len() != dim) {
        return Err(TrainError::Training(
            "embeddings are empty or ragged".into(),
        ));
    }
    let mut scratch = Scratch::new();
    let ngrams: Vec<Vec<(u32, f64)>> = data
        .examples
        .iter()
        .map(|e| features::sparse_vector(&config.ngram_features, &e.text, &mut scratch))
        .collect();
    let mut columns = BTreeMap::new();
    for row in &ngrams {
        for (bucket, _) in row {
            columns.insert(*bucket, 0);
        }
    }
    for (i, column) in columns.values_mut().enumerate() {
        *column = i;
    }
    let features = Features {
        texts: data.examples.iter().map(|e| e.text.as_str()).collect(),
        embeddings,
        labels: data.examples.iter().map(|e| e.intent).collect(),
        ngrams,
        columns,
        dim,
    };

    let points: Vec<(f64, f64)> = config
        .ngram_scales
        .iter()
        .flat_map(|&s| config.alphas.iter().map(move |&a| (s, a)))
        .collect();
    // Grid points are independent fits: spread them over `jobs` threads. Each point's result
    // does not depend on the thread that computed it, so the output stays deterministic.
    let jobs = config.jobs.clamp(1, points.len());
    let mut scores: Vec<Option<Result<f64, TrainError>>> =
        (0..points.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|job| {
                let (features, points) = (&features, &points);
                scope.spawn(move || {
                    points
                        .iter()
                        .enumerate()
                        .skip(job)
                        .step_by(jobs)
                        .map(|(i, &(scale, alpha))| {
                            (i, cross_validate(features, alpha, scale, config, run))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(results) => {
                    for (i, result) in results {
                        scores[i] = Some(result);
                    }
                }
                Err(_) => {
                    // Leaves this job's points empty; reported below.
                }
            }
        }
    });
    let mut grid = Vec::with_capacity(points.len());
    for (&(ngram_scale, alpha), score) in points.iter().zip(scores) {
        let cv_accuracy = score
            .ok_or_else(|| TrainError::Training("a cross-validation thread panicked".into()))??;
        grid.push(GridScore {
            alpha,
            ngram_scale,
            cv_accuracy,
        });
    }
    // Best CV accuracy; ties go to the simpler model (smaller n-gram scale), then to the
    // stronger regularisation (smoother probabilities).
    let best = grid
        .iter()
        .copied()
        .reduce(|best, s| {
            let better = s.cv_accuracy > best.cv_accuracy
                || (s.cv_accuracy == best.cv_accuracy
                    && (s.ngram_scale < best.ngram_scale
                        || (s.ngram_scale == best.ngram_scale && s.alpha > best.alpha)));
            if better {
                s
            } else {
                best
            }
        })
        .ok_or_else(|| TrainError::Training("empty grid".into()))?;

    let all: Vec<usize> = (0..features.labels.len()).collect();
    let mut artifact = fit_artifact(&features, &all, best.alpha, best.ngram_scale, config, run)?;
    let tier_b = TierB::from_artifact(&artifact)?;
    let train_evaluation = evaluate_head(&tier_b, &features.texts, embeddings, &features.labels)?;

    artifact.training = Some(TierBTraining {
        trainer: format!(
            "switchyard-train-intent-tier-b {}",
            env!("CARGO_PKG_VERSION")
        ),
        solver: SOLVER.into(),
        alpha: best.alpha,
        ngram_scale: best.ngram_scale,
        grid,
        cv_folds: config.folds,
        max_iterations: config.max_iterations,
        gradient_tolerance: config.gradient_tolerance,
        weight_decimals: config.weight_decimals,
        train_file: run.train_file.clone(),
        train_sha256: data.sha256.clone(),
        train_examples: features.labels.len(),
        train_examples_per_label: data.per_label(),
        heldout_file: None,
        heldout_sha256: None,
        heldout_examples: None,
    });
    artifact.metrics = Some(TierBMetrics {
        train_accuracy: train_evaluation.accuracy,
        cv_accuracy: best.cv_accuracy,
        heldout_accuracy: None,
        heldout_macro_f1: None,
        heldout_per_class: None,
    });
    Ok(TrainOutcome {
        artifact,
        tier_b,
        train_evaluation,
    })
}

/// Classifies every (text, embedding) with `tier_b` and scores the result.
pub fn evaluate_head<S: AsRef<str>>(
    tier_b: &TierB,
    texts: &[S],
    embeddings: &[Vec<f32>],
    labels: &[Intent],
) -> Result<Evaluation, TrainError> {
    let predicted = texts
        .iter()
        .zip(embeddings)
        .map(|(t, e)| {
            tier_b
                .classify_embedding(t.as_ref(), e)
                .map(|p| p.intent)
                .map_err(|err| TrainError::Training(err.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(evaluate(labels, &predicted))
}

/// Stratified fold of each example: within each label, examples in file order go to folds
/// 0, 1, ..., k-1, 0, ... (deterministic, no shuffling).
pub fn fold_ids(labels: &[Intent], folds: usize) -> Vec<usize> {
    let mut seen = [0usize; NUM_INTENTS];
    labels
        .iter()
        .map(|l| {
            let fold = seen[l.index()] % folds;
            seen[l.index()] += 1;
            fold
        })
        .collect()
}

/// Accuracy pooled over the folds (correct predictions / examples) of heads trained on the
/// other folds, exported and evaluated exactly as the final head is.
fn cross_validate(
    features: &Features<'_>,
    alpha: f64,
    ngram_scale: f64,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<f64, TrainError> {
    let ids = fold_ids(&features.labels, config.folds);
    let mut correct = 0usize;
    let mut total = 0usize;
    for fold in 0..config.folds {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..ids.len()).partition(|&i| ids[i] == fold);
        if test.is_empty() {
            continue;
        }
        let artifact = fit_artifact(features, &train, alpha, ngram_scale, config, run)?;
        let head = TierB::from_artifact(&artifact)?;
        for &i in &test {
            let p = head
                .classify_embedding(features.texts[i], &features.embeddings[i])
                .map_err(|e| TrainError::Training(e.to_string()))?;
            correct += usize::from(p.intent == features.labels[i]);
            total += 1;
        }
    }
    Ok(if total > 0 {
        correct as f64 / total as f64
    } else {
        0.0
    })
}

/// Fits one head on the examples `rows` and exports it (weights rounded, rows in
/// [`Intent::ALL`] order, all-zero n-gram rows dropped) into an artifact without training
/// information or metrics.
fn fit_artifact(
    features: &Features<'_>,
    rows: &[usize],
    alpha: f64,
    ngram_scale: f64,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<TierBArtifact, TrainError> {
    let dim = features.dim;
    let ngram_columns = if ngram_scale > 0.0 {
        features.columns.len()
    } else {
        0
    };
    let mut records = Array2::<f64>::zeros((rows.len(), dim + ngram_columns));
    for (mut record, &i) in records.rows_mut().into_iter().zip(rows) {
        for (r, v) in record.iter_mut().zip(&features.embeddings[i]) {
            *r = f64::from(*v);
        }
        if ngram_columns > 0 {
            for (bucket, value) in &features.ngrams[i] {
                if let Some(&column) = features.columns.get(bucket) {
                    record[dim + column] = ngram_scale * value;
                }
            }
        }
    }
    let targets: Array1<usize> = rows.iter().map(|&i| features.labels[i].index()).collect();
    let dataset = linfa::Dataset::new(records, targets);
    let model = MultiLogisticRegression::default()
        .alpha(alpha)
        .max_iterations(config.max_iterations)
        .gradient_tolerance(config.gradient_tolerance)
        .fit(&dataset)
        .map_err(|e| TrainError::Training(e.to_string()))?;

    let params = model.params(); // [dim + ngram columns, classes]
    let intercept = model.intercept(); // [classes]
    let scale = 10f64.powi(i32::try_from(config.weight_decimals).unwrap_or(6));
    let round = |v: f64| ((v * scale).round() / scale) as f32;
    let mut weights = vec![vec![0.0f32; dim]; NUM_INTENTS];
    let mut intercepts = vec![0.0f32; NUM_INTENTS];
    let mut ngram_rows = vec![[0.0f32; NUM_INTENTS]; ngram_columns];
    let mut present = [false; NUM_INTENTS];
    for (column, &class) in model.classes().iter().enumerate() {
        let row = weights
            .get_mut(class)
            .ok_or_else(|| TrainError::Training(format!("unknown class index {class}")))?;
        for (k, w) in row.iter_mut().enumerate() {
            *w = round(params[[k, column]]);
        }
        for (k, ngram_row) in ngram_rows.iter_mut().enumerate() {
            ngram_row[class] = round(params[[dim + k, column]]);
        }
        intercepts[class] = round(intercept[column]);
        present[class] = true;
    }
    // A label absent from the training rows can never win.
    for (i, p) in present.iter().enumerate() {
        if !p {
            intercepts[i] = -1e4;
        }
    }
    let ngrams = (ngram_columns > 0).then(|| {
        let mut buckets = Vec::new();
        let mut block_rows = Vec::new();
        for (bucket, &column) in &features.columns {
            let row = ngram_rows[column];
            if row.iter().any(|w| *w != 0.0) {
                buckets.push(*bucket);
                block_rows.push(row.to_vec());
            }
        }
        NgramBlock {
            features: config.ngram_features.clone(),
            scale: ngram_scale as f32,
            buckets,
            rows: block_rows,
        }
    });
    Ok(TierBArtifact {
        schema_version: switchyard_intent::tier_b::SCHEMA_VERSION,
        version: VERSION.into(),
        embedding_model: run.embedding_model.clone(),
        max_tokens: run.max_tokens,
        labels: Intent::ALL.iter().map(|i| i.as_str().to_owned()).collect(),
        dim,
        weights,
        intercepts,
        ngrams,
        training: None,
        metrics: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Example;

    fn run() -> RunInfo {
        RunInfo {
            embedding_model: "fake".into(),
            max_tokens: 128,
            train_file: "train.jsonl".into(),
        }
    }

    /// Separable toy data: label i lives near axis i of an 8-d space.
    fn toy() -> (Vec<Vec<f32>>, Dataset) {
        let mut embeddings = Vec::new();
        let mut examples = Vec::new();
        for n in 0..10 {
            for intent in Intent::ALL {
                let mut v = vec![0.05 * (n as f32 % 3.0); 8];
                v[intent.index()] = 1.0;
                embeddings.push(v);
                examples.push(Example {
                    text: format!("{intent} {n}"),
                    intent,
                });
            }
        }
        let data = Dataset {
            path: "toy.jsonl".into(),
            sha256: "0".repeat(64),
            examples,
        };
        (embeddings, data)
    }

    #[test]
    fn folds_are_stratified_and_deterministic() {
        let labels = [
            Intent::Chat,
            Intent::Chat,
            Intent::Code,
            Intent::Chat,
            Intent::Code,
        ];
        assert_eq!(fold_ids(&labels, 2), vec![0, 1, 0, 0, 1]);
    }

    #[test]
    fn learns_separable_data_deterministically() {
        let (embeddings, data) = toy();
        let config = TrainConfig {
            alphas: vec![0.1, 1.0],
            ngram_scales: vec![0.0, 1.0],
            folds: 2,
            ..TrainConfig::default()
        };
        let a = train(&embeddings, &data, &config, &run()).unwrap();
        assert_eq!(a.train_evaluation.accuracy, 1.0);
        let metrics = a.artifact.metrics.as_ref().unwrap();
        assert_eq!(metrics.cv_accuracy, 1.0);
        let training = a.artifact.training.as_ref().unwrap();
        assert_eq!(training.grid.len(), 4);
        assert_eq!(training.alpha, 1.0, "ties go to the larger alpha");
        assert_eq!(training.ngram_scale, 0.0, "ties go to the embedding alone");
        assert!(a.artifact.ngrams.is_none());
        let parallel = TrainConfig {
            jobs: 2,
            ..config.clone()
        };
        let b = train(&embeddings, &data, &parallel, &run()).unwrap();
        assert_eq!(
            serde_json::to_string(&a.artifact).unwrap(),
            serde_json::to_string(&b.artifact).unwrap()
        );
        let p = a.tier_b.classify_embedding("x", &embeddings[6]).unwrap();
        assert_eq!(p.intent, Intent::Tts);
    }

    #[test]
    fn ngram_block_is_trained_and_exported_when_selected() {
        let (embeddings, data) = toy();
        // Embeddings carry no label information here; only the texts (label names) do.
        let blank = vec![vec![0.1f32; 8]; embeddings.len()];
        let config = TrainConfig {
            alphas: vec![0.1],
            ngram_scales: vec![0.0, 1.0],
            folds: 2,
            ..TrainConfig::default()
        };
        let a = train(&blank, &data, &config, &run()).unwrap();
        let training = a.artifact.training.as_ref().unwrap();
        assert_eq!(training.ngram_scale, 1.0, "{:?}", training.grid);
        let block = a.artifact.ngrams.as_ref().unwrap();
        assert!(!block.buckets.is_empty());
        assert!(a.train_evaluation.accuracy > 0.9);
        let p = a.tier_b.classify_embedding("tts 3", &blank[0]).unwrap();
        assert_eq!(p.intent, Intent::Tts);
    }

    #[test]
    fn rejects_bad_inputs() {
        let (embeddings, data) = toy();
        let no_folds = TrainConfig {
            folds: 1,
            ..TrainConfig::default()
        };
        assert!(train(&embeddings, &data, &no_folds, &run()).is_err());
        assert!(train(&embeddings[1..], &data, &TrainConfig::default(), &run()).is_err());
    }
}
