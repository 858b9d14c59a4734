//! Switchyard speech-to-text: supervises the whisper.cpp worker process and hands it audio
//! through shared memory.
//!
//! whisper.cpp (via whisper-rs) cannot be linked into a binary that also links llama.cpp (both
//! vendor ggml), so it runs in its own process, `switchyard-whisper-worker`, which only this
//! crate talks to. This crate does not link whisper.cpp itself.
//!
//! - [`ShmAlloc`]: a [`switchyard_core::BufferAlloc`] whose buffers are memfd shared memory.
//!   An audio decoder that writes its samples through it produces a tensor the worker can map
//!   directly: no copy crosses the process boundary.
//! - [`WhisperHost`]: starts the worker, restarts it with backoff when it dies, and serializes
//!   requests to it ([`WhisperHost::transcribe`] is blocking and may be called from any thread).
//! - [`protocol`]: the frames exchanged over the Unix socket.

mod host;
pub mod protocol;
mod shm;

pub use host::{
    locate_worker, SttError, Timeouts, Transcript, TranscriptTimings, WhisperConfig, WhisperHost,
    WORKER_ENV, WORKER_EXE_NAME,
};
pub use protocol::{Segment, TranscribeOptions, WorkerTimings};
pub use shm::{shm_backing, ShmAlloc, ShmBuffer, ShmStorage, ShmView};
