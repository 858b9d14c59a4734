//! Errors before ONNX Runtime is loaded. Its own test binary (= its own process), because
//! the runtime can be loaded only once per process. Needs no model files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failures

use std::path::Path;

use switchyard_engine_onnx::{init_runtime, runtime, MiniLmEmbedder, OnnxError};

#[test]
fn missing_or_invalid_library_is_an_error_and_models_need_a_runtime() {
    let dir = std::env::temp_dir().join(format!("switchyard-onnx-nort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let missing = dir.join("libonnxruntime.so.1.31.1");
    let err = init_runtime(&missing).unwrap_err();
    assert!(matches!(err, OnnxError::LibraryMissing { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("libonnxruntime.so.1.31.1"), "{message}");
    assert!(message.contains("switchyard models fetch"), "{message}");

    let not_a_library = dir.join("libfake.so");
    std::fs::write(&not_a_library, b"this is not an ELF file").unwrap();
    let err = init_runtime(&not_a_library).unwrap_err();
    assert!(matches!(err, OnnxError::LibraryLoad { .. }), "{err}");
    assert!(runtime().is_none());

    // Existing files, but no runtime yet.
    let model = dir.join("model.onnx");
    let tokenizer = dir.join("tokenizer.json");
    std::fs::write(&model, b"x").unwrap();
    std::fs::write(&tokenizer, b"{}").unwrap();
    let err = MiniLmEmbedder::load(&model, &tokenizer, 1).unwrap_err();
    assert!(matches!(err, OnnxError::RuntimeNotInitialized), "{err}");
    let err =
        MiniLmEmbedder::load(Path::new("/nonexistent/model.onnx"), &tokenizer, 1).unwrap_err();
    assert!(matches!(err, OnnxError::ModelMissing { .. }), "{err}");

    let _ = std::fs::remove_dir_all(&dir);
}
