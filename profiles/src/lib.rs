//! Switchyard profiles: what a device can run (device profiles) and how requests are routed
//! (policy profiles), as typed TOML with unknown keys rejected and every value validated.
//!
//! Built-in profiles are the files under `devices/` and `policies/`, embedded at compile time;
//! any other file can be loaded by path. Every error names the file, the line and the dotted
//! key, e.g. `jetson.toml:12: thermal.throttle_c: invalid type: string "hot", expected f32`.
//!
//! ```
//! let profile = switchyard_profiles::resolve("jetson-orin-nano-8gb").unwrap();
//! assert_eq!(profile.device.hardware.cpu_cores, 6);
//! assert_eq!(profile.policy.name, "default");
//! ```

mod device;
mod error;
mod fetch;
mod load;
mod policy;
mod resolve;
mod validate;

use std::path::Path;

pub use device::{
    engine_accelerator, Accelerator, DeviceProfile, EngineDefaults, Hardware, MemoryBudget,
    Precision, Task, TaskPreference, ThermalLimits, ThermalSensor, ENGINES,
};
pub use error::{Diagnostic, ProfileError, ProfileKind};
pub use fetch::FetchPolicy;
pub use policy::{
    ClassifierPolicy, HintPolicy, IntentRoute, LearnedPolicy, MemoryPolicy, PolicyProfile,
    ScoringWeights, SecurityLevel, ThermalPolicy, Tier, INTENTS, PIPELINES,
};
pub use resolve::{check_file, resolve, Origin, Profile, Summary};

/// The name of the default device profile.
pub const DEFAULT_PROFILE: &str = "cpu-x86";

/// The name of the default policy profile.
pub const DEFAULT_POLICY: &str = "default";

const DEVICES: [(&str, &str); 6] = [
    ("cpu-x86", include_str!("../devices/cpu-x86.toml")),
    (
        "jetson-orin-nano-8gb",
        include_str!("../devices/jetson-orin-nano-8gb.toml"),
    ),
    (
        "jetson-agx-orin-64gb",
        include_str!("../devices/jetson-agx-orin-64gb.toml"),
    ),
    (
        "mac-m-series-16gb",
        include_str!("../devices/mac-m-series-16gb.toml"),
    ),
    (
        "mac-m-max-64gb",
        include_str!("../devices/mac-m-max-64gb.toml"),
    ),
    (
        "rtx-desktop-24gb",
        include_str!("../devices/rtx-desktop-24gb.toml"),
    ),
];

const POLICIES: [(&str, &str); 3] = [
    ("default", include_str!("../policies/default.toml")),
    ("learned", include_str!("../policies/learned.toml")),
    ("airgap", include_str!("../policies/airgap.toml")),
];

/// Names of the built-in device profiles.
pub fn builtin_names() -> Vec<&'static str> {
    DEVICES.iter().map(|(n, _)| *n).collect()
}

/// Names of the built-in policy profiles.
pub fn builtin_policy_names() -> Vec<&'static str> {
    POLICIES.iter().map(|(n, _)| *n).collect()
}

/// Loads a built-in device profile by name.
pub fn builtin(name: &str) -> Result<DeviceProfile, ProfileError> {
    let text = builtin_text(ProfileKind::Device, name)?;
    parse_device(text, &builtin_file(ProfileKind::Device, name))
}

/// Loads a built-in policy profile by name.
pub fn builtin_policy(name: &str) -> Result<PolicyProfile, ProfileError> {
    let text = builtin_text(ProfileKind::Policy, name)?;
    parse_policy(text, &builtin_file(ProfileKind::Policy, name))
}

/// Loads and validates a device profile file.
pub fn load_device(path: impl AsRef<Path>) -> Result<DeviceProfile, ProfileError> {
    let path = path.as_ref();
    parse_device(&read(path)?, &path.display().to_string())
}

/// Loads and validates a policy profile file.
pub fn load_policy(path: impl AsRef<Path>) -> Result<PolicyProfile, ProfileError> {
    let path = path.as_ref();
    parse_policy(&read(path)?, &path.display().to_string())
}

/// Parses and validates a device profile from text; `file` names it in errors.
pub fn parse_device(text: &str, file: &str) -> Result<DeviceProfile, ProfileError> {
    load::parse_checked(text, file, validate::device).map(|(p, _)| p)
}

/// Parses and validates a policy profile from text; `file` names it in errors.
pub fn parse_policy(text: &str, file: &str) -> Result<PolicyProfile, ProfileError> {
    load::parse_checked(text, file, validate::policy).map(|(p, _)| p)
}

fn table(kind: ProfileKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        ProfileKind::Device => &DEVICES,
        ProfileKind::Policy => &POLICIES,
    }
}

/// The embedded text of a built-in, or `Unknown` listing the built-in names.
fn builtin_text(kind: ProfileKind, name: &str) -> Result<&'static str, ProfileError> {
    let entries = table(kind);
    entries
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| ProfileError::Unknown {
            kind,
            name: name.to_owned(),
            known: entries
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How diagnostics name a built-in file: `builtin:devices/NAME.toml`.
fn builtin_file(kind: ProfileKind, name: &str) -> String {
    match kind {
        ProfileKind::Device => format!("builtin:devices/{name}.toml"),
        ProfileKind::Policy => format!("builtin:policies/{name}.toml"),
    }
}

fn read(path: &Path) -> Result<String, ProfileError> {
    std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.to_path_buf(),
        source,
    })
}
