//! FLAC (pure-Rust `flacenc`), 16-bit mono, fixed 4096-sample blocks.
//!
//! A whole clip gets a complete STREAMINFO (total samples, MD5, frame sizes). A streamed one
//! sends STREAMINFO first with the values FLAC defines as "unknown" (total samples 0, MD5 all
//! zero, frame sizes 0), then each block as soon as it is full; the last, shorter block is sent
//! by [`FlacStream::finish`].

use flacenc::bitsink::ByteSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::config;
use flacenc::error::{Verified, Verify};
use flacenc::source::{Fill, FrameBuf, MemSource};

use super::to_i16;
use crate::MediaError;

/// Samples per FLAC block (the reference encoder's default at these rates; ~186 ms at
/// 22.05 kHz, the most a streamed FLAC holds back).
const BLOCK: usize = 4096;

fn flac_err(what: &str, e: impl std::fmt::Debug) -> MediaError {
    MediaError::Encode(format!("flac {what}: {e:?}"))
}

fn encoder_config() -> Result<Verified<config::Encoder>, MediaError> {
    let mut c = config::Encoder::default();
    c.block_size = BLOCK;
    c.into_verified().map_err(|(_, e)| flac_err("config", e))
}

fn to_i32(samples: &[f32]) -> impl Iterator<Item = i32> + '_ {
    samples.iter().map(|x| i32::from(to_i16(*x)))
}

fn bytes_of(item: &impl BitRepr) -> Result<Vec<u8>, MediaError> {
    let mut sink = ByteSink::new();
    item.write(&mut sink).map_err(|e| flac_err("write", e))?;
    Ok(sink.into_inner())
}

/// A whole clip, with exact STREAMINFO.
pub(super) fn encode(samples: &[f32], rate: u32) -> Result<Vec<u8>, MediaError> {
    let pcm: Vec<i32> = to_i32(samples).collect();
    let source = MemSource::from_samples(&pcm, 1, 16, rate as usize);
    let mut stream = flacenc::encode_with_fixed_block_size(&encoder_config()?, source, BLOCK)
        .map_err(|e| flac_err("encoding", e))?;
    // flacenc counts the last, shorter block in the minimum block size; FLAC excludes it, and
    // a fixed-blocksize stream must declare min == max (symphonia otherwise takes it for a
    // variable one and cannot find its frames).
    stream
        .stream_info_mut()
        .set_block_sizes(BLOCK, BLOCK)
        .map_err(|e| flac_err("block size", e))?;
    bytes_of(&stream)
}

/// A FLAC encoder for one streamed response.
pub(super) struct FlacStream {
    config: Verified<config::Encoder>,
    info: StreamInfo,
    block: FrameBuf,
    /// Samples waiting for a full block.
    pending: Vec<i32>,
    /// Blocks written (the frame number of the next one).
    frames: usize,
    /// The `fLaC` marker and STREAMINFO, until the first bytes go out.
    header: Option<Vec<u8>>,
}

impl FlacStream {
    pub(super) fn new(rate: u32) -> Result<Self, MediaError> {
        let mut stream = Stream::new(rate as usize, 1, 16).map_err(|e| flac_err("rate", e))?;
        let info = stream.stream_info_mut();
        info.set_block_sizes(BLOCK, BLOCK)
            .map_err(|e| flac_err("block size", e))?;
        info.set_frame_sizes(0, 0)
            .map_err(|e| flac_err("frame size", e))?;
        let info = info.clone();
        let header = bytes_of(&stream)?;
        Ok(Self {
            config: encoder_config()?,
            info,
            block: FrameBuf::with_size(1, BLOCK).map_err(|e| flac_err("block", e))?,
            pending: Vec::with_capacity(BLOCK),
            frames: 0,
            header: Some(header),
        })
    }

    /// Encodes `samples`, appending every full block (and, the first time, the header).
    pub(super) fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.extend(self.header.take().unwrap_or_default());
        self.pending.extend(to_i32(samples));
        let whole = self.pending.len() / BLOCK * BLOCK;
        for at in (0..whole).step_by(BLOCK) {
            self.write_block(at, at + BLOCK, out)?;
        }
        self.pending.drain(..whole);
        Ok(())
    }

    /// Writes the last, shorter block.
    pub(super) fn finish(mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        out.extend(self.header.take().unwrap_or_default());
        if !self.pending.is_empty() {
            self.write_block(0, self.pending.len(), out)?;
        }
        Ok(())
    }

    fn write_block(&mut self, from: usize, to: usize, out: &mut Vec<u8>) -> Result<(), MediaError> {
        self.block
            .fill_interleaved(&self.pending[from..to])
            .map_err(|e| flac_err("block", e))?;
        let frame =
            flacenc::encode_fixed_size_frame(&self.config, &self.block, self.frames, &self.info)
                .map_err(|e| flac_err("encoding", e))?;
        self.frames += 1;
        out.extend(bytes_of(&frame)?);
        Ok(())
    }
}
