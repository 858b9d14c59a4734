//! Audio encoding for responses (text-to-speech output): a whole clip at once ([`encode`]),
//! or piece by piece as it is produced ([`StreamEncoder`]).
//!
//! | format | codec                      | whole clip                 | streamed                          |
//! |--------|----------------------------|----------------------------|-----------------------------------|
//! | `wav`  | 16-bit PCM at the own rate | exact RIFF/`data` sizes    | sizes `0xFFFFFFFF` (unknown)      |
//! | `pcm`  | s16le, 24 kHz, no header   | resampled                  | each piece resampled on its own   |
//! | `mp3`  | LAME, CBR 64 kbit/s, mono  | as streamed                | MP3 frames as LAME completes them |
//! | `opus` | libopus 32 kbit/s in Ogg   | as streamed                | closed Ogg pages of 20 ms packets |
//! | `flac` | flacenc, 16-bit            | exact STREAMINFO, MD5      | STREAMINFO "unknown" (0) lengths  |
//! | `aac`  | none (no maintained encoder crate): [`MediaError::UnsupportedEncoding`]   |||
//!
//! A streamed file is a valid file at every piece boundary once [`StreamEncoder::finish`]
//! has appended its tail; the concatenation of all pieces is the whole file.

use tracing::debug_span;

use super::resample::resample;
use crate::MediaError;

mod flac;
mod mp3;
mod ogg_opus;
mod wav;

pub(crate) use wav::UNKNOWN_SIZE as WAV_UNKNOWN_SIZE;

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
    /// FLAC, 16-bit mono at the samples' own rate.
    Flac,
    /// MP3 (MPEG-1/2/2.5 layer III), mono, 64 kbit/s CBR.
    Mp3,
    /// Opus in Ogg, mono, 48 kHz, 32 kbit/s.
    Opus,
    /// AAC (not encodable: no maintained encoder crate).
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
            AudioFormat::Opus => "audio/ogg; codecs=opus",
            AudioFormat::Aac => "audio/aac",
        }
    }

    /// Whether [`encode`] and [`StreamEncoder`] can produce this format.
    pub fn is_supported(self) -> bool {
        Self::ENCODABLE.contains(&self)
    }

    /// The formats that can be encoded, in the order error messages list them.
    pub const ENCODABLE: [AudioFormat; 5] = [
        AudioFormat::Wav,
        AudioFormat::Pcm,
        AudioFormat::Mp3,
        AudioFormat::Opus,
        AudioFormat::Flac,
    ];

    /// The names of [`AudioFormat::ENCODABLE`], comma-separated (`wav, pcm, mp3, opus, flac`).
    pub fn encodable_names() -> String {
        Self::ENCODABLE.map(AudioFormat::name).join(", ")
    }
}

/// One f32 sample in [-1, 1] as s16 (clipped; NaN becomes 0).
fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Resamples to [`PCM_RATE`] when `rate` differs.
fn pcm_24k(samples: &[f32], rate: u32, out: &mut Vec<u8>) -> Result<(), MediaError> {
    if rate == PCM_RATE {
        wav::push_s16(samples, out);
    } else {
        wav::push_s16(&resample(samples, rate, PCM_RATE)?, out);
    }
    Ok(())
}

/// Encodes mono `samples` at `rate` Hz as one whole file. `Wav`: 16-bit PCM WAV at `rate`
/// with exact sizes. `Pcm`: raw s16le at [`PCM_RATE`] (resampled when `rate` differs). `Flac`:
/// with exact STREAMINFO. `Mp3`, `Opus`: as [`StreamEncoder`] makes them. `Aac`:
/// [`MediaError::UnsupportedEncoding`].
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
        AudioFormat::Wav => wav::encode(samples, rate),
        AudioFormat::Flac => flac::encode(samples, rate),
        AudioFormat::Pcm => {
            let mut out = Vec::with_capacity(samples.len() * 2);
            pcm_24k(samples, rate, &mut out)?;
            Ok(out)
        }
        AudioFormat::Mp3 | AudioFormat::Opus => {
            let mut encoder = StreamEncoder::new(format, rate)?;
            let mut out = encoder.push(samples)?;
            out.extend(encoder.finish()?);
            Ok(out)
        }
        AudioFormat::Aac => Err(MediaError::UnsupportedEncoding {
            format: format.name(),
        }),
    }
}

enum Codec {
    Pcm,
    Wav { header_sent: bool },
    Mp3(Box<mp3::Mp3Stream>),
    Opus(Box<ogg_opus::OpusStream>),
    Flac(Box<flac::FlacStream>),
}

/// Encodes a clip that is produced piece by piece (e.g. sentence by sentence), handing out
/// the bytes that are ready after each piece, so that a response can stream them at once.
///
/// The concatenation of every [`StreamEncoder::push`] result and the [`StreamEncoder::finish`]
/// tail is one file of the format. Lengths that a header would need are written as unknown
/// (WAV: `0xFFFFFFFF`, FLAC: 0); the module documentation lists each format's details.
pub struct StreamEncoder {
    codec: Codec,
    format: AudioFormat,
    rate: u32,
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("format", &self.format)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl StreamEncoder {
    /// An encoder of mono audio at `rate` Hz into `format`. Errors: a zero rate,
    /// [`MediaError::UnsupportedEncoding`] for `aac`, and encoder set-up failures.
    pub fn new(format: AudioFormat, rate: u32) -> Result<Self, MediaError> {
        if rate == 0 {
            return Err(MediaError::InvalidSampleRate { rate });
        }
        let codec = match format {
            AudioFormat::Pcm => Codec::Pcm,
            AudioFormat::Wav => Codec::Wav { header_sent: false },
            AudioFormat::Mp3 => Codec::Mp3(Box::new(mp3::Mp3Stream::new(rate)?)),
            AudioFormat::Opus => Codec::Opus(Box::new(ogg_opus::OpusStream::new(rate)?)),
            AudioFormat::Flac => Codec::Flac(Box::new(flac::FlacStream::new(rate)?)),
            AudioFormat::Aac => {
                return Err(MediaError::UnsupportedEncoding {
                    format: format.name(),
                })
            }
        };
        Ok(Self {
            codec,
            format,
            rate,
        })
    }

    /// The format being written.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// Encodes the next piece of audio; returns the bytes ready to send (the header comes
    /// with the first piece; may be empty when the codec waits for a whole block).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, MediaError> {
        let span = debug_span!(
            "media.audio.encode_piece",
            format = self.format.name(),
            rate = self.rate,
            frames = samples.len()
        );
        let _guard = span.enter();
        let mut out = Vec::new();
        match &mut self.codec {
            Codec::Pcm => pcm_24k(samples, self.rate, &mut out)?,
            Codec::Wav { header_sent } => {
                if !*header_sent {
                    out.extend_from_slice(&wav::header(self.rate, None));
                    *header_sent = true;
                }
                wav::push_s16(samples, &mut out);
            }
            Codec::Mp3(s) => s.push(samples, &mut out)?,
            Codec::Opus(s) => s.push(samples, &mut out)?,
            Codec::Flac(s) => s.push(samples, &mut out)?,
        }
        Ok(out)
    }

    /// Ends the file: the bytes the encoder still held (the last MP3 frames, the last Opus
    /// page, the last FLAC block; a bare header when nothing was pushed).
    pub fn finish(self) -> Result<Vec<u8>, MediaError> {
        let mut out = Vec::new();
        match self.codec {
            Codec::Pcm => {}
            Codec::Wav { header_sent } => {
                if !header_sent {
                    out.extend_from_slice(&wav::header(self.rate, Some(0)));
                }
            }
            Codec::Mp3(s) => s.finish(&mut out)?,
            Codec::Opus(s) => s.finish(&mut out)?,
            Codec::Flac(s) => s.finish(&mut out)?,
        }
        Ok(out)
    }
}
