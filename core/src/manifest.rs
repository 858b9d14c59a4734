//! `manifest.json`: the description of one model in the models directory.
//!
//! Every model (fetched sample or operator-added file) lives in `<models_dir>/<id>/` with a
//! `manifest.json`. Artifact paths are relative to that folder unless absolute.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of a model's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file (or, for multi-file formats such as MLX, one folder) of a model.
///
/// Schema 1 had only `role`, `path`, `size` and `sha256`; schema 2 adds what the converter
/// records about each artifact it produced. The added fields are optional, so a schema-1
/// manifest reads unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// What the file is for (`model`, `tokenizer`, `whisper.cpp`, `gguf.q8_0`, ...).
    pub role: String,
    /// Path, relative to the model's folder or absolute.
    pub path: PathBuf,
    /// Size in bytes (for a folder: the sum of its files).
    pub size: u64,
    /// Lower-case hex sha256 of the file (for a folder: of its files' `sha256  name` lines,
    /// sorted by name, as [`folder_sha256`](crate::manifest) documents).
    pub sha256: String,
    /// File format: `gguf`, `onnx`, `mlx`, `ggml`, `safetensors`, `json`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Precision or quantisation: `f32`, `f16`, `q8_0`, `q4_k_m`, `int8`, `mlx-4bit`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// The engines and execution providers this artifact is for, as device profiles name
    /// them (`llama.cpp/cpu`, `onnx/tensorrt`, `mlx/metal`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<String>,
    /// sha256 of the artifact this one was converted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_sha256: Option<String>,
    /// `switchyard-convert <version>` that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converter: Option<String>,
    /// The conversion's settings (quantisation type, group size, build options, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// `pypi` for the pinned sample wheels, `local` for operator-added files.
    pub kind: String,
    /// Package names and versions (`name==version`), for `pypi`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// The original file, for `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_path: Option<PathBuf>,
}

/// A model's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest schema version.
    pub schema: u32,
    /// Stable, short model id used in the API (`smollm2-135m-instruct`).
    pub id: String,
    /// Tasks the model serves (`chat`, `completion`, ...).
    pub tasks: Vec<String>,
    /// Primary artifact format (`gguf`, `onnx`, ...).
    pub format: String,
    /// The files; the one with role `model` is the primary artifact.
    pub artifacts: Vec<Artifact>,
    /// Provenance.
    pub source: Source,
    /// License of the weights, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The folder the manifest was read from (not serialized).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

impl Manifest {
    /// Current schema version (documented in `docs/MANIFEST.md`, JSON Schema in
    /// `core/schema/manifest.schema.json`).
    pub const SCHEMA: u32 = 2;

    /// Reads `<dir>/manifest.json`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Io {
            path: path.clone(),
            source,
        })?;
        let mut manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| ManifestError::Parse {
                path: path.clone(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            })?;
        if manifest.schema == 0 || manifest.schema > Manifest::SCHEMA {
            return Err(ManifestError::Parse {
                path,
                line: 1,
                column: 1,
                message: format!(
                    "schema {} is not one this Switchyard reads (1..={}); upgrade Switchyard",
                    manifest.schema,
                    Manifest::SCHEMA
                ),
            });
        }
        manifest.dir = dir.to_path_buf();
        Ok(manifest)
    }

    /// The primary artifact (role `model`), if any.
    pub fn primary(&self) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.role == "model")
    }

    /// Absolute path of an artifact.
    pub fn resolve(&self, artifact: &Artifact) -> PathBuf {
        if artifact.path.is_absolute() {
            artifact.path.clone()
        } else {
            self.dir.join(&artifact.path)
        }
    }

    /// The artifact with `role`, if any.
    pub fn artifact(&self, role: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.role == role)
    }

    /// Adds `artifact`, replacing the one with the same role.
    pub fn set_artifact(&mut self, artifact: Artifact) {
        match self.artifacts.iter_mut().find(|a| a.role == artifact.role) {
            Some(existing) => *existing = artifact,
            None => self.artifacts.push(artifact),
        }
    }

    /// Writes `<dir>/manifest.json` (pretty, stable field order) atomically: a temporary file
    /// in the same folder, flushed, then renamed over the old one, so a reader never sees half
    /// a manifest.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        let tmp = dir.join(format!(".{MANIFEST_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text)?;
        if let Err(e) = std::fs::File::open(&tmp).and_then(|f| f.sync_all()) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, dir.join(MANIFEST_FILE)).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Checks that every artifact exists with its recorded size and, with `deep`, its sha256.
    /// The error names the file and what differs.
    pub fn verify(&self, deep: bool) -> Result<(), String> {
        self.artifacts
            .iter()
            .try_for_each(|artifact| verify_artifact(&self.resolve(artifact), artifact, deep))
    }

    /// Absolute path of the primary artifact.
    pub fn primary_path(&self) -> Option<PathBuf> {
        self.primary().map(|a| self.resolve(a))
    }
}

/// Checks one artifact at `path` against its record: size always, sha256 with `deep`.
pub fn verify_artifact(path: &Path, artifact: &Artifact, deep: bool) -> Result<(), String> {
    let (size, sha256) = if path.is_dir() {
        if !deep {
            return Ok(());
        }
        folder_digest(path).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() != artifact.size {
            return Err(format!(
                "{}: size {} differs from the manifest's {}",
                path.display(),
                meta.len(),
                artifact.size
            ));
        }
        if !deep {
            return Ok(());
        }
        let sha = sha256_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
        (meta.len(), sha)
    };
    if size != artifact.size {
        return Err(format!(
            "{}: size {size} differs from the manifest's {}",
            path.display(),
            artifact.size
        ));
    }
    if sha256 != artifact.sha256 {
        return Err(format!(
            "{}: sha256 {sha256} differs from the manifest's {} (the file changed or is corrupt; \
             fetch or convert it again)",
            path.display(),
            artifact.sha256
        ));
    }
    Ok(())
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Total size and digest of a folder artifact (e.g. an MLX model folder): the sha256 of the
/// text made of one `<sha256>  <relative path>\n` line per file, sorted by path (the format
/// of `sha256sum`), so `cd DIR && find . -type f | sort | xargs sha256sum` can check it.
pub fn folder_digest(dir: &Path) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut total = 0u64;
    let mut listing = String::new();
    for relative in files {
        let path = dir.join(&relative);
        total += std::fs::metadata(&path)?.len();
        listing.push_str(&sha256_file(&path)?);
        listing.push_str("  ");
        listing.push_str(&relative);
        listing.push('\n');
    }
    Ok((total, hex::encode(Sha256::digest(listing.as_bytes()))))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_files(root, &path, out)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("switchyard-manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn manifest(dir: &Path, artifacts: Vec<Artifact>) -> Manifest {
        Manifest {
            schema: Manifest::SCHEMA,
            id: "m".into(),
            tasks: vec!["chat".into()],
            format: "gguf".into(),
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

    #[test]
    fn verify_catches_changed_bytes_and_sizes() {
        let dir = scratch("verify");
        std::fs::write(dir.join("w.bin"), b"weights").unwrap();
        let artifact = Artifact {
            role: "model".into(),
            path: "w.bin".into(),
            size: 7,
            sha256: sha256_file(&dir.join("w.bin")).unwrap(),
            ..Artifact::default()
        };
        let m = manifest(&dir, vec![artifact]);
        m.verify(true).unwrap();
        std::fs::write(dir.join("w.bin"), b"weightz").unwrap();
        m.verify(false).unwrap(); // same size: only the deep check sees it
        let err = m.verify(true).unwrap_err();
        assert!(err.contains("w.bin") && err.contains("sha256"), "{err}");
        std::fs::write(dir.join("w.bin"), b"short").unwrap();
        assert!(m.verify(false).unwrap_err().contains("size 5"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn folder_artifacts_are_checked_by_digest() {
        let dir = scratch("folder");
        std::fs::create_dir_all(dir.join("mlx/sub")).unwrap();
        std::fs::write(dir.join("mlx/config.json"), b"{}").unwrap();
        std::fs::write(dir.join("mlx/sub/w.safetensors"), b"abc").unwrap();
        let (size, sha256) = folder_digest(&dir.join("mlx")).unwrap();
        assert_eq!(size, 5);
        let m = manifest(
            &dir,
            vec![Artifact {
                role: "mlx.4bit".into(),
                path: "mlx".into(),
                size,
                sha256,
                format: Some("mlx".into()),
                ..Artifact::default()
            }],
        );
        m.verify(true).unwrap();
        std::fs::write(dir.join("mlx/sub/w.safetensors"), b"abd").unwrap();
        assert!(m.verify(true).unwrap_err().contains("sha256"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn save_is_atomic_and_round_trips_schema_2_fields() {
        let dir = scratch("save");
        let mut m = manifest(&dir, Vec::new());
        m.set_artifact(Artifact {
            role: "gguf.q8_0".into(),
            path: "m.q8_0.gguf".into(),
            size: 1,
            sha256: "00".into(),
            format: Some("gguf".into()),
            precision: Some("q8_0".into()),
            engines: vec!["llama.cpp/cpu".into()],
            source_sha256: Some("11".into()),
            converter: Some("switchyard-convert 0.1.0".into()),
            settings: Some(serde_json::json!({"type": "q8_0"})),
        });
        m.save(&dir).unwrap();
        let back = Manifest::load(&dir).unwrap();
        assert_eq!(back.artifacts, m.artifacts);
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != MANIFEST_FILE)
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_newer_schema_is_refused_clearly() {
        let dir = scratch("schema");
        let mut m = manifest(&dir, Vec::new());
        m.schema = Manifest::SCHEMA + 1;
        m.save(&dir).unwrap();
        let err = Manifest::load(&dir).unwrap_err().to_string();
        assert!(err.contains("schema 3") && err.contains("upgrade"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
