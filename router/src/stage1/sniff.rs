//! Content sniffing: what binary parts really are, whatever their claimed type says.

use serde::Serialize;

use crate::request::Claimed;

/// What a binary part turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sniffed {
    /// `image` or `audio`.
    pub kind: Claimed,
    /// Short format name (`png`, `jpg`, `webp`, `wav`, `mp3`, `flac`, `ogg`, ...).
    pub format: &'static str,
    /// MIME type.
    pub mime: &'static str,
    /// Size in bytes.
    pub bytes: usize,
}

/// Why a part could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniffError {
    /// Empty data.
    Empty,
    /// Not a recognised image or audio format.
    Unknown,
    /// A recognised format of the other kind (an "image" that is audio).
    Mismatch {
        /// What the client claimed.
        claimed: Claimed,
        /// What it is.
        actual: Sniffed,
    },
}

/// Recognises images (png, jpeg, webp, gif, bmp, tiff) and audio (wav, mp3, flac, ogg, m4a,
/// aac) by their leading bytes.
pub fn sniff(data: &[u8]) -> Option<Sniffed> {
    let Some(kind) = infer::get(data) else {
        // An MP3 that starts with a bare frame header (no ID3 tag) other than the MPEG-1
        // `FF FB` that `infer` knows: MPEG-2/2.5 (the 16–24 kHz rates of speech) or with CRC.
        let layer3 = switchyard_core::sniff::mpeg_audio_layer(data) == Some(3);
        return layer3.then_some(Sniffed {
            kind: Claimed::Audio,
            format: "mp3",
            mime: "audio/mpeg",
            bytes: data.len(),
        });
    };
    let class = match kind.matcher_type() {
        infer::MatcherType::Image => Claimed::Image,
        infer::MatcherType::Audio => Claimed::Audio,
        _ => return None,
    };
    Some(Sniffed {
        kind: class,
        format: kind.extension(),
        mime: kind.mime_type(),
        bytes: data.len(),
    })
}

/// Sniffs a part and checks it is what the client claimed.
pub fn check(claimed: Claimed, data: &[u8]) -> Result<Sniffed, SniffError> {
    if data.is_empty() {
        return Err(SniffError::Empty);
    }
    let actual = sniff(data).ok_or(SniffError::Unknown)?;
    if actual.kind != claimed {
        return Err(SniffError::Mismatch { claimed, actual });
    }
    Ok(actual)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0";

    #[test]
    fn recognises_by_content() {
        assert_eq!(sniff(PNG).unwrap().format, "png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF").unwrap().format, "jpg");
        assert_eq!(sniff(WAV).unwrap().kind, Claimed::Audio);
        assert_eq!(sniff(b"fLaC\0\0\0\x22").unwrap().format, "flac");
        assert_eq!(sniff(b"OggS\0\x02\0\0\0\0").unwrap().kind, Claimed::Audio);
        // MP3 frames without an ID3 tag: MPEG-1, MPEG-2 (22.05 kHz speech), MPEG-2.5, CRC.
        for header in [
            [0xFF, 0xFB, 0x90],
            [0xFF, 0xF3, 0x80],
            [0xFF, 0xE3, 0x40],
            [0xFF, 0xFA, 0x90],
        ] {
            let s = sniff(&header).unwrap();
            assert_eq!((s.kind, s.format), (Claimed::Audio, "mp3"), "{header:x?}");
        }
        // Not layer III, or a free/bad bitrate: not taken for MP3.
        assert!(sniff(&[0xFF, 0xFD, 0x90]).is_none());
        assert!(sniff(&[0xFF, 0xF3, 0xF0]).is_none());
    }

    #[test]
    fn refuses_unknown_empty_and_mismatched() {
        assert_eq!(check(Claimed::Image, b""), Err(SniffError::Empty));
        assert_eq!(
            check(Claimed::Image, b"hello, not an image"),
            Err(SniffError::Unknown)
        );
        assert!(matches!(
            check(Claimed::Image, WAV),
            Err(SniffError::Mismatch { .. })
        ));
        assert!(matches!(
            check(Claimed::Audio, PNG),
            Err(SniffError::Mismatch { .. })
        ));
        assert!(check(Claimed::Image, PNG).is_ok());
    }
}
