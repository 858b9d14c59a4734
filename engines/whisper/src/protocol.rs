//! The wire protocol between [`crate::WhisperHost`] and the `switchyard-whisper-worker` process.
//!
//! One Unix stream socket, one request at a time. Every frame is a little-endian `u32` byte
//! length followed by that many bytes of JSON. A [`Request`] frame carries exactly one file
//! descriptor as `SCM_RIGHTS` ancillary data: the memfd holding the audio, which the worker maps
//! read-only and views through [`Request::tensor`] (a DLPack-style [`TensorMeta`]: dtype `f32`,
//! shape `[n]`, strides, byte offset). The worker answers each request with one [`Response`]
//! frame (no fd). Closing the socket ends the worker.
//!
//! ```text
//! host → worker: u32 len | {"id":7,"tensor":{"dtype":"f32","shape":[16000],"strides":[1],
//!                           "byte_offset":0,"device":{"kind":"cpu"}},
//!                           "options":{"language":"en","initial_prompt":null,
//!                           "temperature":0.0,"threads":2}}        + SCM_RIGHTS [memfd]
//! worker → host: u32 len | {"id":7,"status":"ok","text":"...","segments":[{"start_s":0.0,
//!                           "end_s":1.2,"text":"..."}],"timings":{...}}
//!             or u32 len | {"id":7,"status":"error","message":"..."}
//! ```

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};
use switchyard_core::TensorMeta;

/// Largest frame either side accepts (a transcript of a long file is far below this).
pub const MAX_FRAME: usize = 16 << 20;

/// Decoding options for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeOptions {
    /// Spoken language (ISO 639-1, e.g. `en`); `None` lets a multilingual model detect it.
    pub language: Option<String>,
    /// Text that primes the decoder (names, spelling, style).
    pub initial_prompt: Option<String>,
    /// Sampling temperature; 0 is greedy (whisper.cpp raises it on decoding failures).
    pub temperature: f32,
    /// Threads for this request; `None` uses the host's configured count.
    pub threads: Option<u32>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            language: Some("en".into()),
            initial_prompt: None,
            temperature: 0.0,
            threads: None,
        }
    }
}

/// One transcription request (the audio travels as the attached fd).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Request id, echoed in the response.
    pub id: u64,
    /// Layout of the audio inside the shared buffer.
    pub tensor: TensorMeta,
    /// Decoding options (`threads` already resolved by the host).
    pub options: TranscribeOptions,
}

/// A timed piece of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Start, seconds from the beginning of the audio.
    pub start_s: f32,
    /// End, seconds from the beginning of the audio.
    pub end_s: f32,
    /// Text of the segment.
    pub text: String,
    /// The segment's text token ids (special and timestamp tokens left out).
    #[serde(default)]
    pub tokens: Vec<i32>,
    /// Mean log-probability of those tokens (0 when there are none).
    #[serde(default)]
    pub avg_logprob: f32,
    /// whisper.cpp's probability that the segment holds no speech.
    #[serde(default)]
    pub no_speech_prob: f32,
}

/// Where the worker spent its time on one request, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerTimings {
    /// Mapping and validating the shared buffer.
    pub map_ms: f64,
    /// whisper.cpp `full()` (mel, encoder, decoder).
    pub inference_ms: f64,
    /// Threads whisper.cpp used.
    pub threads: u32,
}

/// The worker's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// Result.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A transcript or the reason there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Transcribed.
    Ok {
        /// Full text (segments joined).
        text: String,
        /// Timed segments.
        segments: Vec<Segment>,
        /// Worker-side timings.
        timings: WorkerTimings,
    },
    /// The request failed; the worker is still usable.
    Error {
        /// Why.
        message: String,
    },
}

/// Writes one frame, attaching `fd` (if any) to its first byte.
pub fn write_frame(
    stream: &UnixStream,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {MAX_FRAME}", payload.len()),
        ));
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut written = 0;
    if let Some(fd) = fd {
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("ancillary buffer too small for one fd"));
        }
        written = sendmsg(
            stream.as_fd(),
            &[IoSlice::new(&len), IoSlice::new(payload)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
    }
    let mut w = stream;
    let total = len.len() + payload.len();
    if written < len.len() {
        w.write_all(&len[written..])?;
        w.write_all(payload)?;
    } else if written < total {
        w.write_all(&payload[written - len.len()..])?;
    }
    w.flush()
}

/// Reads one frame, collecting any file descriptors that arrive with it. Returns `Ok(None)` on
/// a clean end of stream before the frame starts.
pub fn read_frame(stream: &UnixStream) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut fds = Vec::new();
    let mut len = [0u8; 4];
    if !recv_exact(stream, &mut len, &mut fds, true)? {
        return Ok(None);
    }
    let n = u32::from_le_bytes(len) as usize;
    if n > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer announced a frame of {n} bytes (max {MAX_FRAME})"),
        ));
    }
    let mut payload = vec![0u8; n];
    recv_exact(stream, &mut payload, &mut fds, false)?;
    Ok(Some((payload, fds)))
}

/// Fills `buf`, gathering fds. `Ok(false)` if the stream ended before the first byte and
/// `eof_ok`; an error if it ended in the middle.
fn recv_exact(
    stream: &UnixStream,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    eof_ok: bool,
) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = loop {
            match recvmsg(
                stream.as_fd(),
                &mut [IoSliceMut::new(&mut buf[filled..])],
                &mut control,
                RecvFlags::CMSG_CLOEXEC,
            ) {
                Ok(r) => break r.bytes,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        for msg in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = msg {
                fds.extend(received);
            }
        }
        if got == 0 {
            if filled == 0 && eof_ok {
                return Ok(false);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the socket in the middle of a frame",
            ));
        }
        filled += got;
    }
    Ok(true)
}
