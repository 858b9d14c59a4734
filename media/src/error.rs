//! [`MediaError`]: why a media file was refused. Every message is written for the API caller
//! (the gateway returns it as an HTTP 400 body, except [`MediaError::is_client_error`] false).

use switchyard_core::TensorError;
use thiserror::Error;

/// Why decoding, resampling or encoding media failed.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MediaError {
    /// The upload has no bytes at all.
    #[error("the {kind} file is empty (0 bytes)")]
    Empty {
        /// `audio` or `image`.
        kind: &'static str,
    },
    /// The upload is larger than the configured limit (checked before decoding).
    #[error("the {kind} file is {bytes} bytes, over the limit of {max_bytes} bytes")]
    TooLarge {
        /// `audio` or `image`.
        kind: &'static str,
        /// Size of the upload.
        bytes: usize,
        /// Configured limit.
        max_bytes: usize,
    },
    /// The bytes are not one of the audio containers we decode (detected from the content,
    /// never from the file name).
    #[error(
        "not a recognised audio file: expected WAV, MP3, FLAC, Ogg Vorbis or Ogg Opus (the format is \
         detected from the file's bytes, not its name)"
    )]
    UnrecognizedAudio,
    /// The file ends before its header does (or a required part is missing).
    #[error("the {format} file is truncated: {detail}")]
    Truncated {
        /// Container or image format.
        format: &'static str,
        /// What was missing.
        detail: String,
    },
    /// The stream is malformed (bad headers, undecodable frames).
    #[error("the {format} data is corrupt: {detail}")]
    Corrupt {
        /// Container or image format.
        format: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The container or codec variant is recognised but not supported.
    #[error("unsupported {format} variant: {detail}")]
    Unsupported {
        /// Container or image format.
        format: &'static str,
        /// What is unsupported.
        detail: String,
    },
    /// The audio is longer than the configured limit. `seconds` is the length the header
    /// declares, or (without one) how far decoding got before it stopped.
    #[error("the audio is {seconds:.1} s long, over the limit of {max_seconds} s")]
    TooLong {
        /// Length found (declared or decoded so far).
        seconds: f64,
        /// Configured limit.
        max_seconds: f64,
    },
    /// The file holds no audio track (e.g. an Ogg file with only a video or text stream).
    #[error("the file contains no audio track")]
    NoAudioTrack,
    /// The audio track decoded to zero samples.
    #[error("the audio contains no samples")]
    ZeroSamples,
    /// The bytes are not a PNG, JPEG or WebP image.
    #[error("not a PNG/JPEG/WebP image{}", found.map(|f| format!(" ({f} is not supported)")).unwrap_or_default())]
    NotAnImage {
        /// A recognised but unsupported image format, when there is one.
        found: Option<&'static str>,
    },
    /// The image header declares more pixels than allowed (checked before decoding).
    #[error(
        "the image is {width}x{height} ({pixels} pixels), over the limit of {max_pixels} pixels"
    )]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// width × height.
        pixels: u64,
        /// Configured limit.
        max_pixels: u64,
    },
    /// A response audio format name we do not know.
    #[error("unknown audio format '{given}'; expected one of: wav, pcm, flac, mp3, opus, aac")]
    UnknownAudioFormat {
        /// What the caller asked for.
        given: String,
    },
    /// A known audio format we cannot encode.
    #[error(
        "encoding audio as {format} is not supported; supported formats: wav, pcm, mp3, opus, flac"
    )]
    UnsupportedEncoding {
        /// The format asked for.
        format: &'static str,
    },
    /// A sample rate of zero (or one too large for the resampler).
    #[error("invalid sample rate {rate} Hz")]
    InvalidSampleRate {
        /// The rate given.
        rate: u32,
    },
    /// The resampler failed (an internal error).
    #[error("resampling failed: {0}")]
    Resample(String),
    /// The WAV encoder failed (an internal error).
    #[error("audio encoding failed: {0}")]
    Encode(String),
    /// The output buffer could not be allocated (an internal error).
    #[error("cannot allocate the output buffer: {0}")]
    Alloc(#[from] TensorError),
}

impl MediaError {
    /// Whether the caller's input is at fault (HTTP 400) rather than the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            MediaError::Resample(_) | MediaError::Encode(_) | MediaError::Alloc(_)
        )
    }
}
