//! WAV files written before their length was known (streamed): RIFF and/or `data` sizes of
//! `0xFFFFFFFF` (ffmpeg to a pipe, OpenAI's and our streamed WAV) or 0 (some other writers).
//!
//! symphonia reads a `0xFFFFFFFF` file to its end but then reports an unexpected end of file,
//! so the upload would be flagged (and logged) as truncated; it finds no samples in a `data`
//! size of 0, and refuses a RIFF size of 0 outright. Since an upload is whole in memory, the
//! reader is handed the bytes with those sizes replaced by the real ones, as an overlay:
//! nothing is copied.

use std::io::{Cursor, Read, Seek, SeekFrom};

use symphonia::core::io::MediaSource;

use super::encode::WAV_UNKNOWN_SIZE;

/// A 4-byte little-endian size to overwrite at a byte offset.
type Patch = (usize, [u8; 4]);

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn is_unknown(size: u32) -> bool {
    size == 0 || size == WAV_UNKNOWN_SIZE
}

/// The size fields of a RIFF/WAVE file that declare "unknown" and the real values for them
/// (the `data` chunk running to the end of the file). Empty for a file with real sizes, and
/// for one whose `data` chunk is absent or empty.
pub(crate) fn unknown_size_patches(bytes: &[u8]) -> Vec<Patch> {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(WAV_UNKNOWN_SIZE - 1);
    let mut patches = Vec::new();
    let Some(riff) = u32_at(bytes, 4) else {
        return patches;
    };
    // Walk the chunks after "RIFF <size> WAVE" up to `data`.
    let mut at = 12usize;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), u32_at(bytes, at + 4)) {
        let body = at + 8;
        if id == b"data" {
            if is_unknown(len) && body < bytes.len() {
                patches.push((at + 4, clamp(bytes.len() - body).to_le_bytes()));
            }
            break;
        }
        let Some(next) = usize::try_from(len)
            .ok()
            .and_then(|l| body.checked_add(l)?.checked_add(l & 1))
        else {
            break;
        };
        at = next;
    }
    if is_unknown(riff) && !patches.is_empty() {
        patches.push((4, clamp(bytes.len() - 8).to_le_bytes()));
    }
    patches
}

/// In-memory bytes read through a few overwritten 4-byte fields.
pub(crate) struct Patched<'a> {
    cursor: Cursor<&'a [u8]>,
    patches: Vec<Patch>,
}

impl<'a> Patched<'a> {
    pub(crate) fn new(bytes: &'a [u8], patches: Vec<Patch>) -> Self {
        Self {
            cursor: Cursor::new(bytes),
            patches,
        }
    }
}

impl Read for Patched<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let start = usize::try_from(self.cursor.position()).unwrap_or(usize::MAX);
        let n = self.cursor.read(buf)?;
        for (offset, value) in &self.patches {
            for (i, byte) in value.iter().enumerate() {
                if let Some(rel) = (offset + i).checked_sub(start).filter(|rel| *rel < n) {
                    buf[rel] = *byte;
                }
            }
        }
        Ok(n)
    }
}

impl Seek for Patched<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.cursor.seek(pos)
    }
}

impl MediaSource for Patched<'_> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.cursor.get_ref().len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(riff: u32, data: u32, samples: usize) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&riff.to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&[1, 0, 1, 0, 0x80, 0x3E, 0, 0, 0, 0x7D, 0, 0, 2, 0, 16, 0]);
        v.extend_from_slice(b"data");
        v.extend_from_slice(&data.to_le_bytes());
        v.extend(std::iter::repeat_n(7u8, samples * 2));
        v
    }

    fn read_all(bytes: &[u8], patches: Vec<Patch>) -> Vec<u8> {
        let mut p = Patched::new(bytes, patches);
        let mut out = Vec::new();
        let mut buf = [0u8; 5]; // reads that straddle the patched fields
        loop {
            let n = p.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn unknown_sizes_become_the_real_ones() {
        for (riff, data) in [(u32::MAX, u32::MAX), (0, 0), (u32::MAX, 0)] {
            let bytes = wav(riff, data, 100);
            let patches = unknown_size_patches(&bytes);
            assert_eq!(patches.len(), 2);
            let fixed = read_all(&bytes, patches);
            assert_eq!(u32_at(&fixed, 4), Some(36 + 200));
            assert_eq!(u32_at(&fixed, 40), Some(200));
            assert_eq!(&fixed[..4], b"RIFF");
            assert_eq!(&fixed[44..], &bytes[44..]);
        }
    }

    #[test]
    fn real_sizes_and_empty_data_are_left_alone() {
        assert!(unknown_size_patches(&wav(236, 200, 100)).is_empty());
        assert!(unknown_size_patches(&wav(36, 0, 0)).is_empty());
        assert!(unknown_size_patches(&wav(u32::MAX, u32::MAX, 0)).is_empty());
        assert!(unknown_size_patches(b"RIFF").is_empty());
        // A lying (too large) but known size is the truncation policy's business.
        assert!(unknown_size_patches(&wav(1000, 964, 100)).is_empty());
    }
}
