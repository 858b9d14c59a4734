//! Recognises an audio container from its first bytes.

use crate::MediaError;

/// Containers we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    Wav,
    Mp3,
    Flac,
    Ogg,
}

impl Container {
    /// Name used in error messages.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Mp3 => "MP3",
            Container::Flac => "FLAC",
            Container::Ogg => "Ogg",
        }
    }
}

/// The container the bytes start with.
pub(crate) fn sniff(bytes: &[u8]) -> Result<Container, MediaError> {
    if bytes.starts_with(b"RIFF") {
        if bytes.len() < 12 {
            return Err(MediaError::Truncated {
                format: "WAV",
                detail: format!("only {} bytes, the RIFF header needs 12", bytes.len()),
            });
        }
        if &bytes[8..12] == b"WAVE" {
            return Ok(Container::Wav);
        }
        return Err(MediaError::UnrecognizedAudio);
    }
    if bytes.starts_with(b"fLaC") {
        return Ok(Container::Flac);
    }
    if bytes.starts_with(b"OggS") {
        return Ok(Container::Ogg);
    }
    if bytes.starts_with(b"ID3") || switchyard_core::sniff::mpeg_audio_layer(bytes).is_some() {
        return Ok(Container::Mp3);
    }
    Err(MediaError::UnrecognizedAudio)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magic_numbers() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt ").unwrap(), Container::Wav);
        assert_eq!(sniff(b"fLaC\0\0\0\"").unwrap(), Container::Flac);
        assert_eq!(sniff(b"OggS\0\x02").unwrap(), Container::Ogg);
        assert_eq!(sniff(b"ID3\x04\0").unwrap(), Container::Mp3);
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]).unwrap(), Container::Mp3);
        assert_eq!(
            sniff(b"hello world").unwrap_err(),
            MediaError::UnrecognizedAudio
        );
        assert!(matches!(
            sniff(b"RIFF\0\0"),
            Err(MediaError::Truncated { .. })
        ));
    }
}
