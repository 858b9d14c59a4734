//! Audio decoding: probe, decode, downmix, resample into the caller's buffer.

use std::io::{Cursor, ErrorKind};

use switchyard_core::{BufferAlloc, CopyLedger};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use tracing::{debug, info_span, warn};

use super::ogg_opus;
use super::resample::resample_into;
use super::sniff::{sniff, Container};
use super::streamed_wav::{unknown_size_patches, Patched};
use super::{AudioLimits, DecodedAudio, TARGET_RATE};
use crate::MediaError;

/// Undecodable packets tolerated before the stream is declared corrupt, when they are also
/// more than a quarter of all packets.
const MAX_BAD_PACKETS: usize = 3;

/// Decodes an audio upload into 16 kHz mono f32 samples written into a tensor from `alloc`.
///
/// The container is detected from the bytes. The upload is refused before decoding when it is
/// over `limits.max_bytes`, or when its header declares more than `limits.max_seconds`;
/// without a declared length, decoding stops as soon as the limit is passed. Copies recorded
/// on `ledger`: `decode` (the f32 PCM taken out of the decoder, all channels) and `resample`
/// (the final 16 kHz samples written into the tensor, an identity copy for 16 kHz sources).
pub fn decode(
    bytes: &[u8],
    limits: &AudioLimits,
    alloc: &dyn BufferAlloc,
    ledger: &CopyLedger,
) -> Result<DecodedAudio, MediaError> {
    let span = info_span!("media.audio.decode", bytes = bytes.len());
    let _guard = span.enter();
    if bytes.is_empty() {
        return Err(MediaError::Empty { kind: "audio" });
    }
    if bytes.len() > limits.max_bytes {
        return Err(MediaError::TooLarge {
            kind: "audio",
            bytes: bytes.len(),
            max_bytes: limits.max_bytes,
        });
    }
    let container = sniff(bytes)?;
    let pcm = if container == Container::Ogg && ogg_opus::is_ogg_opus(bytes) {
        decode_opus(bytes, limits)?
    } else {
        decode_mono(bytes, container, limits)?
    };
    ledger.record("decode", pcm.copied_bytes);
    let samples = resample_into(&pcm.mono, pcm.rate, TARGET_RATE, alloc)?;
    ledger.record("resample", samples.nbytes());
    debug!(
        codec = pcm.codec,
        rate = pcm.rate,
        channels = pcm.channels,
        frames = pcm.mono.len(),
        out = samples.numel(),
        "decoded audio"
    );
    Ok(DecodedAudio {
        samples,
        source_rate: pcm.rate,
        channels: pcm.channels,
        seconds: pcm.mono.len() as f64 / f64::from(pcm.rate),
        codec: pcm.codec.to_owned(),
        truncated: pcm.truncated,
    })
}

/// Mono PCM at the source rate.
struct MonoPcm {
    mono: Vec<f32>,
    rate: u32,
    channels: u16,
    codec: &'static str,
    truncated: bool,
    /// Bytes of f32 PCM copied out of the decoder (all channels).
    copied_bytes: usize,
}

/// Maps a symphonia error met while reading headers.
fn header_error(container: Container, err: SymError) -> MediaError {
    let format = container.name();
    match err {
        SymError::IoError(e) if e.kind() == ErrorKind::UnexpectedEof => MediaError::Truncated {
            format,
            detail: "the file ends inside its header".into(),
        },
        SymError::IoError(e) => MediaError::Truncated {
            format,
            detail: e.to_string(),
        },
        SymError::Unsupported(what) => MediaError::Unsupported {
            format,
            detail: what.into(),
        },
        other => MediaError::Corrupt {
            format,
            detail: other.to_string(),
        },
    }
}

fn open(bytes: &[u8], container: Container) -> Result<Box<dyn FormatReader + '_>, MediaError> {
    let patches = match container {
        Container::Wav => unknown_size_patches(bytes),
        _ => Vec::new(),
    };
    let source: Box<dyn MediaSource + '_> = if patches.is_empty() {
        Box::new(Cursor::new(bytes))
    } else {
        debug!("WAV with unknown sizes (streamed): its data runs to the end of the file");
        Box::new(Patched::new(bytes, patches))
    };
    let mss = MediaSourceStream::new(source, Default::default());
    symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| match e {
            // The signature matched but no reader accepts what follows it.
            SymError::Unsupported(what) if what.starts_with("core (probe)") => {
                MediaError::Corrupt {
                    format: container.name(),
                    detail: format!("no valid {} stream follows its signature", container.name()),
                }
            }
            other => header_error(container, other),
        })
}

fn too_long(frames: u64, rate: u32, limits: &AudioLimits) -> Option<MediaError> {
    let seconds = frames as f64 / f64::from(rate);
    (seconds > limits.max_seconds).then_some(MediaError::TooLong {
        seconds,
        max_seconds: limits.max_seconds,
    })
}

fn decode_mono(
    bytes: &[u8],
    container: Container,
    limits: &AudioLimits,
) -> Result<MonoPcm, MediaError> {
    let format_name = container.name();
    let mut reader = open(bytes, container)?;
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or(MediaError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(MediaError::NoAudioTrack)?
        .clone();
    let rate = params
        .sample_rate
        .filter(|r| *r > 0)
        .ok_or_else(|| MediaError::Corrupt {
            format: format_name,
            detail: "the header declares no sample rate".into(),
        })?;
    if let Some(err) = track.num_frames.and_then(|n| too_long(n, rate, limits)) {
        return Err(err);
    }
    let max_frames = (limits.max_seconds * f64::from(rate)).ceil() as u64;
    let declared = track.num_frames.unwrap_or(0).min(max_frames);
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| header_error(container, e))?;
    let codec = decoder.codec_info().short_name;

    let mut mono: Vec<f32> = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut scratch: Vec<f32> = Vec::new();
    let mut channels = params.channels.as_ref().map_or(0, |c| c.count());
    let (mut packets, mut bad, mut copied_bytes) = (0usize, 0usize, 0usize);
    let mut last_error = String::new();
    let mut truncated = false;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                truncated = true;
                break;
            }
            Err(SymError::ResetRequired) => break,
            Err(e) => {
                bad += 1;
                last_error = e.to_string();
                if bad > MAX_BAD_PACKETS {
                    break;
                }
                continue;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        packets += 1;
        match decoder.decode(&packet) {
            Ok(buf) => {
                let ch = buf.spec().channels().count().max(1);
                channels = ch;
                scratch.resize(buf.frames() * ch, 0.0);
                buf.copy_to_slice_interleaved::<f32, _>(&mut scratch[..]);
                copied_bytes += std::mem::size_of_val(&scratch[..]);
                downmix(&scratch, ch, &mut mono);
            }
            Err(SymError::IoError(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                truncated = true;
                break;
            }
            Err(e) => {
                bad += 1;
                last_error = e.to_string();
            }
        }
        if let Some(err) = too_long(mono.len() as u64, rate, limits) {
            return Err(err);
        }
    }
    if bad > 0 && (mono.is_empty() || (bad > MAX_BAD_PACKETS && bad * 4 > packets)) {
        return Err(MediaError::Corrupt {
            format: format_name,
            detail: format!("{bad} of {packets} audio frames could not be decoded ({last_error})"),
        });
    }
    if mono.is_empty() {
        if truncated {
            return Err(MediaError::Truncated {
                format: format_name,
                detail: "the file ends before its first complete audio frame".into(),
            });
        }
        return Err(MediaError::ZeroSamples);
    }
    if truncated {
        warn!(
            format = format_name,
            frames = mono.len(),
            "audio file is truncated inside its data; decoded the part present"
        );
    }
    Ok(MonoPcm {
        mono,
        rate,
        channels: u16::try_from(channels).unwrap_or(u16::MAX),
        codec,
        truncated,
        copied_bytes,
    })
}

/// Ogg Opus, which symphonia does not decode (libopus does, at 48 kHz mono).
fn decode_opus(bytes: &[u8], limits: &AudioLimits) -> Result<MonoPcm, MediaError> {
    let pcm = ogg_opus::decode(bytes, limits)?;
    if pcm.truncated {
        warn!(
            format = "Ogg Opus",
            frames = pcm.mono.len(),
            "audio file is truncated inside its data; decoded the part present"
        );
    }
    Ok(MonoPcm {
        copied_bytes: std::mem::size_of_val(&pcm.mono[..]),
        mono: pcm.mono,
        rate: ogg_opus::OPUS_RATE,
        channels: pcm.channels,
        codec: "opus",
        truncated: pcm.truncated,
    })
}

/// Appends the average of each interleaved frame to `mono`.
fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    if channels == 1 {
        mono.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() * scale),
    );
}
