//! Switchyard media: audio and image decoding (symphonia, image), resampling to 16 kHz, audio
//! encoding, with limits and counted copies.
//!
//! - [`audio::decode`]: WAV/MP3/FLAC/Ogg Vorbis → 16 kHz mono f32, written in place into a
//!   tensor from the caller's [`switchyard_core::BufferAlloc`];
//! - [`audio::resample`] / [`audio::resample_into`]: band-limited resampling (rubato);
//! - [`audio::encode`]: WAV and raw PCM responses;
//! - [`image::decode`]: PNG/JPEG/WebP → RGB8 `[H, W, 3]`, dimensions checked before decoding.
//!
//! Every failure is a [`MediaError`] whose message is meant for the API caller.

pub mod audio;
mod error;
pub mod image;

pub use audio::{AudioFormat, AudioLimits, DecodedAudio};
pub use error::MediaError;
pub use image::{DecodedImage, ImageLimits};
