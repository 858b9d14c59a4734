//! `plan` and `build` for every shipped device profile against the sample models: after a
//! build nothing is missing, every artifact built is recorded with its provenance and
//! verifies against its sha256, and a second build has nothing to do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use switchyard_converter::plan::plan;
use switchyard_core::Manifest;

fn models_dir() -> PathBuf {
    switchyard_converter::profile_cli::default_models_dir()
}

fn fetched() -> bool {
    let ok = models_dir()
        .join("smollm2-135m-instruct/manifest.json")
        .is_file();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "FAILED: sample models not found under {} (run `switchyard models fetch`)",
            models_dir().display()
        );
        eprintln!("SKIPPED: sample models not fetched");
    }
    ok
}

#[test]
fn every_shipped_profile_plans_and_builds() {
    if !fetched() {
        return;
    }
    let dir = models_dir();
    for name in switchyard_profiles::builtin_names() {
        let Ok(profile) = switchyard_profiles::resolve(name) else {
            continue; // policy-only names
        };
        let device = &profile.device;
        let before = plan(device, &dir, None).unwrap();
        assert!(
            before.fits,
            "{name}: the sample models should fit its budget"
        );
        for model in &before.models {
            assert!(
                !model.artifacts.is_empty(),
                "{name}: nothing planned for {}: {:?}",
                model.model,
                model.notes
            );
        }
        let built = switchyard_converter::build::build(&before, &dir, 2, &mut |_, _| {}).unwrap();
        let after = plan(device, &dir, None).unwrap();
        assert_eq!(
            after.missing().count(),
            0,
            "{name}: still missing after build"
        );
        for b in &built {
            let manifest = Manifest::load(&dir.join(&b.model)).unwrap();
            let artifact = manifest.artifact(&b.role).unwrap();
            assert_eq!(manifest.schema, Manifest::SCHEMA);
            assert!(artifact
                .converter
                .as_deref()
                .unwrap()
                .starts_with("switchyard-convert "));
            assert!(artifact.source_sha256.is_some() && artifact.settings.is_some());
            assert!(!artifact.engines.is_empty() && artifact.precision.is_some());
            manifest.verify(true).unwrap();
            eprintln!(
                "{name}: built {} {} ({} bytes from {} in {:.1} s)",
                b.model, b.role, b.bytes, b.source_bytes, b.seconds
            );
        }
        // Idempotent: a second build has nothing to do.
        let again = switchyard_converter::build::build(&after, &dir, 2, &mut |_, _| {}).unwrap();
        assert!(again.is_empty(), "{name}: second build made {again:?}");
    }
}

#[test]
fn an_unknown_model_is_a_clear_error() {
    if !fetched() {
        return;
    }
    let profile = switchyard_profiles::resolve("cpu-x86").unwrap();
    let err = plan(&profile.device, &models_dir(), Some("no-such-model"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no model 'no-such-model'"), "{err}");
}
