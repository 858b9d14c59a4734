//! Artifacts derived from fetched ones by the converter, so that a fresh `models fetch` leaves
//! every model ready for its engine: today the whisper.cpp form of the CTranslate2 Whisper
//! model. Each derived file is written atomically and recorded (size, sha256) in the model's
//! manifest, which `verify` then checks like any other artifact.

use std::path::{Path, PathBuf};

use anyhow::Context;
use switchyard_core::{Artifact, Manifest};

use super::{sha256_file, write_manifest};

/// File name of the converted whisper.cpp model inside the model folder.
pub const WHISPER_GGML_FILE: &str = "ggml-model.bin";

/// Adds what `dir/<id>` lacks; returns the roles it derived (empty when nothing was missing).
pub fn ensure_derived(model_dir: &Path) -> anyhow::Result<Vec<String>> {
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
