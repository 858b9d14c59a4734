//! `switchyard-train-intent`: trains tier A of the intent classifier and writes its artifact.
//!
//! ```text
//! cd router/intent
//! cargo run --release --bin switchyard-train-intent -- \
//!     --train data/train.jsonl --heldout data/heldout.jsonl --out artifacts/intent-tier-a-v1.json
//! ```
//!
//! Paths default to the crate's own `data/` and `artifacts/` folders. Training is deterministic:
//! the same data and options give byte-identical artifacts (`--check` verifies that the file on
//! disk is what the data produces). The held-out file is only read after the model is final, to
//! report its quality; it never influences training or the choice of hyper-parameters.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchyard_intent::train::{self, Dataset, TrainConfig};
use switchyard_intent::Intent;

const USAGE: &str = "\
usage: switchyard-train-intent [options]

  --train PATH      training data, JSONL {\"text\",\"intent\"} (default: <crate>/data/train.jsonl)
  --heldout PATH    held-out data, evaluated only (default: <crate>/data/heldout.jsonl)
  --no-heldout      skip the held-out evaluation
  --out PATH        artifact to write (default: <crate>/artifacts/intent-tier-a-v1.json)
  --alpha A[,B..]   L2 strength candidates (default: 0.003,0.01,0.03; one value skips CV)
  --folds K         cross-validation folds on the training data (default: 5)
  --min-df N        drop buckets seen in fewer than N training examples (default: 3)
  --prune W         drop buckets whose weights are all below W in magnitude (default: 0.3)
  --max-iterations N  L-BFGS iteration cap (default: 400)
  --buckets-log2 N  feature hash size 2^N (default: 15)
  --char-ngrams A-B character n-gram lengths (default: 2-4)
  --show-cv-errors  list the training examples misclassified in cross-validation
  --check           do not write; fail unless --out already holds exactly this artifact
  --quiet           print only the summary lines
  -h, --help        this text
";

struct Options {
    train: PathBuf,
    heldout: Option<PathBuf>,
    out: PathBuf,
    alphas: Option<Vec<f64>>,
    folds: Option<usize>,
    min_df: Option<usize>,
    max_iterations: Option<u64>,
    prune: Option<f64>,
    buckets_log2: Option<u32>,
    char_ngrams: Option<(usize, usize)>,
    show_cv_errors: bool,
    check: bool,
    quiet: bool,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let dir = crate_dir();
    let mut options = Options {
        train: dir.join("data/train.jsonl"),
        heldout: Some(dir.join("data/heldout.jsonl")),
        out: dir.join("artifacts/intent-tier-a-v1.json"),
        alphas: None,
        folds: None,
        min_df: None,
        max_iterations: None,
        prune: None,
        buckets_log2: None,
        char_ngrams: None,
        show_cv_errors: false,
        check: false,
        quiet: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--train" => options.train = PathBuf::from(value("--train")?),
            "--heldout" => options.heldout = Some(PathBuf::from(value("--heldout")?)),
            "--no-heldout" => options.heldout = None,
            "--out" => options.out = PathBuf::from(value("--out")?),
            "--alpha" => {
                let text = value("--alpha")?;
                let alphas = text
                    .split(',')
                    .map(|a| a.trim().parse::<f64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("--alpha {text:?}: {e}"))?;
                options.alphas = Some(alphas);
            }
            "--folds" => {
                let text = value("--folds")?;
                options.folds = Some(text.parse().map_err(|e| format!("--folds {text:?}: {e}"))?);
            }
            "--min-df" => {
                let text = value("--min-df")?;
                options.min_df = Some(
                    text.parse()
                        .map_err(|e| format!("--min-df {text:?}: {e}"))?,
                );
            }
            "--max-iterations" => {
                let text = value("--max-iterations")?;
                options.max_iterations = Some(
                    text.parse()
                        .map_err(|e| format!("--max-iterations {text:?}: {e}"))?,
                );
            }
            "--buckets-log2" => {
                let text = value("--buckets-log2")?;
                options.buckets_log2 = Some(
                    text.parse()
                        .map_err(|e| format!("--buckets-log2 {text:?}: {e}"))?,
                );
            }
            "--char-ngrams" => {
                let text = value("--char-ngrams")?;
                let parsed = text
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
                options.char_ngrams =
                    Some(parsed.ok_or_else(|| format!("--char-ngrams {text:?}: expected A-B"))?);
            }
            "--prune" => {
                let text = value("--prune")?;
                options.prune = Some(text.parse().map_err(|e| format!("--prune {text:?}: {e}"))?);
            }
            "--show-cv-errors" => options.show_cv_errors = true,
            "--check" => options.check = true,
            "--quiet" => options.quiet = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok(Some(options))
}

/// How a data file is named inside the artifact: relative to the crate when it lives there
/// (so artifacts do not depend on where the repository is checked out), else as given.
fn label_for(path: &Path) -> String {
    let dir = crate_dir();
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(file), Ok(dir)) => match file.strip_prefix(&dir) {
            Ok(relative) => relative.to_string_lossy().replace('\\', "/"),
            Err(_) => path.display().to_string(),
        },
        _ => path.display().to_string(),
    }
}

fn print_misclassified(out: &mut impl Write, list: &[train::Misclassified]) -> std::io::Result<()> {
    for m in list {
        writeln!(
            out,
            "  line {:>4}: {} -> {} ({:.2}) {:?}",
            m.line,
            m.expected,
            m.predicted,
            m.confidence,
            m.text.chars().take(100).collect::<String>()
        )?;
    }
    Ok(())
}

fn run(options: &Options, out: &mut impl Write) -> Result<bool, Box<dyn std::error::Error>> {
    let train_set = Dataset::load(&options.train)?;
    let heldout_set = match &options.heldout {
        Some(path) => {
            let set = Dataset::load(path)?;
            train_set.check_disjoint(&set)?;
            Some(set)
        }
        None => None,
    };

    let mut cfg = TrainConfig {
        train_file_label: Some(label_for(&options.train)),
        ..TrainConfig::default()
    };
    if let Some(alphas) = &options.alphas {
        cfg.alphas.clone_from(alphas);
    }
    if let Some(folds) = options.folds {
        cfg.cv_folds = folds;
    }
    if let Some(min_df) = options.min_df {
        cfg.min_bucket_examples = min_df;
    }
    if let Some(max_iterations) = options.max_iterations {
        cfg.max_iterations = max_iterations;
    }
    if let Some(prune) = options.prune {
        cfg.prune_below = prune;
    }
    if let Some(buckets_log2) = options.buckets_log2 {
        cfg.features.buckets_log2 = buckets_log2;
    }
    if let Some((min, max)) = options.char_ngrams {
        cfg.features.char_ngram_min = min;
        cfg.features.char_ngram_max = max;
    }

    let counts = train_set.counts();
    writeln!(
        out,
        "training data: {} ({} examples, sha256 {})",
        label_for(&options.train),
        train_set.examples.len(),
        train_set.sha256
    )?;
    let per_label: Vec<String> = Intent::ALL
        .iter()
        .map(|i| format!("{} {}", i.as_str(), counts[i.index()]))
        .collect();
    writeln!(out, "  per intent: {}", per_label.join(", "))?;

    let trained = train::train(&cfg, &train_set)?;
    if !trained.cv.is_empty() {
        writeln!(
            out,
            "{}-fold cross-validation on the training data:",
            cfg.cv_folds
        )?;
        for score in &trained.cv {
            writeln!(
                out,
                "  alpha {:<8} accuracy {:.4}  macro-F1 {:.4}  log-loss {:.4}",
                score.alpha, score.accuracy, score.macro_f1, score.log_loss
            )?;
        }
    }
    if options.show_cv_errors {
        writeln!(
            out,
            "misclassified in cross-validation at the chosen alpha:"
        )?;
        print_misclassified(out, &trained.cv_misclassified)?;
    }
    writeln!(
        out,
        "chosen alpha {}; training accuracy {:.4}; {} non-zero weight rows",
        trained.alpha,
        trained.train_evaluation.accuracy,
        trained.artifact.weights.rows.len()
    )?;

    let mut artifact = trained.artifact;
    if let (Some(set), Some(path)) = (&heldout_set, &options.heldout) {
        let evaluation =
            train::add_heldout_metrics(&mut artifact, &trained.model, set, &label_for(path));
        writeln!(
            out,
            "\nheld-out evaluation: {} ({} examples, never used for training or model selection)",
            label_for(path),
            set.examples.len()
        )?;
        write!(out, "{evaluation}")?;
        if !options.quiet && !evaluation.misclassified.is_empty() {
            writeln!(out, "misclassified:")?;
            print_misclassified(out, &evaluation.misclassified)?;
        }
    }

    let json = artifact.to_json()?;
    if options.check {
        let existing = std::fs::read(&options.out).unwrap_or_default();
        if existing == json.as_bytes() {
            writeln!(out, "\n{} is up to date", options.out.display())?;
            return Ok(true);
        }
        writeln!(
            out,
            "\n{} differs from what the data produces; rerun without --check",
            options.out.display()
        )?;
        return Ok(false);
    }
    if let Some(parent) = options.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.out, json.as_bytes())?;
    writeln!(
        out,
        "\nwrote {} ({} bytes, model {})",
        options.out.display(),
        json.len(),
        artifact.model
    )?;
    Ok(true)
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            let _ = std::io::stdout().write_all(USAGE.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match run(&options, &mut out) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            let _ = out.flush();
            eprintln!("switchyard-train-intent: {error}");
            ExitCode::from(2)
        }
    }
}
