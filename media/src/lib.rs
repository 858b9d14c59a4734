//! Switchyard media: audio and image decoding (symphonia, image), resampling to 16 kHz, audio
//! encoding, with limits and counted copies.
//!
//! - [`audio::decode`]: WAV/MP3/FLAC/Ogg Vorbis/Ogg Opus → 16 kHz mono f32, written in place into a
//!   tensor from the caller's [`switchyard_core::BufferAlloc`];
//! - [`audio::resample`] / [`audio::resample_into`]: band-limited resampling (rubato);
//! - [`audio::encode`] / [`audio::StreamEncoder`]: WAV, raw PCM, MP3, Ogg Opus and FLAC
//!   responses, whole or streamed as the audio is produced;
//! - [`image::decode`]: PNG/JPEG/WebP → RGB8 `[H, W, 3]`, dimensions checked before decoding.
//!
//! Every failure is a [`MediaError`] whose message is meant for the API caller.

pub mod audio;
mod error;
pub mod image;

pub use audio::{AudioFormat, AudioLimits, DecodedAudio, StreamEncoder};
pub use error::MediaError;
pub use image::{DecodedImage, ImageLimits};
