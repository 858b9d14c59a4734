//! Audio encoding for responses (text-to-speech output).

use std::io::Cursor;

use tracing::debug_span;

use super::resample::resample;
use crate::MediaError;

/// Rate of the raw `pcm` format: OpenAI's `pcm` response format is 24 kHz, 16-bit signed
/// little-endian, mono, without a header.
pub const PCM_RATE: u32 = 24_000;

/// A response audio format (OpenAI's `response_format` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// 16-bit PCM WAV, mono, at the samples' own rate.
    Wav,
    /// Raw s16le mono at 24 kHz (resampled), no header.
    Pcm,
    /// FLAC (not encodable yet).
    Flac,
    /// MP3 (not encodable yet).
    Mp3,
    /// Opus in Ogg (not encodable yet).
    Opus,
    /// AAC (not encodable yet).
    Aac,
}

impl AudioFormat {
    /// Parses a format name (case-insensitive): `wav`, `pcm`, `flac`, `mp3`, `opus`, `aac`.
    pub fn parse(name: &str) -> Result<Self, MediaError> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "wav" => AudioFormat::Wav,
            "pcm" => AudioFormat::Pcm,
            "flac" => AudioFormat::Flac,
            "mp3" => AudioFormat::Mp3,
            "opus" => AudioFormat::Opus,
            "aac" => AudioFormat::Aac,
            _ => {
                return Err(MediaError::UnknownAudioFormat {
                    given: name.to_owned(),
                })
            }
        })
    }

    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            AudioFormat::Wav => "wav",
            AudioFormat::Pcm => "pcm",
            AudioFormat::Flac => "flac",
            AudioFormat::Mp3 => "mp3",
            AudioFormat::Opus => "opus",
            AudioFormat::Aac => "aac",
        }
    }

    /// The HTTP content type of the encoded bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Mp3 => "audio/mpeg",
            AudioFormat::Opus => "audio/ogg",
            AudioFormat::Aac => "audio/aac",
        }
    }

    /// Whether [`encode`] can produce this format.
    pub fn is_supported(self) -> bool {
        matches!(self, AudioFormat::Wav | AudioFormat::Pcm)
    }
}

/// One f32 sample in [-1, 1] as s16 (clipped; NaN becomes 0).
fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Encodes mono `samples` at `rate` Hz. `Wav`: 16-bit PCM WAV at `rate`. `Pcm`: raw s16le at
/// [`PCM_RATE`] (resampled when `rate` differs). Other formats: [`MediaError::UnsupportedEncoding`].
pub fn encode(samples: &[f32], rate: u32, format: AudioFormat) -> Result<Vec<u8>, MediaError> {
    let span = debug_span!(
        "media.audio.encode",
        format = format.name(),
        rate,
        frames = samples.len()
    );
    let _guard = span.enter();
    if rate == 0 {
        return Err(MediaError::InvalidSampleRate { rate });
    }
    match format {
        AudioFormat::Wav => encode_wav(samples, rate),
        AudioFormat::Pcm => {
            let resampled;
            let at_24k = if rate == PCM_RATE {
                samples
            } else {
                resampled = resample(samples, rate, PCM_RATE)?;
                &resampled
            };
            Ok(at_24k
                .iter()
                .flat_map(|x| to_i16(*x).to_le_bytes())
                .collect())
        }
        other => Err(MediaError::UnsupportedEncoding {
            format: other.name(),
        }),
    }
}

fn encode_wav(samples: &[f32], rate: u32) -> Result<Vec<u8>, MediaError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let encode_err = |e: hound::Error| MediaError::Encode(e.to_string());
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(encode_err)?;
    for x in samples {
        writer.write_sample(to_i16(*x)).map_err(encode_err)?;
    }
    writer.finalize().map_err(encode_err)?;
    Ok(out.into_inner())
}
