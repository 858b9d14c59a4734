//! Switchyard core: the types every other crate shares.
//!
//! - [`request`]: typed generation requests (chat messages, sampling parameters);
//! - [`engine`]: the [`Engine`] trait that every engine family implements, and the
//!   [`LoadedModel`] handle that serves generations with streaming output and cancellation;
//! - [`error`]: [`EngineError`], the one error type engines return;
//! - [`tensor`]: the shared, zero-copy [`Tensor`] that pipeline steps hand each other;
//! - [`copy`]: [`CopyLedger`], through which every unavoidable copy is made and counted;
//! - [`manifest`]: the on-disk `manifest.json` that describes a model and its artifacts.
//!
//! Nothing here knows about HTTP or about any engine's internals.

pub mod copy;
pub mod dlpack;
pub mod engine;
pub mod error;
pub mod manifest;
pub mod network;
pub mod request;
pub mod sniff;
pub mod tensor;
pub mod text;

pub use copy::{CopyLedger, CopySummary};
pub use engine::{
    Capabilities, Engine, EngineConfig, Generation, GenerationEvent, LoadedModel, ModelStatus, Task,
};
pub use error::EngineError;
pub use manifest::{Artifact, Manifest};
pub use network::F32Network;
pub use request::{ChatMessage, FinishReason, GenerateRequest, Prompt, SamplingParams, Usage};
pub use tensor::{
    BufferAlloc, DType, Device, Element, HeapAlloc, Storage, StorageMut, Tensor, TensorError,
    TensorMeta,
};
