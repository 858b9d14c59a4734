//! Switchyard's intent classifier (router stage 2), tier A.
//!
//! Tier A is a multinomial logistic regression over hashed character and word n-grams. It is
//! trained offline with [`linfa`](https://docs.rs/linfa) (see [`train`]), exported into a small
//! JSON artifact ([`artifact::Artifact`]) and served by [`TierA`]: at run time a request's text
//! goes through [`features`] (the same function that built the training matrix), a sparse dot
//! product against the exported weights and a softmax. Nothing on the inference path goes
//! through linfa or allocates once a thread's scratch buffers exist.
//!
//! ```
//! use switchyard_intent::{Intent, TierA};
//!
//! let model = TierA::builtin()?;
//! let prediction = model.classify("tl;dr this article for me please");
//! assert_eq!(prediction.intent, Intent::Summarize);
//! # Ok::<(), switchyard_intent::IntentError>(())
//! ```

pub mod artifact;
pub mod features;
pub mod tier_b;
pub mod train;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use artifact::Artifact;
pub use features::{FeatureConfig, Scratch};
pub use tier_b::{SentenceEmbedder, TierB, TierBError};

/// Number of intent labels; the length of every per-label array in this crate.
pub const NUM_INTENTS: usize = 7;

/// The built-in artifact, compiled into the binary (see [`TierA::builtin`]).
pub const BUILTIN_ARTIFACT: &str = include_str!("../artifacts/intent-tier-a-v1.json");

/// What a request asks for, as decided by the intent stage of the router.
///
/// Serialises as the label strings `chat`, `code`, `summarize`, `long-form`, `tool-use`,
/// `classify` and `tts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Intent {
    /// Conversation, questions, advice, small talk.
    #[serde(rename = "chat")]
    Chat,
    /// Writing, fixing, explaining or reviewing code.
    #[serde(rename = "code")]
    Code,
    /// Shortening given text: summaries, TL;DRs, key points.
    #[serde(rename = "summarize")]
    Summarize,
    /// Producing a long text: essays, stories, reports, articles.
    #[serde(rename = "long-form")]
    LongForm,
    /// Acting through a tool or API: search, weather, calendar, messages, function calls.
    #[serde(rename = "tool-use")]
    ToolUse,
    /// Putting given text into categories: sentiment, spam, topics, tags.
    #[serde(rename = "classify")]
    Classify,
    /// Speaking text aloud (text-to-speech).
    #[serde(rename = "tts")]
    Tts,
}

impl Intent {
    /// Every intent, in the canonical order used by [`Prediction::probabilities`].
    pub const ALL: [Intent; NUM_INTENTS] = [
        Intent::Chat,
        Intent::Code,
        Intent::Summarize,
        Intent::LongForm,
        Intent::ToolUse,
        Intent::Classify,
        Intent::Tts,
    ];

    /// The label string (`"chat"`, `"long-form"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Intent::Chat => "chat",
            Intent::Code => "code",
            Intent::Summarize => "summarize",
            Intent::LongForm => "long-form",
            Intent::ToolUse => "tool-use",
            Intent::Classify => "classify",
            Intent::Tts => "tts",
        }
    }

    /// Position of this intent in [`Intent::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The intent at `index` in [`Intent::ALL`], if any.
    pub fn from_index(index: usize) -> Option<Intent> {
        Intent::ALL.get(index).copied()
    }
}

impl fmt::Display for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Intent {
    type Err = IntentError;

    /// Parses a label string exactly as [`Intent::as_str`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Intent::ALL
            .iter()
            .copied()
            .find(|intent| intent.as_str() == s)
            .ok_or_else(|| IntentError::UnknownLabel(s.to_owned()))
    }
}

/// The outcome of classifying one text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    /// The most probable intent.
    pub intent: Intent,
    /// Probability of [`Prediction::intent`], in `[0, 1]`.
    pub confidence: f32,
    /// Probability of every intent, indexed like [`Intent::ALL`]; sums to 1.
    pub probabilities: [f32; NUM_INTENTS],
}

impl Prediction {
    /// Probability of one intent.
    pub fn probability(&self, intent: Intent) -> f32 {
        self.probabilities[intent.index()]
    }

    /// The second most probable intent and its probability (useful to decide whether tier B
    /// should look at the request).
    pub fn runner_up(&self) -> (Intent, f32) {
        let mut best = (Intent::Chat, f32::NEG_INFINITY);
        for intent in Intent::ALL {
            let p = self.probabilities[intent.index()];
            if intent != self.intent && p > best.1 {
                best = (intent, p);
            }
        }
        best
    }

    /// Builds a prediction from raw scores (logits) with a numerically stable softmax.
    pub(crate) fn from_scores(scores: [f32; NUM_INTENTS]) -> Prediction {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probabilities = [0.0f32; NUM_INTENTS];
        let mut sum = 0.0f32;
        for (p, s) in probabilities.iter_mut().zip(scores) {
            *p = (s - max).exp();
            sum += *p;
        }
        if !(sum.is_finite() && sum > 0.0) {
            // Unreachable with validated (finite) weights; stay total anyway.
            probabilities = [1.0 / NUM_INTENTS as f32; NUM_INTENTS];
        } else {
            for p in &mut probabilities {
                *p /= sum;
            }
        }
        let mut best = 0;
        for (i, p) in probabilities.iter().enumerate() {
            if *p > probabilities[best] {
                best = i;
            }
        }
        Prediction {
            intent: Intent::ALL[best],
            confidence: probabilities[best],
            probabilities,
        }
    }
}

/// Everything that can go wrong loading an artifact or training data.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    /// The artifact (or a data line) is not valid JSON, or does not have the expected shape.
    #[error("invalid intent artifact JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The artifact was written for another schema version.
    #[error("unsupported intent artifact schema_version {found} (this build reads {expected})")]
    SchemaVersion {
        /// Version found in the artifact.
        found: u32,
        /// Version this build understands.
        expected: u32,
    },
    /// A label string that is not one of the known intents.
    #[error("unknown intent label {0:?} (known: chat, code, summarize, long-form, tool-use, classify, tts)")]
    UnknownLabel(String),
    /// The artifact's label list is not a permutation of all intents.
    #[error("invalid label list in artifact: {0}")]
    Labels(String),
    /// An array in the artifact has the wrong length or an index is out of range.
    #[error("artifact dimension mismatch: {0}")]
    Dimensions(String),
    /// The feature hashing parameters are not supported.
    #[error("invalid feature configuration: {0}")]
    FeatureConfig(String),
    /// A weight or intercept is NaN or infinite.
    #[error("artifact contains a non-finite number in {0}")]
    NonFinite(String),
    /// Reading a file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A training or evaluation data file is malformed.
    #[error("{path}:{line}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Training failed (bad hyper-parameters, too few classes, solver error).
    #[error("training failed: {0}")]
    Training(String),
}

/// Weight rows are padded to 8 lanes so the inner loop vectorises.
pub(crate) const LANES: usize = 8;

/// The tier A classifier: hashed n-gram features, exported logistic regression weights.
///
/// Cheap to share (`&TierA` is all [`TierA::classify`] needs); it is `Send + Sync`.
#[derive(Debug, Clone)]
pub struct TierA {
    features: FeatureConfig,
    /// Per hash bucket: 1 + its row in `rows`, or 0 when all its weights are zero.
    index: Vec<u32>,
    /// Weight rows of the buckets with a non-zero weight, canonical label order. Kept compact
    /// (rather than one row per bucket) so the rows a request touches stay in cache.
    rows: Vec<[f32; LANES]>,
    intercepts: [f32; LANES],
    /// Model version string from the artifact.
    version: String,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Reads an artifact file, naming it in the error.
pub(crate) fn read_artifact(path: &Path) -> Result<String, IntentError> {
    std::fs::read_to_string(path).map_err(|source| IntentError::Io {
        path: path.to_owned(),
        source,
    })
}

impl TierA {
    /// Parses and validates an artifact (the JSON written by the training binary).
    pub fn from_json(text: &str) -> Result<TierA, IntentError> {
        let artifact: Artifact = serde_json::from_str(text)?;
        TierA::from_artifact(&artifact)
    }

    /// Reads, parses and validates an artifact file.
    pub fn load(path: &Path) -> Result<TierA, IntentError> {
        TierA::from_json(&read_artifact(path)?)
    }

    /// The artifact compiled into this crate (`artifacts/intent-tier-a-v1.json`).
    pub fn builtin() -> Result<TierA, IntentError> {
        TierA::from_json(BUILTIN_ARTIFACT)
    }

    /// Builds the classifier from a parsed artifact, validating every field.
    pub fn from_artifact(artifact: &Artifact) -> Result<TierA, IntentError> {
        artifact::validate_into_tier_a(artifact)
    }

    pub(crate) fn from_parts(
        features: FeatureConfig,
        index: Vec<u32>,
        rows: Vec<[f32; LANES]>,
        intercepts: [f32; LANES],
        version: String,
    ) -> TierA {
        TierA {
            features,
            index,
            rows,
            intercepts,
            version,
        }
    }

    /// The feature hashing parameters this model was trained with.
    pub fn feature_config(&self) -> &FeatureConfig {
        &self.features
    }

    /// The model version recorded in the artifact (e.g. `"intent-tier-a-v1"`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of hash buckets with at least one non-zero weight.
    pub fn nonzero_buckets(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| row.iter().any(|w| *w != 0.0))
            .count()
    }

    /// Classifies `text`. Never panics; an empty or whitespace-only text gives the prior
    /// (intercept-only) distribution, which has low confidence.
    ///
    /// Uses a per-thread scratch buffer, so it does not allocate after a thread's first call.
    pub fn classify(&self, text: &str) -> Prediction {
        let from_tls = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let scratch = slot.get_or_insert_with(Scratch::new);
                Some(self.classify_with(text, scratch))
            }
            Err(_) => None,
        });
        match from_tls {
            Ok(Some(prediction)) => prediction,
            // Thread-local storage is being torn down (or re-entered): use a fresh buffer.
            _ => self.classify_with(text, &mut Scratch::new()),
        }
    }

    /// Classifies `text` with caller-provided scratch buffers.
    pub fn classify_with(&self, text: &str, scratch: &mut Scratch) -> Prediction {
        let mut acc = [0.0f32; LANES];
        let mut sum_sq = 0.0f32;
        features::extract(&self.features, text, scratch, |bucket, value| {
            sum_sq += value * value;
            let slot = self.index.get(bucket as usize).copied().unwrap_or(0) as usize;
            if let Some(row) = slot.checked_sub(1).and_then(|r| self.rows.get(r)) {
                for (a, w) in acc.iter_mut().zip(row) {
                    *a += value * w;
                }
            }
        });
        let scale = if sum_sq > 0.0 {
            1.0 / sum_sq.sqrt()
        } else {
            0.0
        };
        let mut scores = [0.0f32; NUM_INTENTS];
        for (i, s) in scores.iter_mut().enumerate() {
            *s = self.intercepts[i] + acc[i] * scale;
        }
        Prediction::from_scores(scores)
    }
}
