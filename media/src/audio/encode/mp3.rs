//! MP3 through LAME (`mp3lame-encoder`): constant bitrate, mono, frame by frame.
//!
//! No Xing/Info tag is written: LAME can only fill it in once the whole clip is known, and a
//! streamed file cannot go back to its first frame. Decoders therefore play LAME's encoder
//! delay (~1100 samples, ~50 ms at 22.05 kHz) as leading silence; the clip is otherwise exact.

use std::num::NonZeroU32;

use mp3lame_encoder::{max_required_buffer_size, Bitrate, Builder, FlushGap, Mode, MonoPcm};

use crate::MediaError;

/// Rates MP3 can carry (MPEG-1, MPEG-2 and MPEG-2.5); any other input rate is resampled by
/// LAME to one it picks.
const MP3_RATES: [u32; 9] = [
    8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000,
];

/// Room LAME asks for when flushing its last frames.
const FLUSH_BYTES: usize = 7200;

fn lame_err(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Encode(format!("mp3 {what}: {e}"))
}

/// A LAME encoder for one response.
pub(super) struct Mp3Stream {
    encoder: mp3lame_encoder::Encoder,
    /// Samples clipped to -1..=1 (what LAME's float input expects).
    scratch: Vec<f32>,
}

impl Mp3Stream {
    /// Mono CBR at 64 kbit/s (transparent enough for speech at the voices' 16–24 kHz rates).
    pub(super) fn new(rate: u32) -> Result<Self, MediaError> {
        let mut b =
            Builder::new().ok_or_else(|| MediaError::Encode("mp3: LAME out of memory".into()))?;
        b.set_num_channels(1).map_err(|e| lame_err("channels", e))?;
        b.set_sample_rate(rate)
            .map_err(|e| lame_err("sample rate", e))?;
        let out_rate = MP3_RATES.contains(&rate).then_some(rate);
        b.set_output_sample_rate(out_rate.and_then(NonZeroU32::new))
            .map_err(|e| lame_err("output rate", e))?;
        b.set_mode(Mode::Mono).map_err(|e| lame_err("mode", e))?;
        b.set_brate(Bitrate::Kbps64)
            .map_err(|e| lame_err("bitrate", e))?;
        b.set_quality(mp3lame_encoder::Quality::NearBest)
            .map_err(|e| lame_err("quality", e))?;
        b.set_to_write_vbr_tag(false)
            .map_err(|e| lame_err("tag", e))?;
        let encoder = b.build().map_err(|e| lame_err("set-up", e))?;
        Ok(Self {
            encoder,
            scratch: Vec::new(),
        })
    }

    /// Encodes `samples`, appending the MP3 frames completed so far to `out`.
    pub(super) fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.scratch.clear();
        self.scratch.extend(
            samples
                .iter()
                .map(|x| if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) }),
        );
        out.reserve(max_required_buffer_size(samples.len()));
        self.encoder
            .encode_to_vec(MonoPcm(&self.scratch[..]), out)
            .map_err(|e| lame_err("encoding", e))?;
        Ok(())
    }

    /// Flushes the frames LAME still holds (the last one padded with silence).
    pub(super) fn finish(mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.reserve(FLUSH_BYTES);
        self.encoder
            .flush_to_vec::<FlushGap>(out)
            .map_err(|e| lame_err("flush", e))?;
        Ok(())
    }
}
