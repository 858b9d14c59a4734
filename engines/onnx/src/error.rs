//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong loading ONNX Runtime, a model or a tokenizer, or running them.
///
/// Messages name the file involved; none of them is meant for API clients verbatim (the
/// gateway decides what to show).
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The ONNX Runtime shared library is not at the given path.
    #[error(
        "ONNX Runtime library not found at {path} (run `switchyard models fetch` to install the \
         `onnxruntime` runtime)"
    )]
    LibraryMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The library exists but could not be loaded (wrong file, wrong version, missing symbols).
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    LibraryLoad {
        /// The library path.
        path: PathBuf,
        /// What ONNX Runtime or the dynamic loader said.
        message: String,
    },
    /// [`crate::init_runtime`] was already called with another library in this process.
    #[error(
        "ONNX Runtime is already loaded from {loaded} in this process; cannot switch to {requested}"
    )]
    RuntimeAlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },
    /// A model was loaded before [`crate::init_runtime`] succeeded.
    #[error("ONNX Runtime is not initialised: call init_runtime(<path to libonnxruntime>) first")]
    RuntimeNotInitialized,
    /// Creating the ONNX Runtime environment failed.
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(String),
    /// The ONNX model file does not exist.
    #[error("ONNX model not found at {path}")]
    ModelMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The tokenizer file does not exist.
    #[error("tokenizer not found at {path}")]
    TokenizerMissing {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The tokenizer file could not be parsed or configured.
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// ONNX Runtime refused the model (corrupt file, unsupported operator, bad options).
    #[error("cannot load ONNX model {path}: {message}")]
    Session {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        message: String,
    },
    /// The model's inputs or outputs are not those of a BERT-style sentence encoder.
    #[error("ONNX model {path} has an unexpected signature: {message}")]
    Signature {
        /// The model file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// Invalid options (zero threads, a token limit too small for the special tokens, ...).
    #[error("invalid embedder options: {0}")]
    Options(String),
    /// Tokenising an input text failed.
    #[error("tokenisation failed: {0}")]
    Tokenize(String),
    /// Running the model failed.
    #[error("ONNX Runtime inference failed: {0}")]
    Inference(String),
    /// The model produced an output of an unexpected type or shape.
    #[error("unexpected model output: {0}")]
    Output(String),
    /// The Piper voice configuration (`<voice>.onnx.json`) is missing or invalid.
    #[error("cannot load Piper voice config {path}: {message}")]
    VoiceConfig {
        /// The config file.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// espeak-ng (the phonemizer) could not be initialised, does not know the voice, or failed.
    #[error("espeak-ng phonemizer: {0}")]
    Phonemizer(String),
    /// The text to synthesise is empty or only whitespace.
    #[error("cannot synthesise speech: {0}")]
    InvalidText(String),
    /// The text yields no phoneme the voice knows (e.g. only punctuation or symbols).
    #[error("text {text:?} yields no phonemes for this voice")]
    NoPhonemes {
        /// The text (its first 80 characters).
        text: String,
    },
    /// Invalid voice or synthesis options (zero threads, a speed outside 0.25..=4.0, ...).
    #[error("invalid speech options: {0}")]
    SpeechOptions(String),
}
