//! Typed errors of the tract engine, worded for an operator.

use std::path::PathBuf;

/// Why loading a model or running it failed.
#[derive(Debug, thiserror::Error)]
pub enum TractError {
    /// A model file is missing or unreadable.
    #[error("model file {path} cannot be read: {reason}")]
    ModelFile {
        /// The file that was asked for.
        path: PathBuf,
        /// What went wrong (I/O or ONNX parse error).
        reason: String,
    },
    /// tract could not turn the ONNX graph into an optimized plan.
    #[error("model {path} cannot be prepared for inference: {reason}")]
    ModelPlan {
        /// The model file.
        path: PathBuf,
        /// tract's explanation.
        reason: String,
    },
    /// The model lacks something this engine needs (an input, an output, metadata).
    #[error("model {path} is not the expected kind: {reason}")]
    ModelContract {
        /// The model file.
        path: PathBuf,
        /// What is missing or different.
        reason: String,
    },
    /// The caller's tensor has the wrong element type, rank or layout.
    #[error("invalid input: {0}")]
    Input(String),
    /// Running the model failed.
    #[error("{model} inference failed: {reason}")]
    Inference {
        /// Which model ("ocr detector", "ocr recognizer", "silero vad").
        model: &'static str,
        /// tract's explanation.
        reason: String,
    },
}

impl TractError {
    /// An inference failure of `model`, from any displayable error.
    pub(crate) fn inference(model: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Inference {
            model,
            reason: format!("{err:#}"),
        }
    }
}

impl From<switchyard_core::TensorError> for TractError {
    fn from(err: switchyard_core::TensorError) -> Self {
        Self::Input(err.to_string())
    }
}
