//! Ogg Opus uploads (RFC 7845), which symphonia does not decode: the Ogg pages are read with
//! the `ogg` crate and the packets decoded by libopus at 48 kHz mono (libopus downmixes
//! stereo itself), with `OpusHead`'s pre-skip dropped and the end trimmed to the last page's
//! granule position, as a conforming player does.

use std::io::Cursor;

use ogg::OggReadError;
use opus::{Channels, Decoder};

use super::sniff::Container;
use super::AudioLimits;
use crate::MediaError;

/// Opus decodes at 48 kHz (granule positions count 48 kHz samples whatever the input was).
pub(crate) const OPUS_RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms at 48 kHz.
const MAX_PACKET_FRAMES: usize = 5_760;
/// Undecodable packets tolerated (as for the other codecs), when also over a quarter.
const MAX_BAD_PACKETS: usize = 3;

const FORMAT: &str = Container::Ogg.name();

/// What [`decode`] found.
pub(crate) struct OpusPcm {
    /// Mono samples at [`OPUS_RATE`].
    pub(crate) mono: Vec<f32>,
    /// Channel count `OpusHead` declares.
    pub(crate) channels: u16,
    /// The stream ended inside a page.
    pub(crate) truncated: bool,
}

/// Whether `bytes` (an Ogg stream) starts with an Opus identification header.
pub(crate) fn is_ogg_opus(bytes: &[u8]) -> bool {
    // The first page holds one packet; its body starts after the 27-byte header and the lacing.
    let Some(&segments) = bytes.get(26) else {
        return false;
    };
    let body = 27 + usize::from(segments);
    bytes.get(body..body + 8) == Some(b"OpusHead")
}

fn corrupt(detail: impl Into<String>) -> MediaError {
    MediaError::Corrupt {
        format: FORMAT,
        detail: detail.into(),
    }
}

fn read_error(e: OggReadError) -> Result<(), MediaError> {
    match e {
        OggReadError::ReadError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        other => Err(corrupt(other.to_string())),
    }
}

/// Decodes an Ogg Opus stream; stops as soon as `limits.max_seconds` is passed.
pub(crate) fn decode(bytes: &[u8], limits: &AudioLimits) -> Result<OpusPcm, MediaError> {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let truncated_header = || MediaError::Truncated {
        format: FORMAT,
        detail: "the file ends inside its Opus headers".into(),
    };
    let head = match reader.read_packet() {
        Ok(Some(p)) => p,
        Ok(None) => return Err(truncated_header()),
        Err(e) => {
            read_error(e)?;
            return Err(truncated_header());
        }
    };
    let h = &head.data;
    if h.len() < 19 || &h[..8] != b"OpusHead" || h[8] >> 4 != 0 {
        return Err(MediaError::Unsupported {
            format: FORMAT,
            detail: "not an Opus identification header of version 0.x/1".into(),
        });
    }
    let channels = u16::from(h[9]);
    if h[18] != 0 && channels > 2 {
        return Err(MediaError::Unsupported {
            format: FORMAT,
            detail: format!(
                "Opus channel mapping family {} ({channels} channels)",
                h[18]
            ),
        });
    }
    let pre_skip = usize::from(u16::from_le_bytes([h[10], h[11]]));
    let serial = head.stream_serial();
    let mut decoder =
        Decoder::new(OPUS_RATE, Channels::Mono).map_err(|e| corrupt(format!("libopus: {e}")))?;
    let max_frames = (limits.max_seconds * f64::from(OPUS_RATE)).ceil() as usize + pre_skip;

    let mut mono = Vec::new();
    let mut frame = vec![0f32; MAX_PACKET_FRAMES];
    let (mut packets, mut bad, mut last_error) = (0usize, 0usize, String::new());
    let (mut truncated, mut end, mut tags_seen) = (false, None, false);
    loop {
        let packet = match reader.read_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                read_error(e)?;
                truncated = true;
                break;
            }
        };
        if packet.stream_serial() != serial {
            continue;
        }
        if !tags_seen {
            // The second packet is OpusTags (comments): nothing to decode.
            tags_seen = true;
            continue;
        }
        packets += 1;
        match decoder.decode_float(&packet.data, &mut frame, false) {
            Ok(n) => mono.extend_from_slice(&frame[..n.min(frame.len())]),
            Err(e) => {
                bad += 1;
                last_error = e.to_string();
            }
        }
        if packet.last_in_page() {
            end = Some(packet.absgp_page());
        }
        if mono.len() > max_frames {
            return Err(MediaError::TooLong {
                seconds: (mono.len() - pre_skip) as f64 / f64::from(OPUS_RATE),
                max_seconds: limits.max_seconds,
            });
        }
        if packet.last_in_stream() {
            break;
        }
    }
    if bad > 0 && (mono.is_empty() || (bad > MAX_BAD_PACKETS && bad * 4 > packets)) {
        return Err(corrupt(format!(
            "{bad} of {packets} Opus packets could not be decoded ({last_error})"
        )));
    }
    // End trimming: the last granule position says how much of the last packet is audio.
    if let Some(end) = end.and_then(|e| usize::try_from(e).ok()) {
        if !truncated && end >= pre_skip && end < mono.len() {
            mono.truncate(end);
        }
    }
    mono.drain(..pre_skip.min(mono.len()));
    if mono.is_empty() {
        if truncated {
            return Err(MediaError::Truncated {
                format: FORMAT,
                detail: "the file ends before its first complete audio packet".into(),
            });
        }
        return Err(MediaError::ZeroSamples);
    }
    Ok(OpusPcm {
        mono,
        channels,
        truncated,
    })
}
