//! `switchyard models add PATH [--id ID]`: register an operator's own model file in place.
//! The file is checked (it must parse as a format an engine reads), hashed, and described by a
//! manifest in `<models_dir>/<id>/` that points at it, so it is served like the samples.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use switchyard_core::manifest::Source;
use switchyard_core::{Artifact, Manifest};

use super::{sha256_file, write_manifest};

/// Whether `id` is a valid model id: lower-case letters, digits, `.`, `_`, `-`; 1–64 chars,
/// starting with a letter or digit.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// A model id derived from a file name: `My_Model.Q4_K_M.gguf` → `my_model.q4_k_m`.
pub fn id_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Registers `file` as model `id` (derived from the file name when `None`).
pub fn add(models_dir: &Path, file: &Path, id: Option<&str>) -> anyhow::Result<Manifest> {
    let file: PathBuf = file
        .canonicalize()
        .with_context(|| format!("{}: cannot open the model file", file.display()))?;
    if !file.is_file() {
        bail!("{}: not a regular file", file.display());
    }
    let id = id.map(str::to_owned).unwrap_or_else(|| id_from_path(&file));
    if !valid_id(&id) {
        bail!("'{id}' is not a valid model id (lower-case letters, digits, '.', '_', '-'; at most 64); pass --id");
    }
    let inspection = switchyard_engines::inspect(&file).map_err(anyhow::Error::msg)?;
    let target = models_dir.join(&id);
    if target
        .join(switchyard_core::manifest::MANIFEST_FILE)
        .exists()
    {
        bail!(
            "a model with id '{id}' already exists in {}; choose another --id",
            models_dir.display()
        );
    }
    let size = std::fs::metadata(&file)?.len();
    let sha256 = sha256_file(&file)?;
    let manifest = Manifest {
        schema: Manifest::SCHEMA,
        id: id.clone(),
        tasks: inspection.tasks,
        format: inspection.format,
        artifacts: vec![Artifact {
            role: "model".into(),
            path: file.clone(),
            size,
            sha256,
            ..Default::default()
        }],
        source: Source {
            kind: "local".into(),
            packages: Vec::new(),
            original_path: Some(file),
        },
        license: inspection.license,
        dir: target.clone(),
    };
    std::fs::create_dir_all(models_dir)?;
    let staged = tempfile::Builder::new()
        .prefix(&format!(".add-{id}-"))
        .tempdir_in(models_dir)?;
    write_manifest(staged.path(), &manifest)?;
    std::fs::rename(staged.path(), &target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("smollm2-135m-instruct"));
        assert!(!valid_id("Upper"));
        assert!(!valid_id("-lead"));
        assert!(!valid_id(""));
        assert!(!valid_id("a/b"));
        assert_eq!(
            id_from_path(Path::new("/x/My Model.Q4_K_M.gguf")),
            "my-model.q4_k_m"
        );
    }

    #[test]
    fn rejects_non_model_files_and_bad_ids() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("notes.gguf");
        std::fs::write(&junk, b"this is not a model").unwrap();
        let err = add(&dir.path().join("models"), &junk, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unrecognised model format"), "{err}");
        let fake = dir.path().join("fake.gguf");
        std::fs::write(&fake, b"GGUF\x03\x00\x00\x00garbage").unwrap();
        let err = add(&dir.path().join("models"), &fake, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid GGUF"), "{err}");
        let err = add(&dir.path().join("models"), &fake, Some("Bad Id"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a valid model id"), "{err}");
        let err = add(
            &dir.path().join("models"),
            &dir.path().join("missing.gguf"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cannot open"), "{err}");
        assert!(super::super::scan(&dir.path().join("models")).is_empty());
    }
}
