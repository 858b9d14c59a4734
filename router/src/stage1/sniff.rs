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
    let kind = infer::get(data)?;
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
