//! 16-bit PCM WAV: whole clips with exact sizes (hound), and a streamed form whose header is
//! sent before the length is known.

use std::io::Cursor;

use super::to_i16;
use crate::MediaError;

/// The RIFF and `data` sizes a streamed WAV declares: unknown. `0xFFFFFFFF` is what ffmpeg
/// writes to a pipe and what OpenAI's streamed WAV carries; symphonia, ffmpeg, libsndfile and
/// Python's `wave` all read such a file to its end (a size of 0 is refused by libsndfile and
/// by `wave`, which then find no samples).
pub(crate) const UNKNOWN_SIZE: u32 = u32::MAX;

/// Length of the canonical header written here (`RIFF`, `fmt ` of 16 bytes, `data`).
pub(crate) const HEADER_LEN: usize = 44;

/// The 44-byte header of a mono 16-bit PCM WAV at `rate`, with `data_len` bytes of samples
/// (`None`: unknown, both sizes [`UNKNOWN_SIZE`]).
pub(super) fn header(rate: u32, data_len: Option<u32>) -> [u8; HEADER_LEN] {
    let riff_len = data_len.map_or(UNKNOWN_SIZE, |n| n.saturating_add(36));
    let mut h = [0u8; HEADER_LEN];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &riff_len.to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &1u16.to_le_bytes(), // mono
        &rate.to_le_bytes(),
        &rate.saturating_mul(2).to_le_bytes(), // byte rate
        &2u16.to_le_bytes(),                   // block align
        &16u16.to_le_bytes(),                  // bits per sample
        b"data",
        &data_len.unwrap_or(UNKNOWN_SIZE).to_le_bytes(),
        &[],
    ];
    let mut at = 0;
    for field in fields {
        h[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    h
}

/// Appends `samples` as s16le.
pub(super) fn push_s16(samples: &[f32], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    out.extend(samples.iter().flat_map(|x| to_i16(*x).to_le_bytes()));
}

/// A whole clip with exact sizes.
pub(super) fn encode(samples: &[f32], rate: u32) -> Result<Vec<u8>, MediaError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let encode_err = |e: hound::Error| MediaError::Encode(e.to_string());
    let mut out = Cursor::new(Vec::with_capacity(HEADER_LEN + samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(encode_err)?;
    for x in samples {
        writer.write_sample(to_i16(*x)).map_err(encode_err)?;
    }
    writer.finalize().map_err(encode_err)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_header_matches_hound_but_for_its_sizes() {
        let exact = encode(&[0.0; 10], 22_050).unwrap();
        assert_eq!(&header(22_050, Some(20))[..], &exact[..HEADER_LEN]);
        let streamed = header(22_050, None);
        assert_eq!(&streamed[4..8], &[0xFF; 4]);
        assert_eq!(&streamed[40..44], &[0xFF; 4]);
        assert_eq!(&streamed[8..40], &exact[8..40]);
    }
}
