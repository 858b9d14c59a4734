//! `build`: makes what a profile's [`Plan`] lacks, verifies each artifact, and records it in
//! the model's `manifest.json` (schema 2: format, precision, engines, source sha256, converter
//! version, settings). Each conversion writes to a temporary name and renames when complete,
//! so an interrupted build leaves nothing that looks finished.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use switchyard_core::manifest::{folder_digest, sha256_file};
use switchyard_core::{Artifact, Manifest};

use crate::plan::{Conversion, ModelPlan, Plan, PlannedArtifact};

/// The converter's name and version, as recorded in manifests.
pub fn converter_version() -> String {
    format!("switchyard-convert {}", env!("CARGO_PKG_VERSION"))
}

/// One artifact made by [`build`].
#[derive(Debug, Clone, Serialize)]
pub struct Built {
    /// Model id.
    pub model: String,
    /// Manifest role.
    pub role: String,
    /// Bytes written.
    pub bytes: u64,
    /// Source bytes read.
    pub source_bytes: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// What the verification checked.
    pub verified: String,
}

/// Makes every missing artifact of `plan` under `models_dir`, in plan order; `progress` is
/// told before each one starts. Stops at the first failure (what was built before it stays
/// recorded).
pub fn build(
    plan: &Plan,
    models_dir: &Path,
    threads: u32,
    progress: &mut dyn FnMut(&ModelPlan, &PlannedArtifact),
) -> anyhow::Result<Vec<Built>> {
    let mut built = Vec::new();
    for (model, artifact) in plan.missing() {
        progress(model, artifact);
        let dir = models_dir.join(&model.model);
        let result = build_one(&dir, artifact, threads).with_context(|| {
            format!(
                "building {} {} for {}",
                model.model, artifact.role, plan.profile
            )
        })?;
        built.push(result);
    }
    Ok(built)
}

fn build_one(model_dir: &Path, planned: &PlannedArtifact, threads: u32) -> anyhow::Result<Built> {
    let mut manifest = Manifest::load(model_dir)?;
    let conversion = planned
        .conversion
        .as_ref()
        .context("the artifact has no conversion")?;
    let from_role = match conversion {
        Conversion::Quantize { from, .. }
        | Conversion::GgufToMlx { from, .. }
        | Conversion::Onnx { from, .. }
        | Conversion::HfToGguf { from, .. }
        | Conversion::WhisperQuantize { from, .. } => from.as_str(),
    };
    let source = manifest
        .artifact(from_role)
        .cloned()
        .with_context(|| format!("{}: no artifact with role '{from_role}'", manifest.id))?;
    let source_path = manifest.resolve(&source);
    // Never convert from a source that is not what the manifest says it is.
    switchyard_core::manifest::verify_artifact(&source_path, &source, true)
        .map_err(anyhow::Error::msg)?;
    let output = model_dir.join(&planned.path);
    let started = Instant::now();
    let (settings, verified) = match conversion {
        Conversion::Quantize {
            target, requantize, ..
        } => {
            use switchyard_engine_llamacpp::quantize::{quantize, QuantType, QuantizeOptions};
            let target_type = QuantType::parse(target).map_err(anyhow::Error::msg)?;
            quantize(
                &source_path,
                &output,
                &QuantizeOptions {
                    target: target_type,
                    threads,
                    allow_requantize: *requantize,
                },
            )?;
            (
                serde_json::json!({"conversion": "quantize", "type": target, "requantize": requantize}),
                verify_gguf(&output)?,
            )
        }
        Conversion::HfToGguf { target, .. } => {
            use crate::hf_gguf::{convert, HfGgufOptions, OutType};
            use switchyard_engine_llamacpp::quantize::QuantType;
            let (out_type, quantize) = match target.as_str() {
                "fp16" | "f16" => (OutType::F16, None),
                "fp32" | "f32" => (OutType::F32, None),
                other => (
                    OutType::F16,
                    Some(QuantType::parse(other).map_err(anyhow::Error::msg)?),
                ),
            };
            let hf_dir = source_path.parent().unwrap_or(model_dir);
            convert(
                hf_dir,
                &output,
                &HfGgufOptions {
                    out_type,
                    quantize,
                    threads,
                    ..HfGgufOptions::default()
                },
            )?;
            (
                serde_json::json!({"conversion": "hf-gguf", "type": target}),
                verify_gguf(&output)?,
            )
        }
        Conversion::GgufToMlx {
            bits, group_size, ..
        } => {
            use crate::mlx::{convert_gguf, MlxOptions};
            let options = MlxOptions {
                bits: *bits,
                group_size: *group_size,
                overwrite: true,
                ..MlxOptions::default()
            };
            let report = convert_gguf(&source_path, &output, &options)?;
            let exact = report.requantized_names().is_empty();
            (
                serde_json::json!({
                    "conversion": "gguf-mlx",
                    "bits": bits,
                    "group_size": group_size,
                    "exact_block_mapping": exact,
                }),
                format!(
                    "mlx folder written; tokenizer checked against llama.cpp; {} tensors re-quantised",
                    report.requantized_names().len()
                ),
            )
        }
        Conversion::WhisperQuantize { target, .. } => {
            use crate::whisper_quant::{quantize, WhisperQuantType};
            let report = quantize(&source_path, &output, WhisperQuantType::parse(target)?)?;
            (
                serde_json::json!({"conversion": "whisper-quantize", "type": target}),
                format!(
                    "ggml parses back (ftype {}): {} of {} tensors {target}, every value within \
                     half a step of the source (max {:.4} of its block's maximum, RMS error \
                     {:.2}%)",
                    report.ftype_after,
                    report.tensors_quantized,
                    report.tensors,
                    report.max_block_error,
                    report.rms_relative_error * 100.0
                ),
            )
        }
        Conversion::Onnx { variant, .. } => {
            use crate::onnx_variants::{convert, read_model_structure, OnnxVariant};
            let variant = OnnxVariant::parse(variant)?;
            convert(&source_path, &output, variant)?;
            // The variant must parse back and keep the graph's interface.
            let written = read_model_structure(&output)?;
            let original = read_model_structure(&source_path)?;
            let interface = |m: &tract_onnx::pb::ModelProto| {
                m.graph.as_ref().map(|g| {
                    (
                        g.input.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
                        g.output.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
                    )
                })
            };
            anyhow::ensure!(
                interface(&written) == interface(&original),
                "{}: the variant's inputs/outputs differ from the source's",
                output.display()
            );
            (
                serde_json::json!({"conversion": "onnx-variant", "variant": variant.name()}),
                "parses as ONNX; inputs and outputs unchanged".to_owned(),
            )
        }
    };
    let (bytes, sha256) = if output.is_dir() {
        folder_digest(&output)?
    } else {
        (std::fs::metadata(&output)?.len(), sha256_file(&output)?)
    };
    manifest.set_artifact(Artifact {
        role: planned.role.clone(),
        path: planned.path.clone(),
        size: bytes,
        sha256,
        format: Some(planned.format.clone()),
        precision: Some(planned.precision.clone()),
        engines: planned.engines.clone(),
        source_sha256: Some(source.sha256.clone()),
        converter: Some(converter_version()),
        settings: Some(settings),
    });
    manifest.schema = Manifest::SCHEMA;
    manifest.save(model_dir)?;
    Ok(Built {
        model: manifest.id.clone(),
        role: planned.role.clone(),
        bytes,
        source_bytes: source.size,
        seconds: started.elapsed().as_secs_f64(),
        verified,
    })
}

fn verify_gguf(path: &Path) -> anyhow::Result<String> {
    let info = switchyard_engine_llamacpp::inspect_gguf(path).map_err(anyhow::Error::msg)?;
    Ok(format!(
        "GGUF parses: architecture {}, type {}",
        info.architecture,
        info.precision.unwrap_or("unknown")
    ))
}
