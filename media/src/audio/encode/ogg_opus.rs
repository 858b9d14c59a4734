//! Opus (libopus) in an Ogg stream, as RFC 7845 lays it out.
//!
//! The audio is resampled to 48 kHz (the media crate's resampler, one call per pushed piece)
//! and cut into 20 ms packets. The first page holds `OpusHead` (pre-skip = the encoder's
//! look-ahead, so that players drop the delay it adds), the second `OpusTags`; every later
//! page's granule position counts the 48 kHz samples decoded through its last packet, pre-skip
//! included. The last page is flagged end-of-stream and its granule position trims the
//! padding of the last packet, so the decoded length equals the input's.

use ogg::writing::{PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Encoder};

use crate::audio::resample;
use crate::MediaError;

/// Opus always runs at 48 kHz here; granule positions are in 48 kHz samples whatever the rate.
const OPUS_RATE: u32 = 48_000;
/// 20 ms packets.
const FRAME: usize = 960;
/// Largest packet libopus may produce (its documented recommendation for the buffer).
const MAX_PACKET: usize = 4000;
/// Speech at 32 kbit/s is near transparent for Opus.
const BITRATE: i32 = 32_000;
/// The stream's serial number (one logical stream per file).
const SERIAL: u32 = 0x5357_5944;

fn opus_err(what: &str, e: impl std::fmt::Display) -> MediaError {
    MediaError::Encode(format!("opus {what}: {e}"))
}

/// An Ogg Opus encoder for one response.
pub(super) struct OpusStream {
    encoder: Encoder,
    writer: PacketWriter<'static, Vec<u8>>,
    /// Rate of the pushed samples.
    rate: u32,
    /// Encoder look-ahead at 48 kHz, written as `OpusHead`'s pre-skip.
    pre_skip: u64,
    /// 48 kHz samples waiting for a whole packet.
    pending: Vec<f32>,
    /// 48 kHz samples already encoded (a multiple of [`FRAME`]).
    encoded: u64,
    /// 48 kHz samples of real audio received (without the final padding).
    real: u64,
}

impl OpusStream {
    /// Writes the two header pages (kept until the first [`OpusStream::push`] or
    /// [`OpusStream::finish`] hands them out).
    pub(super) fn new(rate: u32) -> Result<Self, MediaError> {
        let mut encoder = Encoder::new(OPUS_RATE, Channels::Mono, Application::Audio)
            .map_err(|e| opus_err("set-up", e))?;
        encoder
            .set_bitrate(Bitrate::Bits(BITRATE))
            .map_err(|e| opus_err("bitrate", e))?;
        let lookahead = encoder
            .get_lookahead()
            .map_err(|e| opus_err("look-ahead", e))?;
        let pre_skip = u16::try_from(lookahead).map_err(|e| opus_err("look-ahead", e))?;
        let mut writer = PacketWriter::new(Vec::new());
        let io_err = |e: std::io::Error| opus_err("ogg", e);
        writer
            .write_packet(
                opus_head(pre_skip, rate),
                SERIAL,
                PacketWriteEndInfo::EndPage,
                0,
            )
            .map_err(io_err)?;
        writer
            .write_packet(opus_tags(), SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(io_err)?;
        Ok(Self {
            encoder,
            writer,
            rate,
            pre_skip: u64::from(pre_skip),
            pending: Vec::new(),
            encoded: 0,
            real: 0,
        })
    }

    /// Encodes `samples`; every whole 20 ms packet is written and its page closed, so the
    /// bytes appended to `out` decode on their own (the rest waits for more audio).
    pub(super) fn push(&mut self, samples: &[f32], out: &mut Vec<u8>) -> Result<(), MediaError> {
        let at_48k = resample(samples, self.rate, OPUS_RATE)?;
        self.real += at_48k.len() as u64;
        self.pending.extend_from_slice(&at_48k);
        let whole = self.pending.len() / FRAME;
        self.write_packets(whole, None)?;
        self.pending.drain(..whole * FRAME);
        out.append(self.writer.inner_mut());
        Ok(())
    }

    /// Encodes what is left, padded with silence long enough to flush the look-ahead, and
    /// closes the stream with the exact end position.
    pub(super) fn finish(mut self, out: &mut Vec<u8>) -> Result<(), MediaError> {
        let pending = self.pending.len();
        let padded = (pending + self.pre_skip as usize).div_ceil(FRAME) * FRAME;
        self.pending.resize(padded, 0.0);
        let end = self.pre_skip + self.real;
        self.write_packets(padded / FRAME, Some(end))?;
        out.append(self.writer.inner_mut());
        Ok(())
    }

    /// Encodes the first `packets` frames of `pending`; the last one closes its page, and
    /// with `end` the stream, at granule position `end`.
    fn write_packets(&mut self, packets: usize, end: Option<u64>) -> Result<(), MediaError> {
        let mut packet = [0u8; MAX_PACKET];
        for (i, frame) in self.pending.chunks_exact(FRAME).take(packets).enumerate() {
            let len = self
                .encoder
                .encode_float(frame, &mut packet)
                .map_err(|e| opus_err("encoding", e))?;
            self.encoded += FRAME as u64;
            let last = i + 1 == packets;
            let (info, granule) = match (last, end) {
                (true, Some(end)) => (PacketWriteEndInfo::EndStream, end.min(self.encoded)),
                (true, None) => (PacketWriteEndInfo::EndPage, self.encoded),
                (false, _) => (PacketWriteEndInfo::NormalPacket, self.encoded),
            };
            self.writer
                .write_packet(packet[..len].to_vec(), SERIAL, info, granule)
                .map_err(|e| opus_err("ogg", e))?;
        }
        Ok(())
    }
}

/// `OpusHead` (RFC 7845 §5.1): version 1, mono, `pre_skip`, the input's rate, no gain,
/// channel mapping family 0.
fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(b"OpusHead");
    h.push(1);
    h.push(1);
    h.extend_from_slice(&pre_skip.to_le_bytes());
    h.extend_from_slice(&input_rate.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// `OpusTags` (RFC 7845 §5.2): the vendor string and one `ENCODER` comment.
fn opus_tags() -> Vec<u8> {
    let vendor = opus::version();
    let comment = concat!("ENCODER=switchyard ", env!("CARGO_PKG_VERSION"));
    let mut t = Vec::with_capacity(24 + vendor.len() + comment.len());
    t.extend_from_slice(b"OpusTags");
    t.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    t.extend_from_slice(vendor.as_bytes());
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(&(comment.len() as u32).to_le_bytes());
    t.extend_from_slice(comment.as_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the Ogg pages: (granule position, flags, packets) per page.
    fn pages(bytes: &[u8]) -> Vec<(u64, u8, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"OggS");
            let flags = bytes[at + 5];
            let granule = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap());
            let segments = bytes[at + 26] as usize;
            let lacing = &bytes[at + 27..at + 27 + segments];
            let body: usize = lacing.iter().map(|&l| l as usize).sum();
            let packets = lacing.iter().filter(|&&l| l < 255).count();
            out.push((granule, flags, packets));
            at += 27 + segments + body;
        }
        out
    }

    #[test]
    fn pages_carry_headers_granules_and_the_exact_end() {
        let mut s = OpusStream::new(24_000).unwrap();
        let pre_skip = s.pre_skip;
        let mut bytes = Vec::new();
        s.push(&[0.1; 12_000], &mut bytes).unwrap(); // 0.5 s = 25 packets at 48 kHz
        let first = bytes.len();
        s.push(&[0.1; 1_000], &mut bytes).unwrap(); // 2000 at 48 kHz: two more packets
        s.finish(&mut bytes).unwrap();
        assert!(first > 0);
        assert_eq!(&bytes[28..36], b"OpusHead");
        assert_eq!(u16::from_le_bytes([bytes[38], bytes[39]]) as u64, pre_skip);
        let p = pages(&bytes);
        assert_eq!(p[0], (0, 0x02, 1)); // beginning of stream, OpusHead alone
        assert_eq!((p[1].0, p[1].2), (0, 1)); // OpusTags alone
        assert_eq!(p[2], (25 * 960, 0, 25));
        assert_eq!(p[3], (27 * 960, 0, 2));
        let last = p[p.len() - 1];
        assert_eq!(last.1 & 0x04, 0x04, "end of stream");
        assert_eq!(last.0, pre_skip + 26_000);
    }
}
