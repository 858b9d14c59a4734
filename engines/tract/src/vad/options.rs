//! Tuning knobs and output type of voice-activity detection.

/// Sample rate the Silero model is run at.
pub const SAMPLE_RATE: usize = 16_000;
/// New samples per model call at 16 kHz.
pub const WINDOW_SAMPLES: usize = 512;
/// Samples of the previous window prepended to each call.
pub const CONTEXT_SAMPLES: usize = 64;

/// Settings of [`crate::vad::VadModel::speech_segments`], with silero-vad's defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VadOptions {
    /// Speech probability at or above which a window counts as speech.
    pub threshold: f32,
    /// Probability below which a window counts as silence (hysteresis; between the two,
    /// the current state holds).
    pub neg_threshold: f32,
    /// Shorter speech segments are dropped, in milliseconds.
    pub min_speech_ms: u32,
    /// Silence needed to end a segment, in milliseconds.
    pub min_silence_ms: u32,
    /// Padding added on both sides of each segment, in milliseconds.
    pub speech_pad_ms: u32,
    /// Longer segments are split (at the longest pause inside, else cut), in seconds.
    pub max_speech_s: f32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
            max_speech_s: 30.0,
        }
    }
}

/// A stretch of speech, in samples at 16 kHz, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpeechSegment {
    /// First sample of speech.
    pub start: usize,
    /// One past the last sample of speech.
    pub end: usize,
}

impl SpeechSegment {
    /// Start in seconds.
    pub fn start_s(&self) -> f32 {
        self.start as f32 / SAMPLE_RATE as f32
    }

    /// End in seconds.
    pub fn end_s(&self) -> f32 {
        self.end as f32 / SAMPLE_RATE as f32
    }
}

/// Option values converted to samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleLimits {
    pub min_speech: usize,
    pub min_silence: usize,
    pub min_silence_at_max_speech: usize,
    pub speech_pad: usize,
    pub max_speech: usize,
}

impl SampleLimits {
    /// Converts `opts` the way silero-vad's `get_speech_timestamps` does.
    pub(crate) fn new(opts: &VadOptions) -> Self {
        let ms = |v: u32| SAMPLE_RATE * v as usize / 1000;
        let speech_pad = ms(opts.speech_pad_ms);
        let max_total = (SAMPLE_RATE as f64 * f64::from(opts.max_speech_s.max(0.0))) as usize;
        Self {
            min_speech: ms(opts.min_speech_ms),
            min_silence: ms(opts.min_silence_ms),
            min_silence_at_max_speech: ms(98),
            speech_pad,
            max_speech: max_total
                .saturating_sub(WINDOW_SAMPLES + 2 * speech_pad)
                .max(WINDOW_SAMPLES),
        }
    }
}
