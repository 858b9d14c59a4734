//! Audio: decode uploads to 16 kHz mono f32 (written in place into a [`Tensor`] from the
//! caller's allocator), resample, and encode responses (WAV, raw PCM, MP3, Ogg Opus, FLAC;
//! whole or streamed piece by piece).
//!
//! Containers decoded (detected from the bytes, never from a file name): WAV (PCM, IEEE float,
//! A-law/µ-law, IMA/MS ADPCM), MP3 (MPEG-1/2 layer III), FLAC, Ogg Vorbis (symphonia) and Ogg
//! Opus (libopus: RFC 7845 pre-skip and end trimming applied).
//!
//! Truncation policy: a file cut inside its header (or before its first audio frame) is
//! refused with [`MediaError::Truncated`]. A file cut inside its audio data (e.g. a WAV whose
//! `data` chunk is shorter than declared) decodes the part that is present, as most players
//! do; [`DecodedAudio::truncated`] tells the caller it happened. A WAV whose RIFF or `data`
//! size is `0xFFFFFFFF` or 0 (written by a streaming encoder, ours included, that did not know
//! the length) is not truncated: its data runs to the end of the file.

mod decode;
mod encode;
mod ogg_opus;
mod resample;
mod sniff;
mod streamed_wav;

pub use decode::decode;
pub use encode::{encode, AudioFormat, StreamEncoder, PCM_RATE};
pub use resample::{resample, resample_into};

use switchyard_core::Tensor;

/// Rate every decoded clip is resampled to (what speech models expect).
pub const TARGET_RATE: u32 = 16_000;

/// Limits applied to an audio upload before and while decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLimits {
    /// Largest accepted upload, in bytes (checked before decoding).
    pub max_bytes: usize,
    /// Longest accepted audio, in seconds (checked from the header when it declares a length,
    /// otherwise decoding stops as soon as it is exceeded).
    pub max_seconds: f64,
}

impl Default for AudioLimits {
    /// 25 MB and 10 minutes.
    fn default() -> Self {
        Self {
            max_bytes: 25 * 1024 * 1024,
            max_seconds: 600.0,
        }
    }
}

/// A decoded clip: mono f32 samples at [`TARGET_RATE`] plus what the source was.
#[derive(Debug, Clone)]
pub struct DecodedAudio {
    /// Mono samples at 16 kHz, f32 `[n]`, in a buffer from the caller's allocator.
    pub samples: Tensor,
    /// Sample rate of the source, in Hz.
    pub source_rate: u32,
    /// Channel count of the source (downmixed to mono by averaging).
    pub channels: u16,
    /// Length of the decoded audio, in seconds.
    pub seconds: f64,
    /// Codec short name (`pcm_s16le`, `mp3`, `flac`, `vorbis`, ...).
    pub codec: String,
    /// Whether the file ended inside its audio data (the part present was decoded).
    pub truncated: bool,
}
