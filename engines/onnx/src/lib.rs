//! Switchyard's ONNX Runtime engine (via [`ort`], `load-dynamic`).
//!
//! ONNX Runtime is not linked in: the shared library comes from the pinned `onnxruntime`
//! wheel that `switchyard models fetch` installs, and is loaded at run time with
//! [`init_runtime`], so a missing library is an error rather than a panic or a link failure.
//!
//! What runs on it today is [`MiniLmEmbedder`], a sentence embedder (all-MiniLM-L6-v2 int8:
//! WordPiece tokeniser from `tokenizer.json`, mean pooling over the attention mask, L2
//! normalisation). [`piper::PiperVoice`] is text-to-speech with a Piper VITS voice (espeak-ng
//! phonemes, audio returned in ONNX Runtime's own output buffer as a
//! [`switchyard_core::Tensor`]). The engine knows nothing of HTTP or of the router.
//!
//! ```no_run
//! use std::path::Path;
//! use switchyard_engine_onnx::{init_runtime, MiniLmEmbedder, MiniLmPaths};
//!
//! let paths = MiniLmPaths::in_models_dir(Path::new("/var/lib/switchyard/models"));
//! init_runtime(&paths.runtime_library)?;
//! let embedder = MiniLmEmbedder::load(&paths.model, &paths.tokenizer, 2)?;
//! let v = embedder.embed("turn this paragraph into three bullet points")?;
//! assert_eq!(v.len(), 384);
//! # Ok::<(), switchyard_engine_onnx::OnnxError>(())
//! ```

mod embedder;
mod error;
mod network;
pub mod piper;
mod runtime;
mod storage;

use std::path::{Path, PathBuf};

pub use embedder::{EmbedderOptions, MiniLmEmbedder, DEFAULT_MAX_TOKENS};
pub use error::OnnxError;
pub use network::OnnxNetwork;
pub mod providers;

pub use providers::{ExecutionProvider, Placement, ProviderReport, SkippedProvider};
pub use runtime::{init_runtime, runtime, same_file, Runtime};

/// Catalog id of the ONNX Runtime library "model" folder.
pub const RUNTIME_ID: &str = "onnxruntime";
/// File name of the ONNX Runtime library inside its folder.
pub const RUNTIME_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";
/// Catalog id of the all-MiniLM-L6-v2 sentence embedding model folder.
pub const MINILM_ID: &str = "all-minilm-l6-v2";
/// File name of the ONNX model inside its folder.
pub const MINILM_MODEL_FILE: &str = "model.onnx";
/// File name of the tokenizer inside the model folder.
pub const MINILM_TOKENIZER_FILE: &str = "tokenizer.json";

/// Where `switchyard models fetch` puts the ONNX Runtime shared library under `models_dir`.
pub fn runtime_library_in(models_dir: &Path) -> PathBuf {
    models_dir.join(RUNTIME_ID).join(RUNTIME_LIBRARY_FILE)
}

/// Where `switchyard models fetch` puts the runtime library and the MiniLM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MiniLmPaths {
    /// `<models>/onnxruntime/libonnxruntime.so.1.31.1`.
    pub runtime_library: PathBuf,
    /// `<models>/all-minilm-l6-v2/model.onnx`.
    pub model: PathBuf,
    /// `<models>/all-minilm-l6-v2/tokenizer.json`.
    pub tokenizer: PathBuf,
}

impl MiniLmPaths {
    /// The standard layout under a models directory.
    pub fn in_models_dir(models_dir: &Path) -> MiniLmPaths {
        let model_dir = models_dir.join(MINILM_ID);
        MiniLmPaths {
            runtime_library: runtime_library_in(models_dir),
            model: model_dir.join(MINILM_MODEL_FILE),
            tokenizer: model_dir.join(MINILM_TOKENIZER_FILE),
        }
    }

    /// True when all three files exist.
    pub fn all_present(&self) -> bool {
        [&self.runtime_library, &self.model, &self.tokenizer]
            .iter()
            .all(|p| p.is_file())
    }
}
