//! Where the fetched model files live, and the file names this engine expects.

use std::path::PathBuf;

/// Environment variable that overrides the models directory.
pub const MODELS_DIR_ENV: &str = "SWITCHYARD_MODELS_DIR";

/// PP-OCRv6 tiny detector, relative to the models directory.
pub const OCR_DET_FILE: &str = "pp-ocrv6-tiny/PP-OCRv6_det_tiny.onnx";
/// PP-OCRv6 tiny recognizer, relative to the models directory.
pub const OCR_REC_FILE: &str = "pp-ocrv6-tiny/PP-OCRv6_rec_tiny.onnx";
/// Silero VAD (op18, no `If` on the hot path), relative to the models directory.
pub const VAD_FILE: &str = "silero-vad/silero_vad_op18_ifless.onnx";

/// The models directory: `SWITCHYARD_MODELS_DIR`, else `<user cache dir>/switchyard/models`.
/// `None` when neither is known.
pub fn models_dir() -> Option<PathBuf> {
    match std::env::var_os(MODELS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => dirs::cache_dir().map(|d| d.join("switchyard").join("models")),
    }
}
