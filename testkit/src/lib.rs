//! Helpers shared by Switchyard's tests; a dev-dependency only, never linked into a binary.
//!
//! - [`wer`]: word error rate as the speech tests measure it (case and punctuation ignored).
//! - [`speech`]: espeak-ng speech at 16 kHz, resampled by an independent windowed-sinc filter
//!   (so tests do not check the media crate's resampler against itself).
//! - [`models_dir`]: where `switchyard models fetch` puts the sample models.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failure is a test failure

pub mod speech;
pub mod wer;

/// Deterministic pseudo-random values in -1..1 (an LCG; no `rand` needed).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

use std::path::PathBuf;

/// The sample models folder: `SWITCHYARD_MODELS_DIR`, else `<cache>/switchyard/models`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}
