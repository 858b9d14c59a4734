//! Training and evaluation of tier B of Switchyard's intent classifier.
//!
//! Tier B ([`switchyard_intent::TierB`]) is a linear head over sentence embeddings. This crate
//! embeds the labelled JSONL data with [`MiniLmEmbedder`] (all-MiniLM-L6-v2 on ONNX Runtime),
//! fits a multinomial logistic regression with `linfa-logistic`, picks the L2 strength by
//! stratified cross-validation on the training data only, and writes the versioned artifact
//! deterministically. Held-out data is only ever evaluated, after the head is final.
//!
//! The binary is `switchyard-train-intent-tier-b` (`src/main.rs`).

pub mod data;
pub mod metrics;
pub mod train;

use std::path::{Path, PathBuf};

use switchyard_engine_llamacpp::encoder::SentenceEncoder;
use switchyard_engine_onnx::{MiniLmEmbedder, OnnxError};
use switchyard_intent::tier_b::SentenceEmbedder;
use switchyard_intent::IntentError;

pub use data::{load_jsonl, Dataset, Example};
pub use metrics::{evaluate, Evaluation};
pub use train::{train, TrainConfig, TrainOutcome};

/// Default token limit of tier B's embeddings (special tokens included).
///
/// Embedding cost grows about linearly with tokens (roughly 0.25-0.3 ms per token on the two
/// cores here), so a full 128-token embedding misses the 15 ms p99 budget; 32 tokens meets it
/// with room to spare. Cross-validation on the training data found no loss from the shorter
/// window (the n-gram block still reads the start and the end of long texts, and a short
/// window keeps the request's instruction from being diluted by the text it is about).
pub const DEFAULT_TIER_B_MAX_TOKENS: usize = 32;

/// Everything that can go wrong training or evaluating tier B.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A data line is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Loading or running the embedding model failed.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// Embedding a text failed.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// Building or validating the artifact failed.
    #[error(transparent)]
    Intent(#[from] IntentError),
    /// The solver failed or the options are unusable.
    #[error("training failed: {0}")]
    Training(String),
    /// Serialising the artifact failed.
    #[error("cannot serialise the artifact: {0}")]
    Json(#[from] serde_json::Error),
}

/// [`MiniLmEmbedder`] seen through tier B's [`SentenceEmbedder`] trait.
///
/// The gateway needs the same ten lines (the orphan rule keeps the impl out of both the
/// engine and the intent crate, which must not know each other).
#[derive(Debug)]
pub struct MiniLmSentenceEmbedder(pub MiniLmEmbedder);

impl SentenceEmbedder for MiniLmSentenceEmbedder {
    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed(text).map_err(|e| e.to_string())
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn engine(&self) -> &str {
        "onnxruntime"
    }
}

/// MiniLM on llama.cpp (the Q8_0 GGUF that `switchyard models fetch` derives, which the
/// gateway's tier B runs when the device profile puts `llama.cpp/cpu` first) seen through tier
/// B's [`SentenceEmbedder`] trait.
pub struct GgufSentenceEmbedder(pub SentenceEncoder);

impl SentenceEmbedder for GgufSentenceEmbedder {
    fn embed(&self, text: &str) -> Result<Vec<f32>, String> {
        self.0.embed(text).map_err(|e| e.to_string())
    }

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn engine(&self) -> &str {
        "llama.cpp"
    }
}

/// Where `switchyard models fetch` puts MiniLM's Q8_0 GGUF under `models_dir`.
pub fn minilm_gguf(models_dir: &Path) -> PathBuf {
    models_dir
        .join(switchyard_engine_onnx::MINILM_ID)
        .join("model.q8_0.gguf")
}

/// The models directory: `SWITCHYARD_MODELS_DIR`, else `<cache dir>/switchyard/models` (the
/// gateway's default), else `./models`.
pub fn default_models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The workspace root (two levels above this crate), where the default data paths live.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// `path` relative to the workspace root when it lies inside it (so artifacts do not record
/// machine-specific absolute paths), else as given.
pub fn display_path(path: &Path) -> String {
    let relative = workspace_dir()
        .canonicalize()
        .ok()
        .zip(path.canonicalize().ok())
        .and_then(|(root, p)| p.strip_prefix(root).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .to_string_lossy()
        .replace('\\', "/")
}

/// Embeds every example's text, one at a time (exactly as requests are embedded at run time).
pub fn embed_all(
    embedder: &dyn SentenceEmbedder,
    examples: &[Example],
) -> Result<Vec<Vec<f32>>, TrainError> {
    examples
        .iter()
        .map(|e| embedder.embed(&e.text).map_err(TrainError::Embedding))
        .collect()
}
