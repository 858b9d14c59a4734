//! Shared helpers: where the fetched models are, and skipping when they are absent.

use std::path::PathBuf;

use switchyard_engine_onnx::MiniLmPaths;

/// `SWITCHYARD_MODELS_DIR`, else `~/.cache/switchyard/models` (the gateway's default).
pub fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The MiniLM + runtime paths, or `None` (with the reason printed) when they are not fetched.
pub fn minilm_paths(test: &str) -> Option<MiniLmPaths> {
    let paths = MiniLmPaths::in_models_dir(&models_dir());
    if paths.all_present() {
        Some(paths)
    } else {
        eprintln!(
            "SKIPPED {test}: ONNX Runtime / all-minilm-l6-v2 not found under {} \
             (run `switchyard models fetch`)",
            models_dir().display()
        );
        None
    }
}
