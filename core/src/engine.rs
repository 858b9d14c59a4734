//! The engine abstraction: an [`Engine`] family loads models; a [`LoadedModel`] serves
//! generations as a stream of [`GenerationEvent`]s and can be cancelled at any time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::EngineError;
use crate::manifest::Manifest;
use crate::request::{FinishReason, GenerateRequest, Usage};

/// A task a model can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Chat completions (messages rendered with a chat template).
    Chat,
    /// Raw text completions.
    Completion,
}

/// What a loaded model can do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// Tasks served.
    pub tasks: Vec<Task>,
    /// Whether output is produced token by token.
    pub streaming: bool,
    /// Context size available to one request, in tokens.
    pub context_per_request: u32,
    /// Requests decoded together (continuous batching slots).
    pub parallel_slots: u32,
}

/// Engine settings chosen by the operator (configuration / device profile).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineConfig {
    /// CPU threads for decoding (set explicitly; never "all cores").
    pub threads: u32,
    /// Parallel sequences decoded in one batch.
    pub slots: u32,
    /// Context tokens reserved for each slot.
    pub context_per_slot: u32,
    /// Maximum tokens submitted to one decode call (prompt chunks + generation steps).
    pub batch_size: u32,
    /// Requests allowed to wait for a free slot before new ones are refused.
    pub queue_size: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            threads: 2,
            slots: 8,
            context_per_slot: 2048,
            batch_size: 512,
            queue_size: 64,
        }
    }
}

/// A snapshot of a loaded model's state, for health and metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStatus {
    /// Model id.
    pub id: String,
    /// The engine that actually runs it (and its device), e.g. `llama.cpp/cpu`.
    pub engine: String,
    /// Estimated resident bytes: weights + KV cache + compute buffers.
    pub memory_bytes: u64,
    /// Sequences being decoded now.
    pub active: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
}

/// One engine family (llama.cpp, ONNX Runtime, ...). Registered by name in the engines facade.
pub trait Engine: Send + Sync {
    /// Stable engine name, e.g. `llama.cpp`.
    fn name(&self) -> &'static str;
    /// Whether the engine can run on this machine; `Err` says why not.
    fn check(&self) -> Result<(), String>;
    /// Whether this engine reads the model's primary artifact format.
    fn supports(&self, manifest: &Manifest) -> bool;
    /// CPU instruction sets the engine's kernels were built for (llama.cpp: `AVX2`, `AVX512`,
    /// `AMX_INT8`, ...), shown in `/health`; empty when the engine does not say.
    fn cpu_features(&self) -> Vec<String> {
        Vec::new()
    }
    /// Bytes the model would occupy once loaded with `config` (weights + KV cache + buffers).
    fn memory_estimate(
        &self,
        manifest: &Manifest,
        config: &EngineConfig,
    ) -> Result<u64, EngineError>;
    /// Loads the model. Blocking: call it off the async executor.
    fn load(
        &self,
        manifest: &Manifest,
        config: &EngineConfig,
    ) -> Result<Arc<dyn LoadedModel>, EngineError>;
}

/// A model ready to serve requests.
pub trait LoadedModel: Send + Sync {
    /// Current state (memory, active and queued requests).
    fn status(&self) -> ModelStatus;
    /// What the model can do.
    fn capabilities(&self) -> Capabilities;
    /// Validates and tokenizes the request, then queues it for a slot. Returns at once with a
    /// stream of events; fails fast with [`EngineError::InvalidRequest`] (e.g. prompt longer than
    /// the context) or [`EngineError::QueueFull`]. May block briefly (tokenization): call it off
    /// the async executor for long prompts.
    fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError>;
    /// Stops accepting requests, finishes nothing new, and releases the worker.
    fn shutdown(&self);
}

/// What a generation emits, in order: zero or more `Token`s, then exactly one `Finished` or
/// `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// Newly generated text (always valid UTF-8, never part of a stop sequence).
    Token {
        /// The text delta.
        text: String,
    },
    /// The generation ended normally.
    Finished {
        /// Why it ended.
        reason: FinishReason,
        /// Token accounting.
        usage: Usage,
    },
    /// The generation failed after it started.
    Failed(EngineError),
}

/// A shared flag that tells the engine to stop a generation at its next decode step.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// Asks for cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    /// Whether cancellation was asked.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A running generation. Dropping it cancels the generation (this is how a client that
/// disconnects frees its slot).
#[derive(Debug)]
pub struct Generation {
    /// Tokens in the prompt after templating.
    pub prompt_tokens: u32,
    /// The event stream.
    pub events: mpsc::UnboundedReceiver<GenerationEvent>,
    /// Cancels the generation when set.
    pub cancel: CancelFlag,
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
