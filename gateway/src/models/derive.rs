//! Artifacts derived from fetched ones by the converter, so that a fresh `models fetch` leaves
//! every model ready for its engine: the whisper.cpp form of the CTranslate2 Whisper model,
//! and a Q8_0 GGUF of an embedding model's f32 source weights, which the router's intent
//! tier B runs on llama.cpp (25 MB of mapped weights, where ONNX Runtime keeps ~160 MB for the
//! int8 ONNX form). Each derived file is written atomically and recorded (size, sha256) in the model's
//! manifest, which `verify` then checks like any other artifact.

use std::path::{Path, PathBuf};

use anyhow::Context;
use switchyard_core::{Artifact, Manifest};

use super::{sha256_file, write_manifest};

/// File name of the converted whisper.cpp model inside the model folder.
pub const WHISPER_GGML_FILE: &str = "ggml-model.bin";

/// File name of the Q8_0 GGUF of an embedding model inside its folder.
pub const ENCODER_GGUF_FILE: &str = "model.q8_0.gguf";

/// Manifest role of that GGUF.
pub const ENCODER_GGUF_ROLE: &str = switchyard_converter::serving::DERIVED_GGUF_ROLE;

/// Adds what `dir/<id>` lacks; returns the roles it derived (empty when nothing was missing).
pub fn ensure_derived(model_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut derived = ensure_whisper_ggml(model_dir)?;
    derived.extend(ensure_encoder_gguf(model_dir)?);
    Ok(derived)
}

/// The Q8_0 GGUF of an ONNX embedding model that ships its Hugging Face source
/// (`source-weights` safetensors, `source-config`, tokenizer), converted by the bundled
/// converter and quantised by llama.cpp.
fn ensure_encoder_gguf(model_dir: &Path) -> anyhow::Result<Vec<String>> {
    use switchyard_converter::hf_gguf::{convert, HfGgufOptions};
    use switchyard_engines::llamacpp::quantize::QuantType;

    let mut manifest = Manifest::load(model_dir)?;
    let has = |role: &str| manifest.artifacts.iter().any(|a| a.role == role);
    let is_encoder_with_source = manifest.tasks.iter().any(|t| t == "embedding")
        && has("source-weights")
        && has("source-config")
        && has("tokenizer");
    if !is_encoder_with_source || has(ENCODER_GGUF_ROLE) {
        return Ok(Vec::new());
    }
    let out = model_dir.join(ENCODER_GGUF_FILE);
    let options = HfGgufOptions {
        quantize: Some(QuantType::Q8_0),
        ..HfGgufOptions::default()
    };
    let report = convert(model_dir, &out, &options)
        .with_context(|| format!("converting {} to GGUF for llama.cpp", manifest.id))?;
    tracing::info!(model = %manifest.id, bytes = report.output_bytes, "converted for llama.cpp");
    let source_sha256 = manifest
        .artifacts
        .iter()
        .find(|a| a.role == "source-weights")
        .map(|a| a.sha256.clone());
    manifest.set_artifact(Artifact {
        role: ENCODER_GGUF_ROLE.to_owned(),
        path: PathBuf::from(ENCODER_GGUF_FILE),
        size: std::fs::metadata(&out)?.len(),
        sha256: sha256_file(&out)?,
        format: Some("gguf".into()),
        precision: Some("q8_0".into()),
        engines: vec!["llama.cpp/cpu".into()],
        source_sha256,
        converter: Some(format!("switchyard-convert {}", env!("CARGO_PKG_VERSION"))),
        settings: Some(serde_json::json!({ "conversion": "hf-gguf", "quantize": "q8_0" })),
    });
    manifest.schema = Manifest::SCHEMA;
    write_manifest(model_dir, &manifest)?;
    Ok(vec![ENCODER_GGUF_ROLE.to_owned()])
}

/// The whisper.cpp (ggml) form of a CTranslate2 Whisper model.
fn ensure_whisper_ggml(model_dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut manifest = Manifest::load(model_dir)?;
    let role = crate::services::speech::GGML_ROLE;
    let is_ct2_whisper =
        manifest.format == "ctranslate2" && manifest.tasks.iter().any(|t| t == "stt");
    if !is_ct2_whisper || manifest.artifacts.iter().any(|a| a.role == role) {
        return Ok(Vec::new());
    }
    let out = model_dir.join(WHISPER_GGML_FILE);
    let report = switchyard_converter::ct2_whisper::convert(model_dir, &out)
        .with_context(|| format!("converting {} for whisper.cpp", manifest.id))?;
    tracing::info!(model = %manifest.id, bytes = report.bytes, "converted for whisper.cpp");
    let source_sha256 = manifest.primary().map(|a| a.sha256.clone());
    manifest.set_artifact(Artifact {
        role: role.to_owned(),
        path: PathBuf::from(WHISPER_GGML_FILE),
        size: std::fs::metadata(&out)?.len(),
        sha256: sha256_file(&out)?,
        format: Some("ggml".into()),
        precision: Some("f16".into()),
        engines: vec!["whisper.cpp/cpu".into()],
        source_sha256,
        converter: Some(format!("switchyard-convert {}", env!("CARGO_PKG_VERSION"))),
        settings: Some(serde_json::json!({ "conversion": "whisper-ct2" })),
    });
    manifest.schema = Manifest::SCHEMA;
    write_manifest(model_dir, &manifest)?;
    Ok(vec![role.to_owned()])
}
