//! Switchyard tract engine: pure-Rust ONNX (tract-onnx) for OCR (PP-OCRv6 det + rec) and voice activity (Silero VAD).
//!
//! Both models are loaded once into optimized, immutable tract plans; every call keeps its own
//! state, so a loaded model can be shared by reference across threads. Pixel and sample
//! copies into model inputs are recorded on the caller's [`switchyard_core::CopyLedger`].

mod error;
mod models_dir;
pub mod network;
pub mod ocr;
mod plan;
pub mod vad;

pub use error::TractError;
pub use models_dir::{models_dir, MODELS_DIR_ENV, OCR_DET_FILE, OCR_REC_FILE, VAD_FILE};
