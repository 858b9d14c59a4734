//! Resolving device + policy by name and by path, and `profile check`.

use std::fs;
use std::path::Path;

use switchyard_profiles::{check_file, resolve, Origin, ProfileError, Summary};

const NANO: &str = include_str!("../devices/jetson-orin-nano-8gb.toml");
const POLICY: &str = include_str!("../policies/default.toml");

fn write(dir: &Path, rel: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    let parent = path.parent().unwrap_or(dir);
    fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

#[test]
fn resolve_by_path_with_a_relative_policy_path() {
    let dir = tempfile::tempdir().unwrap();
    let policy = POLICY.replace("name = \"default\"", "name = \"site\"");
    let policy_path = write(dir.path(), "policies/site.toml", &policy);
    let device = NANO.replace("policy = \"default\"", "policy = \"../policies/site.toml\"");
    let device_path = write(dir.path(), "devices/box.toml", &device);

    let p = resolve(device_path.to_str().unwrap()).unwrap();
    assert_eq!(p.device.name, "jetson-orin-nano-8gb");
    assert_eq!(p.policy.name, "site");
    assert_eq!(p.origin[0], Origin::File(device_path.clone()));
    let got = p.origin[1].path().unwrap();
    assert_eq!(
        got.canonicalize().unwrap(),
        policy_path.canonicalize().unwrap()
    );
}

#[test]
fn resolve_by_path_with_a_builtin_policy_name() {
    let dir = tempfile::tempdir().unwrap();
    let device = NANO.replace("policy = \"default\"", "policy = \"airgap\"");
    let path = write(dir.path(), "box.toml", &device);
    let p = resolve(path.to_str().unwrap()).unwrap();
    assert_eq!(p.policy.name, "airgap");
    assert_eq!(
        p.origin[1],
        Origin::Builtin("builtin:policies/airgap.toml".into())
    );
}

#[test]
fn bad_policy_reference_points_at_the_device_policy_line() {
    let dir = tempfile::tempdir().unwrap();
    let device = NANO.replace("policy = \"default\"", "policy = \"missing.toml\"");
    let path = write(dir.path(), "box.toml", &device);
    let line = device
        .lines()
        .position(|l| l.starts_with("policy ="))
        .unwrap()
        + 1;
    let msg = resolve(path.to_str().unwrap()).unwrap_err().to_string();
    let file = path.display().to_string();
    assert!(
        msg.starts_with(&format!("{file}:{line}: policy: policy file ")),
        "{msg}"
    );

    let device = NANO.replace("policy = \"default\"", "policy = \"lenient\"");
    fs::write(&path, device).unwrap();
    let msg = resolve(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!(
            "{file}:{line}: policy: unknown policy profile 'lenient'"
        )),
        "{msg}"
    );
}

#[test]
fn errors_inside_the_referenced_policy_name_the_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = POLICY.replace("hysteresis_c = 5.0", "hysteresis_c = \"five\"");
    let policy_path = write(dir.path(), "site.toml", &policy);
    let device = NANO.replace("policy = \"default\"", "policy = \"site.toml\"");
    let path = write(dir.path(), "box.toml", &device);
    let msg = resolve(path.to_str().unwrap()).unwrap_err().to_string();
    let line = policy
        .lines()
        .position(|l| l.starts_with("hysteresis_c"))
        .unwrap()
        + 1;
    assert!(
        msg.starts_with(&format!(
            "{}:{line}: thermal.hysteresis_c: invalid type",
            policy_path.display()
        )),
        "{msg}"
    );
}

#[test]
fn resolve_rejects_unknown_names_missing_files_and_policy_files() {
    let err = resolve("toaster").unwrap_err();
    assert!(matches!(err, ProfileError::Unknown { .. }), "{err}");
    assert!(err.to_string().contains("cpu-x86"));

    let err = resolve("/nonexistent/box.toml").unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("/nonexistent/box.toml: "));

    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "policy.toml", POLICY);
    let msg = resolve(path.to_str().unwrap()).unwrap_err().to_string();
    assert!(msg.contains("this is a policy profile"), "{msg}");
}

#[test]
fn check_file_tells_device_from_policy() {
    let dir = tempfile::tempdir().unwrap();
    let device = write(dir.path(), "box.toml", NANO);
    let policy = write(dir.path(), "routing.toml", POLICY);

    let summary = check_file(&device).unwrap();
    let Summary::Device(profile) = &summary else {
        panic!("not a device: {summary}")
    };
    assert_eq!(profile.policy.name, "default");
    let text = summary.to_string();
    assert!(
        text.starts_with("device profile 'jetson-orin-nano-8gb'"),
        "{text}"
    );
    assert!(text.contains("policy profile 'default'"), "{text}");

    let summary = check_file(&policy).unwrap();
    assert!(matches!(&summary, Summary::Policy { policy, .. } if policy.name == "default"));
    assert!(summary.to_string().starts_with("policy profile 'default'"));

    let bad = write(
        dir.path(),
        "bad.toml",
        &NANO.replace("critical_c = 95.0", "critical_c = 80.0"),
    );
    let msg = check_file(&bad).unwrap_err().to_string();
    assert!(msg.contains(": thermal.critical_c: must be above"), "{msg}");

    let neither = write(dir.path(), "neither.toml", "name = \"x\"\n");
    let msg = check_file(&neither).unwrap_err().to_string();
    assert!(msg.contains("cannot tell a device profile"), "{msg}");
}

#[test]
fn builtin_device_files_check_cleanly_from_disk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["devices", "policies"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            check_file(&path).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
