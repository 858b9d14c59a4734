//! Speech-to-text (Whisper tiny.en on whisper.cpp in its worker process, long audio cut at
//! pauses by Silero VAD on tract) and text-to-speech (Piper on ONNX Runtime).
//!
//! Audio is decoded straight into shared memory, so the worker reads the very samples the
//! decoder wrote: VAD segments are views of that buffer, and nothing is copied between steps.

use std::sync::Arc;
use std::time::Instant;

use switchyard_core::{CopyLedger, EngineError, Manifest, Tensor};
use switchyard_engines::tract::vad::{SpeechSegment, VadModel, VadOptions};
use switchyard_engines::whisper::{ShmAlloc, TranscribeOptions, WhisperConfig, WhisperHost};
use switchyard_media::AudioLimits;

use super::{artifact, media_error, Services};

/// The engine speech-to-text runs on.
pub const STT_ENGINE: &str = "whisper.cpp/cpu";
/// The engine VAD runs on.
pub const VAD_ENGINE: &str = "tract/cpu";

/// Audio up to this long goes to Whisper in one piece (its window is 30 s); longer audio is
/// cut into speech segments first.
pub const ONE_PIECE_SECONDS: f64 = 28.0;

/// Role of the converted whisper.cpp model in the manifest.
pub const GGML_ROLE: &str = "whisper.cpp";

/// A timed piece of a transcript.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimedText {
    /// Start, seconds.
    pub start: f32,
    /// End, seconds.
    pub end: f32,
    /// Text.
    pub text: String,
    /// The text's token ids (in verbose_json, not in traces).
    #[serde(skip)]
    pub tokens: Vec<i32>,
    /// Mean log-probability of those tokens.
    pub avg_logprob: f32,
    /// Probability that the segment holds no speech.
    pub no_speech_prob: f32,
}

/// What speech-to-text produced.
#[derive(Debug, Clone)]
pub struct Transcription {
    /// The whole text.
    pub text: String,
    /// Timed segments.
    pub segments: Vec<TimedText>,
    /// Audio length, seconds.
    pub seconds: f64,
    /// VAD time, when VAD ran (ms) and its segment count.
    pub vad: Option<(f64, usize)>,
    /// Whether every piece reached the worker without a copy.
    pub zero_copy: bool,
}

impl Services {
    /// The speech-to-text host for `manifest` (its worker process starts on first use).
    pub async fn stt(&self, manifest: &Manifest) -> Result<Arc<WhisperHost>, EngineError> {
        let model = artifact(manifest, GGML_ROLE).map_err(|_| {
            EngineError::Load(format!(
                "model '{}' has no whisper.cpp conversion; run `switchyard models fetch`",
                manifest.id
            ))
        })?;
        let threads = self.threads as u32;
        let checked = manifest.clone();
        self.stt
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &[GGML_ROLE])?;
                let mut config = WhisperConfig::new(model);
                config.threads = threads;
                WhisperHost::start(config).map_err(|e| EngineError::Unavailable(e.to_string()))
            })
            .await
    }

    /// The VAD model for `manifest`, loaded on first use.
    pub async fn vad(&self, manifest: &Manifest) -> Result<Arc<VadModel>, EngineError> {
        let path = artifact(manifest, "model")?;
        let checked = manifest.clone();
        self.vad
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["model"])?;
                VadModel::load(&path).map_err(|e| EngineError::Load(e.to_string()))
            })
            .await
    }
}

/// Decodes an audio upload into shared memory (16 kHz mono f32), within `limits`.
pub fn decode_audio(
    bytes: &[u8],
    limits: &AudioLimits,
    ledger: &CopyLedger,
    param: &str,
) -> Result<(Tensor, f64), EngineError> {
    let decoded = switchyard_media::audio::decode(bytes, limits, &ShmAlloc, ledger)
        .map_err(|e| media_error(e, param))?;
    if decoded.samples.numel() == 0 {
        return Err(EngineError::invalid(
            format!("{param}: the audio holds no samples"),
            Some(param),
        ));
    }
    Ok((decoded.samples, decoded.seconds))
}

/// Joins consecutive speech segments into pieces of at most [`ONE_PIECE_SECONDS`], cut only at
/// pauses: Whisper encodes a full 30 s window whatever the piece's length, so a few long pieces
/// cost far less than many short ones.
fn group_segments(segments: &[SpeechSegment]) -> Vec<(usize, usize)> {
    let max = (ONE_PIECE_SECONDS * 16_000.0) as usize;
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    for s in segments {
        match pieces.last_mut() {
            Some(last) if s.end.saturating_sub(last.0) <= max => last.1 = s.end,
            _ => pieces.push((s.start, s.end)),
        }
    }
    pieces
}

/// Transcribes decoded audio: in one piece when short, else segment by segment at the pauses
/// VAD finds (each segment a view of the same shared buffer).
pub fn transcribe(
    host: &WhisperHost,
    vad: Option<&VadModel>,
    audio: &Tensor,
    seconds: f64,
    options: &TranscribeOptions,
    ledger: &CopyLedger,
) -> Result<Transcription, EngineError> {
    let stt_error = |e: switchyard_engines::whisper::SttError| {
        EngineError::Inference(format!("speech-to-text failed: {e}"))
    };
    let (pieces, vad_trace) = match vad {
        Some(vad) if seconds > ONE_PIECE_SECONDS => {
            let started = Instant::now();
            let segments = vad
                .speech_segments_counted(audio, &VadOptions::default(), ledger)
                .map_err(|e| {
                    EngineError::Inference(format!("voice activity detection failed: {e}"))
                })?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let count = segments.len();
            (group_segments(&segments), Some((ms, count)))
        }
        _ => (vec![(0, audio.numel())], None),
    };
    let mut segments = Vec::new();
    let mut zero_copy = true;
    for (start, end) in pieces {
        let view = audio
            .narrow(start, end)
            .map_err(|e| EngineError::Inference(e.to_string()))?;
        let transcript = host.transcribe(&view, options, ledger).map_err(stt_error)?;
        zero_copy &= transcript.zero_copy;
        let offset = start as f32 / 16_000.0;
        segments.extend(transcript.segments.into_iter().map(|s| TimedText {
            start: s.start_s + offset,
            end: s.end_s + offset,
            text: s.text.trim().to_owned(),
            tokens: s.tokens,
            avg_logprob: s.avg_logprob,
            no_speech_prob: s.no_speech_prob,
        }));
    }
    let text = segments
        .iter()
        .map(|s| s.text.as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Transcription {
        text,
        segments,
        seconds,
        vad: vad_trace,
        zero_copy,
    })
}

impl Services {
    /// The Piper voice for `manifest`, loaded on first use.
    pub async fn tts(
        &self,
        manifest: &Manifest,
    ) -> Result<Arc<switchyard_engines::onnx::piper::PiperVoice>, EngineError> {
        self.onnx_runtime()?;
        let model = artifact(manifest, "model")?;
        let config = artifact(manifest, "config")?;
        let options = switchyard_engines::onnx::piper::VoiceOptions {
            threads: self.threads,
            placement: self.placement(switchyard_profiles::Task::Tts, manifest),
            ..Default::default()
        };
        let checked = manifest.clone();
        self.tts
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["model", "config"])?;
                switchyard_engines::onnx::piper::PiperVoice::load_with(&model, &config, &options)
                    .map_err(|e| EngineError::Load(e.to_string()))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_grouped_up_to_one_window() {
        let seg = |a: f64, b: f64| SpeechSegment {
            start: (a * 16_000.0) as usize,
            end: (b * 16_000.0) as usize,
        };
        let pieces = group_segments(&[
            seg(0.5, 4.0),
            seg(5.0, 12.0),
            seg(13.0, 27.0),
            seg(29.0, 40.0),
        ]);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0], (8_000, 27 * 16_000));
        assert_eq!(pieces[1], (29 * 16_000, 40 * 16_000));
        assert!(group_segments(&[]).is_empty());
    }
}
