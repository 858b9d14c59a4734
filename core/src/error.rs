//! The error type of the engine layer.

use thiserror::Error;

/// What went wrong inside an engine. The gateway maps each variant to one HTTP status.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    /// The request cannot be served as asked (e.g. the prompt is longer than the context).
    /// This is the caller's fault: the gateway answers 400.
    #[error("{message}")]
    InvalidRequest {
        /// Human-readable explanation.
        message: String,
        /// The request field at fault, when there is one.
        param: Option<String>,
    },
    /// The model's queue is full; the caller may retry later (429).
    #[error("the queue of model '{model}' is full ({capacity} waiting); retry later")]
    QueueFull {
        /// Model id.
        model: String,
        /// Queue capacity.
        capacity: usize,
    },
    /// The engine is shutting down or its worker is gone (503).
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// A model could not be loaded (500).
    #[error("failed to load model: {0}")]
    Load(String),
    /// Inference failed (500).
    #[error("inference failed: {0}")]
    Inference(String),
}

impl EngineError {
    /// Shorthand for an [`EngineError::InvalidRequest`] about one request field.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        EngineError::InvalidRequest {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
}
