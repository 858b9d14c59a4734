//! Switchyard profiles: what a device can run (device profiles) and how requests are routed
//! (policy profiles), as typed TOML with unknown keys rejected.
//!
//! This first version carries the default device profile, `cpu-x86`, whose engine settings the
//! gateway uses when its configuration does not set them. Further profiles (Jetson, Mac, RTX)
//! and policy profiles join with the router.

use serde::Deserialize;

/// The name of the default device profile.
pub const DEFAULT_PROFILE: &str = "cpu-x86";

/// Engine settings a device profile recommends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Profile name.
    pub name: String,
    /// Human description.
    pub description: String,
    /// Threads for llama.cpp decoding.
    pub threads: u32,
    /// Parallel sequences per model.
    pub slots: u32,
    /// Context tokens per sequence.
    pub context_per_slot: u32,
    /// Memory budget for loaded models, in MiB.
    pub memory_budget_mib: u64,
}

/// Errors loading a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No built-in profile has this name.
    #[error("unknown profile '{0}' (built-in: cpu-x86)")]
    Unknown(String),
    /// The TOML is invalid.
    #[error("profile {name}: {source}")]
    Parse {
        /// Profile name.
        name: String,
        /// The TOML error (with line and column).
        source: toml::de::Error,
    },
}

const CPU_X86: &str = include_str!("../cpu-x86.toml");

/// Loads a built-in device profile by name.
pub fn builtin(name: &str) -> Result<DeviceProfile, ProfileError> {
    let text = match name {
        DEFAULT_PROFILE => CPU_X86,
        other => return Err(ProfileError::Unknown(other.to_owned())),
    };
    toml::from_str(text).map_err(|source| ProfileError::Parse {
        name: name.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_parses() {
        let p = builtin(DEFAULT_PROFILE).unwrap();
        assert_eq!(p.name, "cpu-x86");
        assert!(p.threads >= 1 && p.slots >= 1);
    }

    #[test]
    fn unknown_profile_is_named() {
        assert!(builtin("toaster")
            .unwrap_err()
            .to_string()
            .contains("toaster"));
    }
}
