//! `plan`: for each model in the models directory, the artifact a device profile needs, how
//! to make it, its expected size, whether it exists, and whether weights + KV cache at the
//! profile's context length fit the profile's memory budget.
//!
//! The choice walks the profile's `[[prefer]]` entry for the model's task: engines in order,
//! and for each engine the precisions in order. The first (engine, precision) pair that an
//! existing artifact serves wins; failing that, the first pair the converter can produce from
//! the model's sources without re-quantising already-quantised weights; failing that, a lossy
//! re-quantisation (said so in the plan); failing that, any existing artifact an engine of the
//! list reads (with a note naming what the profile asked for).

use std::path::{Path, PathBuf};

use serde::Serialize;
use switchyard_core::Manifest;
use switchyard_profiles::{DeviceProfile, Task};

use crate::onnx_variants::OnnxVariant;

/// How an artifact is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Conversion {
    /// llama.cpp's quantizer over the GGUF of role `from`.
    Quantize {
        /// Source artifact role.
        from: String,
        /// Target type (`q4_k_m`, `q8_0`, ...).
        target: String,
        /// The source is already quantised: the result carries both roundings.
        requantize: bool,
    },
    /// GGUF → MLX (mlx-lm layout), quantised blocks mapped onto MLX groups.
    GgufToMlx {
        /// Source artifact role.
        from: String,
        /// Bits of the linear weights (4 or 8).
        bits: u32,
        /// MLX group size.
        group_size: u32,
    },
    /// An ONNX variant (INT8 QDQ or FP16 weights) of the ONNX file of role `from`.
    Onnx {
        /// Source artifact role.
        from: String,
        /// The variant.
        variant: String,
    },
    /// Hugging Face safetensors → GGUF (F16), then llama.cpp's quantizer to `target`.
    HfToGguf {
        /// The safetensors artifact role.
        from: String,
        /// Target type after conversion (`f16`, `q8_0`, ...).
        target: String,
    },
    /// whisper.cpp ggml F16/F32 → a quantised ggml file, as whisper.cpp's `quantize` tool
    /// makes it ([`crate::whisper_quant`]).
    WhisperQuantize {
        /// Source artifact role (`whisper.cpp`).
        from: String,
        /// Target type (`q8_0`).
        target: String,
    },
}

/// One artifact of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedArtifact {
    /// Manifest role it has (or will have): `model` for a source that serves as is,
    /// `gguf.q4_k_m`, `mlx.4bit`, `detector.onnx.fp16`, ...
    pub role: String,
    /// File (or folder, for MLX) inside the model's folder.
    pub path: PathBuf,
    /// `gguf`, `onnx`, `mlx`, `ggml`.
    pub format: String,
    /// Precision as profiles name it (`q4_k_m`, `int8`, `fp16`, `mlx-4bit`, `fp32`).
    pub precision: String,
    /// The profile's engines that read it.
    pub engines: Vec<String>,
    /// How to make it; `None` when it is a source artifact.
    pub conversion: Option<Conversion>,
    /// Size in bytes: the real one when it exists, an estimate otherwise.
    pub bytes: u64,
    /// Whether it is already there (and recorded in the manifest).
    pub exists: bool,
}

/// What one model needs under a profile.
#[derive(Debug, Clone, Serialize)]
pub struct ModelPlan {
    /// Model id.
    pub model: String,
    /// The task the profile's preference was taken from.
    pub task: Option<Task>,
    /// The artifacts (several for multi-file models such as OCR's detector + recogniser).
    pub artifacts: Vec<PlannedArtifact>,
    /// Weight bytes (the artifacts above).
    pub weights_bytes: u64,
    /// KV-cache bytes at the profile's slots × context per slot (LLMs only).
    pub kv_bytes: u64,
    /// Why the choice is not the profile's first wish, or why nothing is planned.
    pub notes: Vec<String>,
}

/// The plan for a profile.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Device profile name.
    pub profile: String,
    /// Per model.
    pub models: Vec<ModelPlan>,
    /// Weights + KV of every planned model.
    pub total_bytes: u64,
    /// The profile's memory budget for weights + KV.
    pub budget_bytes: u64,
    /// `total_bytes <= budget_bytes`.
    pub fits: bool,
}

impl Plan {
    /// The artifacts still to make, with their model.
    pub fn missing(&self) -> impl Iterator<Item = (&ModelPlan, &PlannedArtifact)> {
        self.models.iter().flat_map(|m| {
            m.artifacts
                .iter()
                .filter(|a| !a.exists && a.conversion.is_some())
                .map(move |a| (m, a))
        })
    }
}

/// The profile task a model serves, from its manifest's tasks.
pub fn task_of(manifest: &Manifest) -> Option<Task> {
    let has = |t: &str| manifest.tasks.iter().any(|x| x == t);
    if has("chat") || has("completion") {
        Some(Task::Llm)
    } else if has("embedding") {
        Some(Task::Embedding)
    } else if has("stt") {
        Some(Task::Stt)
    } else if has("tts") {
        Some(Task::Tts)
    } else if has("ocr") {
        Some(Task::Ocr)
    } else if has("vad") {
        Some(Task::Vad)
    } else {
        None
    }
}

/// Plans `profile` for the models in `models_dir` (all, or only `only`).
pub fn plan(device: &DeviceProfile, models_dir: &Path, only: Option<&str>) -> anyhow::Result<Plan> {
    let mut models = Vec::new();
    for manifest in scan(models_dir)? {
        if only.is_some_and(|id| id != manifest.id) {
            continue;
        }
        let Some(task) = task_of(&manifest) else {
            continue; // runtimes (the onnxruntime library) and other non-model folders
        };
        models.push(plan_model(device, &manifest, task));
    }
    if let Some(id) = only {
        if models.is_empty() {
            anyhow::bail!("no model '{id}' in {}", models_dir.display());
        }
    }
    let total_bytes = models.iter().map(|m| m.weights_bytes + m.kv_bytes).sum();
    let budget_bytes = device.memory.budget_mib * 1024 * 1024;
    Ok(Plan {
        profile: device.name.clone(),
        models,
        total_bytes,
        budget_bytes,
        fits: total_bytes <= budget_bytes,
    })
}

/// Manifests of every model folder in `dir`, sorted by id.
pub fn scan(dir: &Path) -> anyhow::Result<Vec<Manifest>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("models directory {}: {e}", dir.display()))?;
    let mut manifests = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden
            || !path
                .join(switchyard_core::manifest::MANIFEST_FILE)
                .is_file()
        {
            continue;
        }
        manifests.push(Manifest::load(&path)?);
    }
    manifests.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(manifests)
}

/// A candidate artifact for one (engine, precision) pair.
struct Candidate {
    artifacts: Vec<PlannedArtifact>,
    /// Lossy re-quantisation of quantised weights.
    lossy: bool,
}

fn plan_model(device: &DeviceProfile, manifest: &Manifest, task: Task) -> ModelPlan {
    let mut plan = ModelPlan {
        model: manifest.id.clone(),
        task: Some(task),
        artifacts: Vec::new(),
        weights_bytes: 0,
        kv_bytes: 0,
        notes: Vec::new(),
    };
    let Some(preference) = device.preference(task) else {
        plan.notes.push(format!(
            "profile {} has no [[prefer]] entry for task {task:?}: not planned",
            device.name
        ));
        return plan;
    };
    let mut pairs = Vec::new();
    for engine in &preference.engines {
        for precision in &preference.precisions {
            pairs.push((engine.as_str(), precision.as_str()));
        }
    }
    let candidates: Vec<(usize, Candidate)> = pairs
        .iter()
        .enumerate()
        .filter_map(|(i, (engine, precision))| {
            candidate(manifest, engine, precision).map(|c| (i, c))
        })
        .collect();
    // The first pair in the profile's order that an artifact serves or that can be made
    // without re-quantising quantised weights; a lossy re-quantisation only when nothing
    // else is possible.
    let chosen = candidates
        .iter()
        .find(|(_, c)| !c.lossy || c.artifacts.iter().all(|a| a.exists))
        .or(candidates.first());
    match chosen {
        Some((index, candidate)) => {
            if *index > 0 {
                let (engine, precision) = pairs[0];
                plan.notes.push(format!(
                    "the profile's first choice is {engine} {precision}; {} serves {}{}",
                    pairs[*index].0,
                    pairs[*index].1,
                    if candidate.artifacts.iter().all(|a| a.exists) {
                        " (already present)"
                    } else {
                        ""
                    }
                ));
            }
            if candidate.lossy {
                plan.notes.push(
                    "re-quantises already-quantised weights (both roundings add up); bring an \
                     f16/f32 source for the best quality"
                        .into(),
                );
            }
            plan.artifacts = candidate.artifacts.clone();
            for a in &mut plan.artifacts {
                a.engines = preference
                    .engines
                    .iter()
                    .filter(|e| family(e) == family(pairs[*index].0))
                    .cloned()
                    .collect();
            }
        }
        None => {
            // Nothing in the profile's lists: fall back to an existing artifact one of its
            // engines reads, if any.
            let fallback = preference.engines.iter().find_map(|engine| {
                existing_for_engine(manifest, engine).map(|a| (engine.clone(), a))
            });
            match fallback {
                Some((engine, artifact)) => {
                    plan.notes.push(format!(
                        "no artifact in the profile's precisions ({}) can be made for {}; \
                         {engine} serves the existing {} artifact",
                        preference
                            .precisions
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        manifest.id,
                        artifact.precision
                    ));
                    plan.artifacts = vec![PlannedArtifact {
                        engines: vec![engine],
                        ..artifact
                    }];
                }
                None => plan.notes.push(format!(
                    "none of the profile's engines ({}) can serve {} ({} format)",
                    preference.engines.join(", "),
                    manifest.id,
                    manifest.format
                )),
            }
        }
    }
    plan.weights_bytes = plan.artifacts.iter().map(|a| a.bytes).sum();
    if task == Task::Llm {
        if let Some(source) = manifest.primary_path() {
            let slots = device.engine.slots;
            let context = device.engine.context_per_slot;
            if let Ok((_, kv)) = switchyard_engine_llamacpp::estimate_bytes(&source, slots, context)
            {
                plan.kv_bytes = kv;
            }
        }
    }
    plan
}

/// `llama.cpp/cuda` → `llama.cpp`.
pub(crate) fn family(engine: &str) -> &str {
    engine.split('/').next().unwrap_or(engine)
}

/// GGUF precision names as profiles write them (`f16` → `fp16`).
fn profile_precision(gguf: &str) -> String {
    match gguf {
        "f16" => "fp16".into(),
        "f32" => "fp32".into(),
        "bf16" => "bf16".into(),
        other => other.into(),
    }
}

/// Bits per weight of a GGUF type, for size estimates.
fn gguf_bits(precision: &str) -> Option<f64> {
    Some(match precision {
        "fp32" | "f32" => 32.0,
        "fp16" | "f16" | "bf16" => 16.0,
        "q8_0" => 8.5,
        "q6_k" => 6.56,
        "q5_k_m" => 5.69,
        "q5_0" => 5.5,
        "q5_1" => 6.0,
        "q4_k_m" => 4.85,
        "q4_0" => 4.5,
        "q4_1" => 5.0,
        _ => return None,
    })
}

fn scaled(bytes: u64, from_bits: f64, to_bits: f64) -> u64 {
    (bytes as f64 * to_bits / from_bits) as u64
}

/// The artifact of `role`, as it stands in the manifest (size, precision, existence).
fn recorded(manifest: &Manifest, role: &str) -> Option<(PathBuf, u64, Option<String>)> {
    let artifact = manifest.artifact(role)?;
    let exists = manifest.resolve(artifact).exists();
    exists.then(|| {
        (
            artifact.path.clone(),
            artifact.size,
            artifact.precision.clone(),
        )
    })
}

fn existing_artifact(
    manifest: &Manifest,
    role: &str,
    format: &str,
    precision: &str,
) -> Option<PlannedArtifact> {
    let (path, bytes, _) = recorded(manifest, role)?;
    Some(PlannedArtifact {
        role: role.to_owned(),
        path,
        format: format.to_owned(),
        precision: precision.to_owned(),
        engines: Vec::new(),
        conversion: None,
        bytes,
        exists: true,
    })
}

/// A planned artifact made by `conversion`, existing when the manifest records `role`.
fn made(
    manifest: &Manifest,
    role: String,
    path: PathBuf,
    format: &str,
    precision: &str,
    conversion: Conversion,
    estimate: u64,
) -> PlannedArtifact {
    let recorded = recorded(manifest, &role);
    PlannedArtifact {
        exists: recorded.is_some(),
        bytes: recorded.as_ref().map_or(estimate, |r| r.1),
        path: recorded.map_or(path, |r| r.0),
        role,
        format: format.to_owned(),
        precision: precision.to_owned(),
        engines: Vec::new(),
        conversion: Some(conversion),
    }
}

/// The precision of a model's source artifact of `role`.
pub(crate) fn source_precision(manifest: &Manifest, role: &str) -> Option<String> {
    let artifact = manifest.artifact(role)?;
    if let Some(p) = &artifact.precision {
        return Some(p.clone());
    }
    let path = manifest.resolve(artifact);
    match manifest.format.as_str() {
        "gguf" => switchyard_engine_llamacpp::inspect_gguf(&path)
            .ok()
            .and_then(|info| info.precision)
            .map(profile_precision),
        "onnx" => onnx_weight_precision(&path),
        _ => None,
    }
}

/// ONNX artifacts of a model (the ones an ONNX engine reads).
pub(crate) fn onnx_roles(manifest: &Manifest) -> Vec<String> {
    manifest
        .artifacts
        .iter()
        .filter(|a| a.path.extension().is_some_and(|e| e == "onnx"))
        .filter(|a| !a.role.contains(".onnx.")) // variants made earlier
        .map(|a| a.role.clone())
        .collect()
}

fn candidate(manifest: &Manifest, engine: &str, precision: &str) -> Option<Candidate> {
    let (family, backend) = engine.split_once('/')?;
    match (family, manifest.format.as_str()) {
        ("llama.cpp", "gguf") => {
            let source = source_precision(manifest, "model")?;
            if source == precision {
                let a = existing_artifact(manifest, "model", "gguf", precision)?;
                return Some(Candidate {
                    artifacts: vec![a],
                    lossy: false,
                });
            }
            let to_bits = gguf_bits(precision)?;
            let from_bits = gguf_bits(&source)?;
            let lossy = from_bits < 16.0;
            if to_bits > from_bits {
                return None; // more bits than the source has adds size, not quality
            }
            let primary = manifest.primary()?;
            let stem = primary.path.file_stem()?.to_string_lossy().into_owned();
            let target = precision.to_owned();
            Some(Candidate {
                artifacts: vec![made(
                    manifest,
                    format!("gguf.{precision}"),
                    PathBuf::from(format!("{stem}.{precision}.gguf")),
                    "gguf",
                    precision,
                    Conversion::Quantize {
                        from: "model".into(),
                        target,
                        requantize: lossy,
                    },
                    scaled(primary.size, from_bits, to_bits),
                )],
                lossy,
            })
        }
        ("llama.cpp", "onnx") if manifest.artifact("source-weights").is_some() => {
            // An encoder shipped as ONNX with its safetensors source: convert the source.
            let to_bits = gguf_bits(precision)?;
            let source = manifest.artifact("source-weights")?;
            Some(Candidate {
                artifacts: vec![made(
                    manifest,
                    format!("gguf.{precision}"),
                    PathBuf::from(format!("{}.{precision}.gguf", manifest.id)),
                    "gguf",
                    precision,
                    Conversion::HfToGguf {
                        from: "source-weights".into(),
                        target: precision.to_owned(),
                    },
                    scaled(source.size, 32.0, to_bits),
                )],
                lossy: false,
            })
        }
        ("mlx", "gguf") => {
            let bits = match precision {
                "mlx-4bit" => 4,
                "mlx-8bit" => 8,
                _ => return None,
            };
            let source = source_precision(manifest, "model")?;
            let primary = manifest.primary()?;
            let from_bits = gguf_bits(&source)?;
            // Q4_0/Q4_1/Q8_0 blocks map onto MLX groups exactly; other types are re-quantised.
            let exact = matches!((bits, source.as_str()), (4, "q4_0" | "q4_1") | (8, "q8_0"))
                || from_bits >= 16.0;
            Some(Candidate {
                artifacts: vec![made(
                    manifest,
                    format!("mlx.{bits}bit"),
                    PathBuf::from(format!("mlx-{bits}bit")),
                    "mlx",
                    precision,
                    Conversion::GgufToMlx {
                        from: "model".into(),
                        bits,
                        group_size: 32,
                    },
                    scaled(primary.size, from_bits, f64::from(bits) + 1.0),
                )],
                lossy: !exact,
            })
        }
        ("onnx" | "tract", "onnx") => {
            let roles = onnx_roles(manifest);
            if roles.is_empty() {
                return None;
            }
            let mut artifacts = Vec::new();
            let mut matched = false;
            for role in roles {
                let source = source_precision(manifest, &role).unwrap_or_else(|| "fp32".into());
                if source == precision {
                    artifacts.push(existing_artifact(manifest, &role, "onnx", precision)?);
                    matched = true;
                    continue;
                }
                if source != "fp32" {
                    // Already below fp32 (e.g. an int8 file of a multi-file model): variants
                    // are made from fp32 weights only, so this file serves as it is.
                    artifacts.push(existing_artifact(manifest, &role, "onnx", &source)?);
                    continue;
                }
                matched = true;
                let variant = match (precision, backend) {
                    ("fp16", _) => OnnxVariant::Fp16,
                    ("int8", "coreml") => OnnxVariant::Int8PerTensorSymmetric,
                    ("int8", _) => OnnxVariant::Int8PerChannel,
                    _ => return None,
                };
                let artifact = manifest.artifact(&role)?;
                let stem = artifact.path.file_stem()?.to_string_lossy().into_owned();
                let estimate = match variant {
                    OnnxVariant::Fp16 => artifact.size / 2,
                    _ => artifact.size / 4,
                };
                artifacts.push(made(
                    manifest,
                    format!("{role}.onnx.{}", variant.name()),
                    PathBuf::from(format!("{stem}.{}.onnx", variant.name())),
                    "onnx",
                    precision,
                    Conversion::Onnx {
                        from: role.clone(),
                        variant: variant.name().to_owned(),
                    },
                    estimate,
                ));
            }
            // INT8 weights are a chosen trade, not a re-quantisation of quantised weights.
            matched.then_some(Candidate {
                artifacts,
                lossy: false,
            })
        }
        ("whisper.cpp", _) => whisper_candidate(manifest, precision),
        _ => None,
    }
}

/// Any existing artifact `engine` reads, whatever its precision.
fn existing_for_engine(manifest: &Manifest, engine: &str) -> Option<PlannedArtifact> {
    let family = family(engine);
    let (role, format) = match (family, manifest.format.as_str()) {
        ("whisper.cpp", _) => return existing_whisper(manifest),
        ("llama.cpp", "gguf") => ("model", "gguf"),
        ("onnx" | "tract", "onnx") => {
            let role = onnx_roles(manifest).into_iter().next()?;
            let precision = source_precision(manifest, &role).unwrap_or_else(|| "fp32".into());
            return existing_artifact(manifest, &role, "onnx", &precision);
        }
        _ => return None,
    };
    let precision = source_precision(manifest, role)?;
    existing_artifact(manifest, role, format, &precision)
}

/// The role of a speech model's whisper.cpp ggml file (converted from CTranslate2 or fetched);
/// its quantised variants are `whisper.cpp.<type>`.
const WHISPER_ROLE: &str = "whisper.cpp";

/// The precision of the ggml file of `role`: the manifest's, else its header's `ftype`, else
/// `fp16` (what the CTranslate2 conversion writes).
fn whisper_precision(manifest: &Manifest, role: &str) -> String {
    let artifact = manifest.artifact(role);
    artifact
        .and_then(|a| a.precision.as_deref().map(profile_precision))
        .or_else(|| {
            let path = manifest.resolve(artifact?);
            let header = crate::whisper_quant::read_header(&path).ok()?;
            header.precision().map(str::to_owned)
        })
        .unwrap_or_else(|| "fp16".to_owned())
}

/// whisper.cpp at `precision`: the ggml file itself when it has that precision, else its
/// `whisper.cpp.<type>` variant, quantised from an f16/f32 file (never from an already
/// quantised one) or found already made.
fn whisper_candidate(manifest: &Manifest, precision: &str) -> Option<Candidate> {
    let have = whisper_precision(manifest, WHISPER_ROLE);
    if have == precision {
        if let Some(a) = existing_artifact(manifest, WHISPER_ROLE, "ggml", precision) {
            return Some(Candidate {
                artifacts: vec![a],
                lossy: false,
            });
        }
    }
    let target = crate::whisper_quant::WhisperQuantType::parse(precision).ok()?;
    let role = format!("{WHISPER_ROLE}.{}", target.name());
    let source = manifest.artifact(WHISPER_ROLE)?;
    let from_bits = gguf_bits(&have).filter(|bits| *bits >= 16.0);
    let Some(from_bits) = from_bits.filter(|_| manifest.resolve(source).exists()) else {
        // Nothing to quantise from (the file is quantised already, or gone): a variant made
        // earlier still serves.
        let variant = existing_artifact(manifest, &role, "ggml", precision)?;
        return Some(Candidate {
            artifacts: vec![variant],
            lossy: false,
        });
    };
    let stem = source.path.file_stem()?.to_string_lossy().into_owned();
    Some(Candidate {
        artifacts: vec![made(
            manifest,
            role,
            PathBuf::from(format!("{stem}.{}.bin", target.name())),
            "ggml",
            precision,
            Conversion::WhisperQuantize {
                from: WHISPER_ROLE.to_owned(),
                target: target.name().to_owned(),
            },
            scaled(source.size, from_bits, gguf_bits(precision)?),
        )],
        lossy: false,
    })
}

/// The whisper.cpp file of a speech model, whatever its precision: the ggml file itself, or
/// when it is gone, a variant made from it.
fn existing_whisper(manifest: &Manifest) -> Option<PlannedArtifact> {
    let precision = whisper_precision(manifest, WHISPER_ROLE);
    existing_artifact(manifest, WHISPER_ROLE, "ggml", &precision).or_else(|| {
        let prefix = format!("{WHISPER_ROLE}.");
        manifest
            .artifacts
            .iter()
            .filter(|a| a.role.starts_with(&prefix))
            .find_map(|a| {
                let precision = whisper_precision(manifest, &a.role);
                existing_artifact(manifest, &a.role, "ggml", &precision)
            })
    })
}

/// `int8` when most initializer bytes of the ONNX file are 8-bit integers, `fp16` when they
/// are float16, else `fp32`.
fn onnx_weight_precision(path: &Path) -> Option<String> {
    // TensorProto.DataType: 1 FLOAT, 2 UINT8, 3 INT8, 10 FLOAT16, 11 DOUBLE.
    let model = crate::onnx_variants::read_model_structure(path).ok()?;
    let graph = model.graph?;
    let mut bytes_by_type = std::collections::HashMap::<i32, usize>::new();
    for tensor in &graph.initializer {
        let elements: i64 = tensor.dims.iter().product();
        let width = match tensor.data_type {
            2 | 3 => 1,
            10 => 2,
            11 => 8,
            _ => 4,
        };
        *bytes_by_type.entry(tensor.data_type).or_default() +=
            usize::try_from(elements.max(0)).unwrap_or(0) * width;
    }
    let (dominant, _) = bytes_by_type.into_iter().max_by_key(|(_, b)| *b)?;
    Some(
        match dominant {
            2 | 3 => "int8",
            10 => "fp16",
            _ => "fp32",
        }
        .to_owned(),
    )
}
