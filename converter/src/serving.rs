//! Which artifact the gateway loads for each of a model's files under a device profile.
//!
//! `plan` decides what a profile *should* have; this module picks, among the artifacts that
//! are already there, the one the engine running the model should load: the profile's
//! `[[prefer]]` precisions for the model's task, best first, over the source file and the
//! variants the converter recorded for it (`<role>.onnx.<variant>` for ONNX files,
//! `gguf.<type>` for a GGUF). Nothing is converted here; a missing variant means the source
//! file serves, and the reason says so (with the command that would make the variant).

use serde::Serialize;
use switchyard_core::{Artifact, Manifest};
use switchyard_profiles::DeviceProfile;

use crate::onnx_variants::OnnxVariant;
use crate::plan::{family, onnx_roles, source_precision, task_of};

/// The artifact chosen for one file a model's engine loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedArtifact {
    /// The role the engine asks for (`model`, `detector`, `recognizer`, ...).
    pub role: String,
    /// The manifest role of the file that serves it: the same role (the source file) or a
    /// converter variant such as `detector.onnx.fp16` or `gguf.q4_k_m`.
    pub chosen: String,
    /// The chosen file, relative to the model's folder.
    pub path: String,
    /// Its precision as profiles name it (`fp32`, `fp16`, `int8`, `q4_k_m`, ...).
    pub precision: String,
    /// Why this one: the profile's wish it meets, or why the source serves.
    pub reason: String,
}

/// The files the engine family `family` (`llama.cpp`, `onnx`, `tract`) loads for `manifest`
/// under `device`, each with the artifact chosen for it. Empty for formats with nothing to
/// choose (Whisper's GGML file, runtimes).
pub fn choose(
    device: &DeviceProfile,
    manifest: &Manifest,
    family_name: &str,
) -> Vec<ServedArtifact> {
    let roles: Vec<String> = match (family_name, manifest.format.as_str()) {
        ("llama.cpp", "gguf") => vec!["model".to_owned()],
        ("onnx" | "tract", "onnx") => onnx_roles(manifest),
        ("whisper.cpp", _) if manifest.artifact(WHISPER_ROLE).is_some() => {
            vec![WHISPER_ROLE.to_owned()]
        }
        ("llama.cpp", "onnx") if manifest.artifact(DERIVED_GGUF_ROLE).is_some() => {
            vec![DERIVED_GGUF_ROLE.to_owned()]
        }
        _ => return Vec::new(),
    };
    let preference = task_of(manifest).and_then(|task| device.preference(task));
    // The backend of the first engine of this family the profile lists picks between the
    // INT8 layouts: symmetric per-tensor for CoreML, per-channel elsewhere.
    let backend = preference
        .and_then(|p| p.engines.iter().find(|e| family(e) == family_name))
        .and_then(|e| e.split_once('/').map(|(_, b)| b.to_owned()))
        .unwrap_or_else(|| "cpu".to_owned());
    roles
        .iter()
        .filter_map(|role| {
            let precisions: Vec<&str> = preference
                .map(|p| p.precisions.iter().map(|x| x.as_str()).collect())
                .unwrap_or_default();
            choose_role(manifest, role, &precisions, &backend, &device.name)
        })
        .collect()
}

/// The whisper.cpp (GGML) file of a speech model; its variants are `whisper.cpp.<type>`.
const WHISPER_ROLE: &str = "whisper.cpp";

/// The GGUF that `switchyard models fetch` derives for an ONNX embedding model from its f32
/// source weights, which llama.cpp runs when the profile puts it first.
pub const DERIVED_GGUF_ROLE: &str = "llama.cpp";

/// One candidate file for a role.
struct Candidate<'a> {
    artifact: &'a Artifact,
    precision: String,
    /// The ONNX variant, for variants.
    variant: Option<OnnxVariant>,
}

fn choose_role(
    manifest: &Manifest,
    role: &str,
    precisions: &[&str],
    backend: &str,
    profile: &str,
) -> Option<ServedArtifact> {
    let source = manifest.artifact(role)?;
    let variants = variants_of(manifest, role);
    let source_precision = || {
        source
            .precision
            .clone()
            .or_else(|| source_precision(manifest, role))
            .unwrap_or_else(|| {
                match (manifest.format.as_str(), role) {
                    ("onnx", _) => "fp32",
                    // The converter writes Whisper's GGML file in F16.
                    (_, WHISPER_ROLE) => "fp16",
                    _ => "unknown",
                }
                .to_owned()
            })
    };
    let served = |c: &Candidate<'_>, reason: String| ServedArtifact {
        role: role.to_owned(),
        chosen: c.artifact.role.clone(),
        path: c.artifact.path.display().to_string(),
        precision: c.precision.clone(),
        reason,
    };
    if variants.is_empty() {
        // Nothing to choose: no need to read the source to learn its precision.
        let precision = source.precision.clone().unwrap_or_else(source_precision);
        let reason = match precisions.first() {
            _ if role == DERIVED_GGUF_ROLE => {
                format!("GGUF derived by `switchyard models fetch` ({precision})")
            }
            Some(first) if *first != precision => format!(
                "source file ({precision}); profile {profile} prefers {first}: `switchyard-convert plan --profile {profile} --model {}` says how to make it",
                manifest.id
            ),
            _ => format!("source file ({precision})"),
        };
        return Some(served(
            &Candidate {
                artifact: source,
                precision,
                variant: None,
            },
            reason,
        ));
    }
    // A box may ship only the variants: a source whose file is gone is no candidate.
    let mut candidates = Vec::new();
    if manifest.resolve(source).exists() {
        candidates.push(Candidate {
            artifact: source,
            precision: source_precision(),
            variant: None,
        });
    }
    candidates.extend(variants);
    for (rank, wanted) in precisions.iter().enumerate() {
        let mut matching: Vec<&Candidate<'_>> = candidates
            .iter()
            .filter(|c| c.precision == *wanted)
            .collect();
        // Two INT8 layouts of one file: the backend's own first.
        let preferred = if backend == "coreml" {
            OnnxVariant::Int8PerTensorSymmetric
        } else {
            OnnxVariant::Int8PerChannel
        };
        matching.sort_by_key(|c| c.variant.is_some_and(|v| v != preferred));
        if let Some(best) = matching.first() {
            let kind = if best.variant.is_some() || best.artifact.role != role {
                "converted variant"
            } else {
                "source file"
            };
            let reason = if rank == 0 {
                format!("{kind}; profile {profile}'s first precision is {wanted}")
            } else {
                format!(
                    "{kind}; profile {profile} prefers {} but none is present, {wanted} is its next choice",
                    precisions[..rank].join(", ")
                )
            };
            return Some(served(best, reason));
        }
    }
    let first = candidates.first()?;
    let kind = if first.artifact.role == role {
        "source file"
    } else {
        "converted variant"
    };
    Some(served(
        first,
        format!(
            "{kind} ({}): none of profile {profile}'s precisions ({}) is present",
            first.precision,
            precisions.join(", ")
        ),
    ))
}

/// The converter's variants of `role` that are on disk, with their precisions.
fn variants_of<'a>(manifest: &'a Manifest, role: &str) -> Vec<Candidate<'a>> {
    let onnx_prefix = format!("{role}.onnx.");
    manifest
        .artifacts
        .iter()
        .filter_map(|a| {
            let (precision, variant) = if let Some(name) = a.role.strip_prefix(&onnx_prefix) {
                let variant = OnnxVariant::parse(name).ok()?;
                let precision = a.precision.clone().unwrap_or_else(|| match variant {
                    OnnxVariant::Fp16 => "fp16".to_owned(),
                    _ => "int8".to_owned(),
                });
                (precision, Some(variant))
            } else if role == WHISPER_ROLE {
                let target = a.role.strip_prefix("whisper.cpp.")?;
                (
                    a.precision.clone().unwrap_or_else(|| target.to_owned()),
                    None,
                )
            } else if role == "model" && manifest.format == "gguf" {
                let target = a.role.strip_prefix("gguf.")?;
                (
                    a.precision.clone().unwrap_or_else(|| target.to_owned()),
                    None,
                )
            } else {
                return None;
            };
            manifest.resolve(a).is_file().then_some(Candidate {
                artifact: a,
                precision,
                variant,
            })
        })
        .collect()
}

/// `manifest` as the engine should see it: each chosen variant recorded under the role the
/// engine loads (with the variant's own size and sha256, so load-time verification checks
/// the file actually loaded). Other artifacts are unchanged.
pub fn serving_manifest(manifest: &Manifest, served: &[ServedArtifact]) -> Manifest {
    let mut serving = manifest.clone();
    for choice in served.iter().filter(|c| c.chosen != c.role) {
        if let Some(variant) = manifest.artifact(&choice.chosen) {
            serving.set_artifact(Artifact {
                role: choice.role.clone(),
                ..variant.clone()
            });
        }
    }
    serving
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use switchyard_core::manifest::Source;
    use switchyard_profiles::Precision;

    fn artifact(role: &str, path: &str, precision: Option<&str>) -> Artifact {
        Artifact {
            role: role.into(),
            path: PathBuf::from(path),
            size: 1,
            sha256: "00".repeat(32),
            format: Some("onnx".into()),
            precision: precision.map(Into::into),
            engines: Vec::new(),
            source_sha256: None,
            converter: None,
            settings: None,
        }
    }

    fn ocr_manifest(dir: &std::path::Path, variants: &[(&str, &str, &str)]) -> Manifest {
        let mut artifacts = vec![
            artifact("detector", "det.onnx", Some("fp32")),
            artifact("recognizer", "rec.onnx", Some("fp32")),
        ];
        for (role, path, precision) in variants {
            artifacts.push(artifact(role, path, Some(precision)));
        }
        for a in &artifacts {
            std::fs::write(dir.join(&a.path), b"x").unwrap();
        }
        Manifest {
            schema: Manifest::SCHEMA,
            id: "ocr".into(),
            tasks: vec!["ocr".into()],
            format: "onnx".into(),
            artifacts,
            source: Source {
                kind: "local".into(),
                packages: Vec::new(),
                original_path: None,
            },
            license: None,
            dir: dir.to_path_buf(),
        }
    }

    fn profile(name: &str) -> DeviceProfile {
        switchyard_profiles::resolve(name).unwrap().device
    }

    #[test]
    fn the_profiles_first_present_precision_wins() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = ocr_manifest(
            dir.path(),
            &[
                ("detector.onnx.fp16", "det.fp16.onnx", "fp16"),
                (
                    "detector.onnx.int8-qdq-per-channel",
                    "det.int8c.onnx",
                    "int8",
                ),
                (
                    "detector.onnx.int8-qdq-per-tensor",
                    "det.int8t.onnx",
                    "int8",
                ),
            ],
        );
        // cpu-x86 asks fp32 first: the source serves.
        let cpu = choose(&profile("cpu-x86"), &manifest, "tract");
        assert_eq!(cpu[0].chosen, "detector");
        assert_eq!(cpu[0].precision, "fp32");
        // Jetson Orin Nano asks int8 first, TensorRT: the per-channel layout.
        let nano = choose(&profile("jetson-orin-nano-8gb"), &manifest, "onnx");
        assert_eq!(nano[0].chosen, "detector.onnx.int8-qdq-per-channel");
        assert!(
            nano[0].reason.contains("first precision is int8"),
            "{}",
            nano[0].reason
        );
        // The recognizer has no variant: its source serves, and the reason says what to build.
        assert_eq!(nano[1].chosen, "recognizer");
        assert!(
            nano[1].reason.contains("switchyard-convert plan"),
            "{}",
            nano[1].reason
        );
        // Mac: fp16 first.
        let mac = choose(&profile("mac-m-series-16gb"), &manifest, "onnx");
        assert_eq!(mac[0].chosen, "detector.onnx.fp16");
        let serving = serving_manifest(&manifest, &mac);
        assert_eq!(
            serving.artifact("detector").unwrap().path,
            PathBuf::from("det.fp16.onnx")
        );
        assert_eq!(
            serving.artifact("recognizer").unwrap().path,
            PathBuf::from("rec.onnx")
        );
    }

    #[test]
    fn whisper_takes_its_q8_0_file_when_the_profile_asks() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = ocr_manifest(dir.path(), &[]);
        manifest.tasks = vec!["stt".into()];
        manifest.format = "ctranslate2".into();
        manifest.artifacts = vec![
            artifact("whisper.cpp", "ggml-model.bin", None),
            artifact("whisper.cpp.q8_0", "ggml-model.q8_0.bin", Some("q8_0")),
        ];
        for a in &manifest.artifacts {
            std::fs::write(dir.path().join(&a.path), b"x").unwrap();
        }
        let cpu = choose(&profile("cpu-x86"), &manifest, "whisper.cpp");
        assert_eq!(cpu[0].chosen, "whisper.cpp.q8_0", "{cpu:?}");
        // Jetson asks fp16 first: the converter's F16 file.
        let jetson = choose(&profile("jetson-agx-orin-64gb"), &manifest, "whisper.cpp");
        assert_eq!(jetson[0].chosen, "whisper.cpp");
        assert_eq!(jetson[0].precision, "fp16");
    }

    #[test]
    fn coreml_takes_the_per_tensor_int8_layout_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = ocr_manifest(
            dir.path(),
            &[
                ("detector.onnx.fp16", "det.fp16.onnx", "fp16"),
                (
                    "detector.onnx.int8-qdq-per-channel",
                    "det.int8c.onnx",
                    "int8",
                ),
                (
                    "detector.onnx.int8-qdq-per-tensor",
                    "det.int8t.onnx",
                    "int8",
                ),
            ],
        );
        let mut device = profile("mac-m-series-16gb");
        for p in &mut device.prefer {
            p.precisions = vec![Precision::Int8, Precision::Fp32];
        }
        let mac = choose(&device, &manifest, "onnx");
        assert_eq!(mac[0].chosen, "detector.onnx.int8-qdq-per-tensor");
        // A recorded variant whose file is gone is not offered.
        std::fs::remove_file(dir.path().join("det.int8t.onnx")).unwrap();
        std::fs::remove_file(dir.path().join("det.int8c.onnx")).unwrap();
        let mac = choose(&device, &manifest, "onnx");
        assert_eq!(mac[0].chosen, "detector");
        assert!(mac[0].reason.contains("next choice"), "{}", mac[0].reason);
    }
}
