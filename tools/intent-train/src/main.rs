//! `switchyard-train-intent-tier-b`: trains tier B of the intent classifier (a linear head over
//! all-MiniLM-L6-v2 embeddings) and writes its artifact.
//!
//! ```text
//! switchyard models fetch            # installs onnxruntime + all-minilm-l6-v2
//! cargo run --release -p switchyard-intent-train --bin switchyard-train-intent-tier-b
//! ```
//!
//! Paths default to the workspace's `router/intent/data/` and `router/intent/artifacts/`.
//! Training is deterministic: the same data, models and options give a byte-identical
//! artifact (`--check` verifies the file on disk). The held-out file is read only after the
//! head is final, to report its quality; it never influences training or the choice of
//! hyper-parameters.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use switchyard_engine_onnx::{
    init_runtime, EmbedderOptions, MiniLmEmbedder, MiniLmPaths, MINILM_ID,
};
use switchyard_intent::{Intent, NUM_INTENTS};
use switchyard_intent_train::train::{evaluate_head, RunInfo};
use switchyard_intent_train::{
    default_models_dir, display_path, embed_all, load_jsonl, train, workspace_dir, Evaluation,
    MiniLmSentenceEmbedder, TrainConfig, TrainError, DEFAULT_TIER_B_MAX_TOKENS,
};

/// Trains tier B of the intent classifier and writes its artifact.
#[derive(Debug, Parser)]
#[command(name = "switchyard-train-intent-tier-b", version)]
struct Args {
    /// Models directory holding `onnxruntime/` and `all-minilm-l6-v2/` (as installed by
    /// `switchyard models fetch`). Default: $SWITCHYARD_MODELS_DIR, else
    /// ~/.cache/switchyard/models.
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Training data, JSONL {"text","intent"}. Default: router/intent/data/train.jsonl.
    #[arg(long)]
    train: Option<PathBuf>,
    /// Held-out data, evaluated only. Default: router/intent/data/heldout.jsonl.
    #[arg(long, conflicts_with = "no_heldout")]
    heldout: Option<PathBuf>,
    /// Skip the held-out evaluation.
    #[arg(long)]
    no_heldout: bool,
    /// Artifact to write. Default: router/intent/artifacts/intent-tier-b-v1.json.
    #[arg(long)]
    out: Option<PathBuf>,
    /// L2 strength candidates, comma-separated (chosen by cross-validation on the training
    /// data).
    #[arg(long, value_delimiter = ',')]
    alpha: Option<Vec<f64>>,
    /// Scales of the hashed n-gram block to try, comma-separated; 0 = the embedding alone
    /// (chosen by cross-validation on the training data).
    #[arg(long, value_delimiter = ',')]
    ngram_scale: Option<Vec<f64>>,
    /// log2 of the number of n-gram hash buckets.
    #[arg(long)]
    ngram_buckets_log2: Option<u32>,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Threads for the cross-validation grid search (the result does not depend on it).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Token limit of the embedder (special tokens included); recorded in the artifact, and
    /// the gateway embeds with the same limit.
    #[arg(long, default_value_t = DEFAULT_TIER_B_MAX_TOKENS)]
    max_tokens: usize,
    /// ONNX Runtime threads for embedding.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Do not write; fail unless --out already holds exactly this artifact.
    #[arg(long)]
    check: bool,
    /// Print only the summary lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn run(args: &Args) -> Result<bool, CliError> {
    let data_dir = workspace_dir().join("router/intent/data");
    let train_path = args
        .train
        .clone()
        .unwrap_or_else(|| data_dir.join("train.jsonl"));
    let heldout_path = if args.no_heldout {
        None
    } else {
        Some(
            args.heldout
                .clone()
                .unwrap_or_else(|| data_dir.join("heldout.jsonl")),
        )
    };
    let out_path = args
        .out
        .clone()
        .unwrap_or_else(|| workspace_dir().join("router/intent/artifacts/intent-tier-b-v1.json"));
    let mut config = TrainConfig {
        folds: args.folds,
        jobs: args.jobs,
        ..TrainConfig::default()
    };
    if let Some(alphas) = &args.alpha {
        config.alphas = alphas.clone();
    }
    if let Some(scales) = &args.ngram_scale {
        config.ngram_scales = scales.clone();
    }
    if let Some(log2) = args.ngram_buckets_log2 {
        config.ngram_features.buckets_log2 = log2;
    }

    let train_data = load_jsonl(&train_path)?;
    let models_dir = args.models_dir.clone().unwrap_or_else(default_models_dir);
    let paths = MiniLmPaths::in_models_dir(&models_dir);
    init_runtime(&paths.runtime_library).map_err(TrainError::from)?;
    let options = EmbedderOptions {
        threads: args.threads,
        max_tokens: args.max_tokens,
        ..EmbedderOptions::default()
    };
    let embedder = MiniLmSentenceEmbedder(
        MiniLmEmbedder::load_with(&paths.model, &paths.tokenizer, &options)
            .map_err(TrainError::from)?,
    );

    let mut out = std::io::stdout().lock();
    let started = std::time::Instant::now();
    let train_embeddings = embed_all(&embedder, &train_data.examples)?;
    writeln!(
        out,
        "embedded {} training examples in {:.1} s ({} threads, first {} tokens, {} on {})",
        train_embeddings.len(),
        started.elapsed().as_secs_f64(),
        embedder.0.threads(),
        embedder.0.max_tokens(),
        MINILM_ID,
        embedder.0.execution_provider()
    )?;
    let run_info = RunInfo {
        embedding_model: MINILM_ID.into(),
        max_tokens: embedder.0.max_tokens(),
        train_file: display_path(&train_path),
    };
    let started = std::time::Instant::now();
    let outcome = train(&train_embeddings, &train_data, &config, &run_info)?;
    writeln!(
        out,
        "trained in {:.1} s ({} grid points x {} folds)",
        started.elapsed().as_secs_f64(),
        config.alphas.len() * config.ngram_scales.len(),
        config.folds
    )?;
    let mut artifact = outcome.artifact;
    if let Some(training) = &artifact.training {
        for point in &training.grid {
            writeln!(
                out,
                "  n-gram scale {:<4} alpha {:<6} cv accuracy {:.4}{}",
                point.ngram_scale,
                point.alpha,
                point.cv_accuracy,
                if point.alpha == training.alpha && point.ngram_scale == training.ngram_scale {
                    "  <- selected"
                } else {
                    ""
                }
            )?;
        }
    }
    writeln!(
        out,
        "train: accuracy {:.4}, macro-F1 {:.4} ({} examples)",
        outcome.train_evaluation.accuracy,
        outcome.train_evaluation.macro_f1,
        outcome.train_evaluation.examples
    )?;

    if let Some(path) = &heldout_path {
        let heldout = load_jsonl(path)?;
        let embeddings = embed_all(&embedder, &heldout.examples)?;
        let labels: Vec<Intent> = heldout.examples.iter().map(|e| e.intent).collect();
        let texts: Vec<&str> = heldout.examples.iter().map(|e| e.text.as_str()).collect();
        let evaluation = evaluate_head(&outcome.tier_b, &texts, &embeddings, &labels)?;
        writeln!(
            out,
            "held-out: accuracy {:.4}, macro-F1 {:.4} ({} examples)",
            evaluation.accuracy, evaluation.macro_f1, evaluation.examples
        )?;
        if !args.quiet {
            report(&mut out, &evaluation)?;
            writeln!(out, "misclassified held-out examples:")?;
            for ((example, e), truth) in heldout.examples.iter().zip(&embeddings).zip(&labels) {
                let p = outcome
                    .tier_b
                    .classify_embedding(&example.text, e)
                    .map_err(|err| TrainError::Training(err.to_string()))?;
                if p.intent != *truth {
                    writeln!(
                        out,
                        "  {truth} -> {} ({:.2}): {}",
                        p.intent, p.confidence, example.text
                    )?;
                }
            }
        }
        if let Some(training) = artifact.training.as_mut() {
            training.heldout_file = Some(display_path(path));
            training.heldout_sha256 = Some(heldout.sha256.clone());
            training.heldout_examples = Some(heldout.examples.len());
        }
        if let Some(metrics) = artifact.metrics.as_mut() {
            metrics.heldout_accuracy = Some(evaluation.accuracy);
            metrics.heldout_macro_f1 = Some(evaluation.macro_f1);
            metrics.heldout_per_class = Some(evaluation.per_class.clone());
        }
    }

    let text = serde_json::to_string_pretty(&artifact).map_err(TrainError::from)? + "\n";
    if args.check {
        let current = std::fs::read_to_string(&out_path).unwrap_or_default();
        if current == text {
            writeln!(out, "{} is up to date", out_path.display())?;
            return Ok(true);
        }
        writeln!(
            out,
            "{} differs from what the data produces; rerun without --check",
            out_path.display()
        )?;
        return Ok(false);
    }
    let tmp = out_path.with_extension("json.tmp");
    std::fs::write(&tmp, &text).map_err(|source| TrainError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &out_path).map_err(|source| TrainError::Io {
        path: out_path.clone(),
        source,
    })?;
    writeln!(out, "wrote {}", out_path.display())?;
    Ok(true)
}

fn report(out: &mut impl Write, evaluation: &Evaluation) -> std::io::Result<()> {
    writeln!(
        out,
        "  {:<10} {:>9} {:>7} {:>7} {:>7}",
        "intent", "precision", "recall", "f1", "support"
    )?;
    for intent in Intent::ALL {
        if let Some(s) = evaluation.per_class.get(intent.as_str()) {
            writeln!(
                out,
                "  {:<10} {:>9.3} {:>7.3} {:>7.3} {:>7}",
                intent.as_str(),
                s.precision,
                s.recall,
                s.f1,
                s.support
            )?;
        }
    }
    write!(
        out,
        "  confusion (rows: truth, columns: predicted)\n  {:<10}",
        ""
    )?;
    for intent in Intent::ALL {
        write!(
            out,
            " {:>5}",
            &intent.as_str()[..intent.as_str().len().min(5)]
        )?;
    }
    writeln!(out)?;
    for (i, row) in evaluation.confusion.iter().enumerate().take(NUM_INTENTS) {
        write!(out, "  {:<10}", Intent::ALL[i].as_str())?;
        for count in row {
            write!(out, " {count:>5}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
