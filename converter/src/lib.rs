//! Switchyard converter: turns source models into the artifacts each device profile needs
//! (GGUF quantisations, MLX weights, ONNX device variants, speech-model formats) and records
//! them in the model's manifest. It is a library plus the `switchyard-convert` binary, so edge
//! boxes can run the gateway without it.
//!
//! `plan` says, for a device profile, which artifact each model needs and whether it exists;
//! `build` makes the missing ones with the conversions below, verifies them and records them
//! in the model's `manifest.json` (schema 2, see docs/MANIFEST.md).

pub mod build;
pub mod ct2_whisper;
pub mod hf_gguf;
pub mod mapped;
pub mod mlx;
pub mod onnx_variants;
pub mod plan;
pub mod profile_cli;
pub mod serving;
pub mod whisper_quant;
