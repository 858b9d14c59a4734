//! Fitting the linear head: multinomial logistic regression (linfa-logistic, L-BFGS) over
//! embeddings, L2 strength chosen by stratified k-fold cross-validation on the training set.
//!
//! linfa uses ndarray 0.16 while ONNX Runtime's side uses 0.17: embeddings cross over as plain
//! slices and are copied into an ndarray 0.16 matrix here.

use linfa::prelude::*;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2};
use switchyard_intent::tier_b::{AlphaScore, TierBArtifact, TierBMetrics, TierBTraining};
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
    /// Cross-validation folds (at least 2).
    pub folds: usize,
    /// Solver iteration cap.
    pub max_iterations: u64,
    /// Solver gradient tolerance.
    pub gradient_tolerance: f64,
    /// Decimal places the exported weights are rounded to.
    pub weight_decimals: u32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            alphas: vec![0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
            folds: 5,
            max_iterations: 500,
            gradient_tolerance: 1e-5,
            weight_decimals: 6,
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

/// Trains the head on `embeddings` (one per example of `data`, same order): cross-validates
/// every `alpha`, refits the best on all the data, rounds and exports it.
pub fn train(
    embeddings: &[Vec<f32>],
    data: &Dataset,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<TrainOutcome, TrainError> {
    let labels: Vec<Intent> = data.examples.iter().map(|e| e.intent).collect();
    if embeddings.len() != labels.len() {
        return Err(TrainError::Training(format!(
            "{} embeddings for {} examples",
            embeddings.len(),
            labels.len()
        )));
    }
    if config.alphas.is_empty() || config.folds < 2 {
        return Err(TrainError::Training(
            "need at least one alpha and at least 2 folds".into(),
        ));
    }
    let dim = embeddings.first().map_or(0, Vec::len);
    if dim == 0 || embeddings.iter().any(|e| e.len() != dim) {
        return Err(TrainError::Training(
            "embeddings are empty or ragged".into(),
        ));
    }

    let mut grid = Vec::new();
    for &alpha in &config.alphas {
        let cv_accuracy = cross_validate(embeddings, &labels, alpha, config, run)?;
        grid.push(AlphaScore { alpha, cv_accuracy });
    }
    // Best CV accuracy; ties go to the stronger regularisation (smoother probabilities).
    let best = grid
        .iter()
        .copied()
        .reduce(|best, s| {
            if s.cv_accuracy > best.cv_accuracy
                || (s.cv_accuracy == best.cv_accuracy && s.alpha > best.alpha)
            {
                s
            } else {
                best
            }
        })
        .ok_or_else(|| TrainError::Training("empty alpha grid".into()))?;

    let artifact_without_metrics = fit_artifact(embeddings, &labels, best.alpha, config, run)?;
    let tier_b = TierB::from_artifact(&artifact_without_metrics)?;
    let train_evaluation = evaluate_head(&tier_b, embeddings, &labels)?;

    let mut artifact = artifact_without_metrics;
    artifact.training = Some(TierBTraining {
        trainer: format!(
            "switchyard-train-intent-tier-b {}",
            env!("CARGO_PKG_VERSION")
        ),
        solver: SOLVER.into(),
        alpha: best.alpha,
        alpha_grid: grid,
        cv_folds: config.folds,
        max_iterations: config.max_iterations,
        gradient_tolerance: config.gradient_tolerance,
        weight_decimals: config.weight_decimals,
        max_tokens: run.max_tokens,
        train_file: run.train_file.clone(),
        train_sha256: data.sha256.clone(),
        train_examples: labels.len(),
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

/// Classifies every embedding with `tier_b` and scores the result.
pub fn evaluate_head(
    tier_b: &TierB,
    embeddings: &[Vec<f32>],
    labels: &[Intent],
) -> Result<Evaluation, TrainError> {
    let predicted = embeddings
        .iter()
        .map(|e| {
            tier_b
                .classify_embedding(e)
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

/// Mean accuracy over the folds (pooled: correct predictions / examples) of heads trained
/// on the other folds, exported exactly as the final head is.
fn cross_validate(
    embeddings: &[Vec<f32>],
    labels: &[Intent],
    alpha: f64,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<f64, TrainError> {
    let ids = fold_ids(labels, config.folds);
    let mut correct = 0usize;
    let mut total = 0usize;
    for fold in 0..config.folds {
        let (mut train_x, mut train_y, mut test_x, mut test_y) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((e, l), id) in embeddings.iter().zip(labels).zip(&ids) {
            if *id == fold {
                test_x.push(e.clone());
                test_y.push(*l);
            } else {
                train_x.push(e.clone());
                train_y.push(*l);
            }
        }
        if test_x.is_empty() {
            continue;
        }
        let artifact = fit_artifact(&train_x, &train_y, alpha, config, run)?;
        let head = TierB::from_artifact(&artifact)?;
        let evaluation = evaluate_head(&head, &test_x, &test_y)?;
        correct += (0..NUM_INTENTS)
            .map(|i| evaluation.confusion[i][i])
            .sum::<usize>();
        total += evaluation.examples;
    }
    Ok(if total > 0 {
        correct as f64 / total as f64
    } else {
        0.0
    })
}

/// Fits one head and exports it (weights rounded, rows in [`Intent::ALL`] order) into an
/// artifact without training information or metrics.
fn fit_artifact(
    embeddings: &[Vec<f32>],
    labels: &[Intent],
    alpha: f64,
    config: &TrainConfig,
    run: &RunInfo,
) -> Result<TierBArtifact, TrainError> {
    let dim = embeddings.first().map_or(0, Vec::len);
    let mut records = Array2::<f64>::zeros((embeddings.len(), dim));
    for (mut row, e) in records.rows_mut().into_iter().zip(embeddings) {
        for (r, v) in row.iter_mut().zip(e) {
            *r = f64::from(*v);
        }
    }
    let targets: Array1<usize> = labels.iter().map(|l| l.index()).collect();
    let dataset = linfa::Dataset::new(records, targets);
    let model = MultiLogisticRegression::default()
        .alpha(alpha)
        .max_iterations(config.max_iterations)
        .gradient_tolerance(config.gradient_tolerance)
        .fit(&dataset)
        .map_err(|e| TrainError::Training(e.to_string()))?;

    let params = model.params(); // [dim, classes]
    let intercept = model.intercept(); // [classes]
    let scale = 10f64.powi(i32::try_from(config.weight_decimals).unwrap_or(6));
    let round = |v: f64| ((v * scale).round() / scale) as f32;
    let mut weights = vec![vec![0.0f32; dim]; NUM_INTENTS];
    let mut intercepts = vec![0.0f32; NUM_INTENTS];
    let mut present = [false; NUM_INTENTS];
    for (column, &class) in model.classes().iter().enumerate() {
        let row = weights
            .get_mut(class)
            .ok_or_else(|| TrainError::Training(format!("unknown class index {class}")))?;
        for (k, w) in row.iter_mut().enumerate() {
            *w = round(params[[k, column]]);
        }
        intercepts[class] = round(intercept[column]);
        present[class] = true;
    }
    // A label absent from the training data can never win.
    for (i, p) in present.iter().enumerate() {
        if !p {
            intercepts[i] = -1e4;
        }
    }
    Ok(TierBArtifact {
        schema_version: switchyard_intent::tier_b::SCHEMA_VERSION,
        version: VERSION.into(),
        embedding_model: run.embedding_model.clone(),
        labels: Intent::ALL.iter().map(|i| i.as_str().to_owned()).collect(),
        dim,
        weights,
        intercepts,
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
            folds: 2,
            ..TrainConfig::default()
        };
        let a = train(&embeddings, &data, &config, &run()).unwrap();
        assert_eq!(a.train_evaluation.accuracy, 1.0);
        let metrics = a.artifact.metrics.as_ref().unwrap();
        assert_eq!(metrics.cv_accuracy, 1.0);
        let training = a.artifact.training.as_ref().unwrap();
        assert_eq!(training.alpha_grid.len(), 2);
        assert_eq!(training.alpha, 1.0, "ties go to the larger alpha");
        let b = train(&embeddings, &data, &config, &run()).unwrap();
        assert_eq!(
            serde_json::to_string(&a.artifact).unwrap(),
            serde_json::to_string(&b.artifact).unwrap()
        );
        let p = a.tier_b.classify_embedding(&embeddings[6]).unwrap();
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
