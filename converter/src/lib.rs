//! Switchyard converter: turns source models into the artifacts each device profile needs
//! (GGUF quantisations, MLX weights, ONNX device variants, speech-model formats) and records
//! them in the model's manifest. It is a library plus the `switchyard-convert` binary, so edge
//! boxes can run the gateway without it.
//!
//! This first version only reports which artifacts a profile needs; conversions arrive with
//! the converter issue.

pub mod ct2_whisper;

use switchyard_core::Manifest;

/// The artifact formats a device profile reads, in preference order.
pub fn formats_for_profile(profile: &str) -> &'static [&'static str] {
    match profile {
        "cpu-x86" => &["gguf"],
        _ => &[],
    }
}

/// Whether `manifest` already has an artifact `profile` can use.
pub fn is_ready(manifest: &Manifest, profile: &str) -> bool {
    formats_for_profile(profile).contains(&manifest.format.as_str())
}
