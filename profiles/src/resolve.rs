//! A device profile together with the policy it names, resolved from a built-in name or a
//! file, and `switchyard profile check FILE`.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::device::DeviceProfile;
use crate::error::{ProfileError, ProfileKind};
use crate::load::{self, Doc};
use crate::policy::PolicyProfile;
use crate::validate;
use crate::{builtin_file, builtin_text, read};

/// Where a profile's text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary; the label reads `builtin:devices/NAME.toml`.
    Builtin(String),
    /// A file on disk (watch it to reload).
    File(PathBuf),
}

impl Origin {
    /// The file, for an origin on disk.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Origin::Builtin(_) => None,
            Origin::File(path) => Some(path),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Builtin(label) => f.write_str(label),
            Origin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A validated device profile and the validated policy profile it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The device profile.
    pub device: DeviceProfile,
    /// The policy profile named by `device.policy`.
    pub policy: PolicyProfile,
    /// Where each came from: the device first, then the policy.
    pub origin: Vec<Origin>,
}

/// Resolves a device profile and its policy.
///
/// `name_or_path` is a built-in device name (`cpu-x86`, ...) or a path to a device TOML file.
/// The device's `policy` is a built-in policy name, or (for a file) a path relative to the
/// device file's directory (anything containing `/` or ending in `.toml`).
pub fn resolve(name_or_path: &str) -> Result<Profile, ProfileError> {
    let path = Path::new(name_or_path);
    let is_builtin = crate::DEVICES.iter().any(|(n, _)| *n == name_or_path);
    if !is_builtin && (is_path_like(name_or_path) || path.exists()) {
        return resolve_file(path);
    }
    let text = builtin_text(ProfileKind::Device, name_or_path)?;
    let label = builtin_file(ProfileKind::Device, name_or_path);
    let doc = Doc::parse(text, &label)?;
    let device = parse_device_doc(&doc)?;
    let (policy, policy_origin) = resolve_policy(&device, &doc, None)?;
    Ok(Profile {
        device,
        policy,
        origin: vec![Origin::Builtin(label), policy_origin],
    })
}

fn resolve_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = read(path)?;
    let doc = Doc::parse(&text, &path.display().to_string())?;
    if load::detect_kind(&doc) == Some(ProfileKind::Policy) {
        return Err(ProfileError::at(
            doc.file(),
            None,
            "",
            "this is a policy profile; give a device profile (its `policy` key names the policy)"
                .to_owned(),
        ));
    }
    let device = parse_device_doc(&doc)?;
    let (policy, policy_origin) = resolve_policy(&device, &doc, path.parent())?;
    Ok(Profile {
        device,
        policy,
        origin: vec![Origin::File(path.to_path_buf()), policy_origin],
    })
}

fn parse_device_doc(doc: &Doc) -> Result<DeviceProfile, ProfileError> {
    let device: DeviceProfile = doc.deserialize()?;
    let mut issues = load::Issues::default();
    validate::device(&device, &mut issues);
    doc.check(issues)?;
    Ok(device)
}

/// Loads the policy a device names; errors about the reference point at the device's
/// `policy` line, errors inside the policy at the policy file.
fn resolve_policy(
    device: &DeviceProfile,
    doc: &Doc,
    base: Option<&Path>,
) -> Result<(PolicyProfile, Origin), ProfileError> {
    let reference = device.policy.as_str();
    if !is_path_like(reference) {
        let text = builtin_text(ProfileKind::Policy, reference).map_err(|e| {
            doc.error_at(
                "policy",
                format!("{e}; a policy file is named by a path ending in .toml"),
            )
        })?;
        let label = builtin_file(ProfileKind::Policy, reference);
        let policy = crate::parse_policy(text, &label)?;
        return Ok((policy, Origin::Builtin(label)));
    }
    let Some(base) = base else {
        return Err(doc.error_at(
            "policy",
            "a built-in device profile can only name a built-in policy".to_owned(),
        ));
    };
    let path = base.join(reference);
    if !path.is_file() {
        return Err(doc.error_at(
            "policy",
            format!("policy file {} does not exist", path.display()),
        ));
    }
    let policy = crate::load_policy(&path)?;
    Ok((policy, Origin::File(path)))
}

/// A reference is a path when it has a directory separator or a `.toml` extension.
fn is_path_like(s: &str) -> bool {
    s.contains('/') || s.contains('\\') || s.ends_with(".toml")
}

/// What `switchyard profile check FILE` found: a valid profile of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Summary {
    /// A device profile, with the policy it names (both validated).
    Device(Box<Profile>),
    /// A policy profile.
    Policy {
        /// The policy.
        policy: Box<PolicyProfile>,
        /// Its file.
        origin: Origin,
    },
}

/// Parses and validates a profile file, telling device from policy profiles by their tables.
/// A device profile's `policy` reference is resolved and validated too.
pub fn check_file(path: impl AsRef<Path>) -> Result<Summary, ProfileError> {
    let path = path.as_ref();
    let text = read(path)?;
    let doc = Doc::parse(&text, &path.display().to_string())?;
    match load::detect_kind(&doc) {
        Some(ProfileKind::Device) => resolve_file(path).map(|p| Summary::Device(Box::new(p))),
        Some(ProfileKind::Policy) => {
            let policy: PolicyProfile = doc.deserialize()?;
            let mut issues = load::Issues::default();
            validate::policy(&policy, &mut issues);
            doc.check(issues)?;
            Ok(Summary::Policy {
                policy: Box::new(policy),
                origin: Origin::File(path.to_path_buf()),
            })
        }
        None => Err(ProfileError::at(
            doc.file(),
            None,
            "",
            "cannot tell a device profile ([hardware], [engine], [[prefer]], source) from a \
             policy profile ([tiers.*], [[routes]], [classifier], [hints], [learned], [scoring])"
                .to_owned(),
        )),
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Summary::Device(p) => {
                let (d, h) = (&p.device, &p.device.hardware);
                let accelerators: Vec<&str> = h.accelerators.iter().map(|a| a.as_str()).collect();
                write!(
                    f,
                    "device profile '{}' ({}): {} cores, {} MiB{}, accelerators {}; \
                     budget {} MiB; thermal {}/{} °C; {} task preferences; ",
                    d.name,
                    origin_at(&p.origin, 0),
                    h.cpu_cores,
                    h.memory_mib,
                    if h.unified_memory { " unified" } else { "" },
                    accelerators.join("+"),
                    d.memory.budget_mib,
                    d.thermal.throttle_c,
                    d.thermal.critical_c,
                    d.prefer.len(),
                )?;
                write_policy(f, &p.policy, &origin_at(&p.origin, 1))
            }
            Summary::Policy { policy, origin } => write_policy(f, policy, &origin.to_string()),
        }
    }
}

fn origin_at(origin: &[Origin], i: usize) -> String {
    origin.get(i).map(ToString::to_string).unwrap_or_default()
}

fn write_policy(f: &mut fmt::Formatter<'_>, p: &PolicyProfile, origin: &str) -> fmt::Result {
    write!(
        f,
        "policy profile '{}' ({origin}): {} tiers, {} routes, learned {}, security {}{}",
        p.name,
        p.tiers.len(),
        p.routes.len(),
        if p.learned.enabled { "on" } else { "off" },
        p.hints.default_security,
        match p.hints.force_security {
            Some(level) => format!(" (forced {level})"),
            None => String::new(),
        },
    )
}
