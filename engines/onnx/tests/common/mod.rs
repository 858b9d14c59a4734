//! Shared helpers: where the fetched models are, and skipping when they are absent.

use switchyard_engine_onnx::piper::PiperPaths;
use switchyard_engine_onnx::MiniLmPaths;

pub use switchyard_testkit::models_dir;

/// The MiniLM + runtime paths, or `None` (with the reason printed) when they are not fetched.
#[allow(dead_code)] // each test binary uses a subset of these helpers
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

/// The Piper joe voice + runtime paths, or `None` (with the reason printed) when they are not
/// fetched. With `CI` set, missing files fail the test instead of skipping it.
#[allow(dead_code)] // each test binary uses a subset of these helpers
pub fn piper_paths(test: &str) -> Option<PiperPaths> {
    let paths = PiperPaths::in_models_dir(&models_dir());
    if paths.all_present() {
        return Some(paths);
    }
    let message = format!(
        "{test}: ONNX Runtime / piper-joe-medium not found under {} (run `switchyard models fetch`)",
        models_dir().display()
    );
    assert!(std::env::var_os("CI").is_none(), "FAILED {message}");
    eprintln!("SKIPPED {message}");
    None
}
