//! `manifest.json`: the description of one model in the models directory.
//!
//! Every model (fetched sample or operator-added file) lives in `<models_dir>/<id>/` with a
//! `manifest.json`. Artifact paths are relative to that folder unless absolute.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of a model's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// What the file is for (`model`, `tokenizer`, ...).
    pub role: String,
    /// Path, relative to the model's folder or absolute.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
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
    /// Current schema version.
    pub const SCHEMA: u32 = 1;

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

    /// Absolute path of the primary artifact.
    pub fn primary_path(&self) -> Option<PathBuf> {
        self.primary().map(|a| self.resolve(a))
    }
}
