//! Piper VITS text-to-speech on ONNX Runtime, with espeak-ng phonemes.
//!
//! The pipeline is Piper's: the text is cut into clauses, espeak-ng turns each into IPA
//! phonemes (in the voice's espeak language, e.g. `en-us`), the clause punctuation Piper keeps
//! (`. ? ! , ; :`) is put back, every phoneme (one Unicode code point) becomes its ids from the
//! voice's `phoneme_id_map` (BOS `^`, a pad `_` after each phoneme, EOS `$`), and the VITS
//! model turns the ids into 16-bit-range float samples at the voice's sample rate.
//!
//! [`PiperVoice::synthesize`] speaks one sentence (or any short chunk); use [`sentences`] to
//! cut a long text and synthesise and stream it sentence by sentence.
//!
//! ```no_run
//! use std::path::Path;
//! use switchyard_engine_onnx::init_runtime;
//! use switchyard_engine_onnx::piper::{sentences, PiperPaths, PiperVoice, SynthesisOptions};
//!
//! let paths = PiperPaths::in_models_dir(Path::new("/var/lib/switchyard/models"));
//! init_runtime(&paths.runtime_library)?;
//! let voice = PiperVoice::load(&paths.model, &paths.config, 2)?;
//! for sentence in sentences("Hello there. How are you today?") {
//!     let audio = voice.synthesize(&sentence, &SynthesisOptions::default())?;
//!     let samples: &[f32] = audio.as_slice().map_err(|e| {
//!         switchyard_engine_onnx::OnnxError::Output(e.to_string())
//!     })?;
//!     assert!(!samples.is_empty() && voice.sample_rate() == 22050);
//! }
//! # Ok::<(), switchyard_engine_onnx::OnnxError>(())
//! ```

mod config;
mod espeak;
mod text;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;
use switchyard_core::Tensor;

use crate::providers::{ExecutionProvider, Placement, ProviderReport};
use crate::runtime;
use crate::{OnnxError, RUNTIME_ID, RUNTIME_LIBRARY_FILE};
use config::VoiceConfig;

pub use text::{sentences, MAX_SENTENCE_BYTES};

/// Catalog id of the Piper "joe" (en_US, medium) voice folder.
pub const PIPER_JOE_ID: &str = "piper-joe-medium";
/// File name of the joe voice model inside its folder.
pub const PIPER_JOE_MODEL_FILE: &str = "en_US-joe-medium.onnx";
/// File name of the joe voice configuration inside its folder.
pub const PIPER_JOE_CONFIG_FILE: &str = "en_US-joe-medium.onnx.json";

/// Slowest accepted speed (as OpenAI's speech API).
pub const MIN_SPEED: f32 = 0.25;
/// Fastest accepted speed (as OpenAI's speech API).
pub const MAX_SPEED: f32 = 4.0;

/// Input name of the phoneme ids (`i64 [1, P]`).
const INPUT: &str = "input";
/// Input name of the phoneme count (`i64 [1]`).
const INPUT_LENGTHS: &str = "input_lengths";
/// Input name of noise scale, length scale and noise width (`f32 [3]`).
const SCALES: &str = "scales";
/// Input name of the speaker id of multi-speaker voices (`i64 [1]`).
const SID: &str = "sid";
/// Preferred output name; the first output is used when it is absent.
const OUTPUT: &str = "output";

/// Where `switchyard models fetch` puts the runtime library and the joe voice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiperPaths {
    /// `<models>/onnxruntime/libonnxruntime.so.1.31.1`.
    pub runtime_library: PathBuf,
    /// `<models>/piper-joe-medium/en_US-joe-medium.onnx`.
    pub model: PathBuf,
    /// `<models>/piper-joe-medium/en_US-joe-medium.onnx.json`.
    pub config: PathBuf,
}

impl PiperPaths {
    /// The standard layout under a models directory.
    pub fn in_models_dir(models_dir: &Path) -> PiperPaths {
        let voice_dir = models_dir.join(PIPER_JOE_ID);
        PiperPaths {
            runtime_library: models_dir.join(RUNTIME_ID).join(RUNTIME_LIBRARY_FILE),
            model: voice_dir.join(PIPER_JOE_MODEL_FILE),
            config: voice_dir.join(PIPER_JOE_CONFIG_FILE),
        }
    }

    /// True when all three files exist.
    pub fn all_present(&self) -> bool {
        [&self.runtime_library, &self.model, &self.config]
            .iter()
            .all(|p| p.is_file())
    }
}

/// How to load a [`PiperVoice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceOptions {
    /// ONNX Runtime intra-op threads (at least 1).
    pub threads: usize,
    /// Let idle ONNX Runtime worker threads spin for a while before sleeping. Off by default:
    /// a synthesis is one long run, so spinning saves little and burns CPU afterwards.
    pub spin: bool,
    /// Execution providers to try, best first (the device profile's order).
    pub placement: Placement,
}

impl Default for VoiceOptions {
    fn default() -> Self {
        VoiceOptions {
            threads: 2,
            spin: false,
            placement: Placement::default(),
        }
    }
}

/// Per-request synthesis settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthesisOptions {
    /// Speaking rate, [`MIN_SPEED`]..=[`MAX_SPEED`] (1.0 = the voice's own pace). The model's
    /// length scale becomes the configured length scale divided by `speed`.
    pub speed: f32,
}

impl Default for SynthesisOptions {
    fn default() -> Self {
        SynthesisOptions { speed: 1.0 }
    }
}

/// A synthesis with the numbers around it.
#[derive(Debug, Clone)]
pub struct Synthesis {
    /// Mono samples, `f32 [samples]`, nominally within -1..=1, at [`PiperVoice::sample_rate`].
    /// The storage is ONNX Runtime's output buffer itself (no copy).
    pub audio: Tensor,
    /// The IPA phonemes that were spoken (with the clause punctuation Piper keeps).
    pub phonemes: String,
    /// Length of the model input (phoneme ids, BOS/EOS and padding included).
    pub phoneme_ids: usize,
    /// Time spent in ONNX Runtime.
    pub inference: Duration,
    /// Address of the buffer ONNX Runtime wrote the output into (equals
    /// `audio.data_ptr()` when nothing was copied).
    pub ort_output_addr: usize,
}

/// Session plus the reusable id buffer; one mutex because a run needs `&mut Session`.
struct Inner {
    session: Session,
    ids: Vec<i64>,
}

/// A Piper voice: `text -> f32 samples`.
///
/// `Send + Sync`; syntheses are serialised on one session (ONNX Runtime parallelises inside a
/// run with the configured threads), and phonemisation on espeak-ng's global lock.
pub struct PiperVoice {
    config: VoiceConfig,
    inner: Mutex<Inner>,
    has_sid: bool,
    output_name: String,
    threads: usize,
    model_path: PathBuf,
    provider: ProviderReport,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice")
            .field("model", &self.model_path)
            .field("espeak_voice", &self.config.espeak_voice)
            .field("sample_rate", &self.config.sample_rate)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl PiperVoice {
    /// Loads the voice model and its `.onnx.json` configuration with `threads` intra-op
    /// threads. [`crate::init_runtime`] must have succeeded first. espeak-ng is initialised
    /// and a short warm-up sentence synthesised, so a missing espeak voice fails here.
    pub fn load(onnx: &Path, config_json: &Path, threads: usize) -> Result<PiperVoice, OnnxError> {
        let options = VoiceOptions {
            threads,
            ..VoiceOptions::default()
        };
        PiperVoice::load_with(onnx, config_json, &options)
    }

    /// Loads the voice with explicit options.
    pub fn load_with(
        onnx: &Path,
        config_json: &Path,
        options: &VoiceOptions,
    ) -> Result<PiperVoice, OnnxError> {
        if options.threads == 0 {
            return Err(OnnxError::SpeechOptions(
                "threads must be at least 1".into(),
            ));
        }
        if !config_json.is_file() {
            return Err(OnnxError::VoiceConfig {
                path: config_json.to_path_buf(),
                message: "file not found".into(),
            });
        }
        if !onnx.is_file() {
            return Err(OnnxError::ModelMissing {
                path: onnx.to_path_buf(),
            });
        }
        runtime::runtime().ok_or(OnnxError::RuntimeNotInitialized)?;
        let config = VoiceConfig::load(config_json)?;

        let (session, provider) =
            runtime::session(onnx, options.threads, options.spin, &options.placement)?;

        let signature_error = |message: String| OnnxError::Signature {
            path: onnx.to_path_buf(),
            message,
        };
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in [INPUT, INPUT_LENGTHS, SCALES] {
            if !input_names.contains(&required) {
                return Err(signature_error(format!(
                    "no `{required}` input (inputs: {input_names:?}); not a Piper VITS voice"
                )));
            }
        }
        if let Some(other) = input_names
            .iter()
            .find(|n| ![INPUT, INPUT_LENGTHS, SCALES, SID].contains(n))
        {
            return Err(signature_error(format!("unknown input `{other}`")));
        }
        let has_sid = input_names.contains(&SID);
        let output_name = session
            .outputs()
            .iter()
            .find(|o| o.name() == OUTPUT)
            .or_else(|| session.outputs().first())
            .map(|o| o.name().to_owned())
            .ok_or_else(|| signature_error("no outputs".into()))?;

        let voice = PiperVoice {
            config,
            inner: Mutex::new(Inner {
                session,
                ids: Vec::with_capacity(1024),
            }),
            has_sid,
            output_name,
            threads: options.threads,
            model_path: onnx.to_path_buf(),
            provider,
        };
        // Warm-up: initialises espeak-ng with the voice's language and lets ONNX Runtime
        // allocate its buffers now rather than on the first request.
        let warm = voice.synthesize("Ready.", &SynthesisOptions::default())?;
        tracing::debug!(
            model = %onnx.display(),
            espeak_voice = %voice.config.espeak_voice,
            sample_rate = voice.config.sample_rate,
            threads = options.threads,
            warm_up_samples = warm.numel(),
            "Piper voice loaded"
        );
        Ok(voice)
    }

    /// Output sample rate in Hz (22050 for medium-quality voices).
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    /// The espeak-ng voice used for phonemes (`en-us`).
    pub fn espeak_voice(&self) -> &str {
        &self.config.espeak_voice
    }

    /// Intra-op threads of the session.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Number of speakers of the voice (1 for single-speaker voices; multi-speaker voices
    /// speak with speaker 0).
    pub fn num_speakers(&self) -> u32 {
        self.config.num_speakers
    }

    /// The execution provider the session runs on.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.provider.used
    }

    /// The provider in use and the ones passed over before it, with reasons.
    pub fn provider_report(&self) -> &ProviderReport {
        &self.provider
    }

    /// The IPA phonemes of `text` as the voice will speak them, with the clause punctuation
    /// Piper keeps (e.g. `həlˈoʊ wˈɜːld.`). Empty or whitespace-only text is an error.
    pub fn phonemes(&self, text: &str) -> Result<String, OnnxError> {
        check_text(text)?;
        phonemize(&self.config.espeak_voice, text)
    }

    /// Synthesises one sentence (or any short chunk of text) at `opts.speed`: mono `f32
    /// [samples]` at [`PiperVoice::sample_rate`], stored in ONNX Runtime's output buffer.
    ///
    /// Errors: empty or whitespace-only text, text with no phoneme the voice knows, a speed
    /// outside [`MIN_SPEED`]..=[`MAX_SPEED`] (or not a number), and ONNX Runtime failures.
    pub fn synthesize(&self, text: &str, opts: &SynthesisOptions) -> Result<Tensor, OnnxError> {
        self.synthesize_with_stats(text, opts).map(|s| s.audio)
    }

    /// [`PiperVoice::synthesize`], also returning the phonemes, the model input length, the
    /// inference time and the address of ONNX Runtime's output buffer.
    pub fn synthesize_with_stats(
        &self,
        text: &str,
        opts: &SynthesisOptions,
    ) -> Result<Synthesis, OnnxError> {
        let span = tracing::info_span!(
            "piper_synthesize",
            voice = %self.config.espeak_voice,
            chars = text.chars().count(),
            speed = opts.speed,
            phoneme_ids = tracing::field::Empty,
            samples = tracing::field::Empty,
            inference_ms = tracing::field::Empty,
        );
        let _entered = span.enter();
        check_text(text)?;
        check_speed(opts.speed)?;
        let phonemes = phonemize(&self.config.espeak_voice, text)?;

        let mut inner = self.lock();
        let Inner { session, ids } = &mut *inner;
        let spoken = self.config.ids.encode(&phonemes, ids);
        if spoken == 0 {
            return Err(OnnxError::NoPhonemes {
                text: text.chars().take(80).collect(),
            });
        }
        let n = ids.len();
        span.record("phoneme_ids", n);
        let n_i64 = i64::try_from(n).map_err(|e| OnnxError::Inference(e.to_string()))?;
        let lengths = [n_i64];
        let scales = [
            self.config.noise_scale,
            self.config.length_scale / opts.speed,
            self.config.noise_w,
        ];
        let sid = [0i64];
        let tensor_error = |e: ort::Error| OnnxError::Inference(e.to_string());
        let mut inputs: Vec<(std::borrow::Cow<'static, str>, SessionInputValue<'_>)> = vec![
            (
                INPUT.into(),
                TensorRef::from_array_view(([1usize, n], &ids[..]))
                    .map_err(tensor_error)?
                    .into(),
            ),
            (
                INPUT_LENGTHS.into(),
                TensorRef::from_array_view(([1usize], &lengths[..]))
                    .map_err(tensor_error)?
                    .into(),
            ),
            (
                SCALES.into(),
                TensorRef::from_array_view(([3usize], &scales[..]))
                    .map_err(tensor_error)?
                    .into(),
            ),
        ];
        if self.has_sid {
            inputs.push((
                SID.into(),
                TensorRef::from_array_view(([1usize], &sid[..]))
                    .map_err(tensor_error)?
                    .into(),
            ));
        }

        let started = Instant::now();
        let mut outputs = session
            .run(inputs)
            .map_err(|e| OnnxError::Inference(e.to_string()))?;
        let inference = started.elapsed();
        let value = outputs
            .remove(self.output_name.as_str())
            .ok_or_else(|| OnnxError::Output(format!("no `{}` output", self.output_name)))?;
        drop(outputs);
        drop(inner);

        let samples = {
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| OnnxError::Output(e.to_string()))?;
            let last = shape.last().copied().unwrap_or(0);
            if usize::try_from(last) != Ok(data.len()) {
                return Err(OnnxError::Output(format!(
                    "expected audio shaped [1, 1, 1, samples], got {:?}",
                    &shape[..]
                )));
            }
            data.len()
        };
        let (audio, ptr) = crate::storage::tensor_from_output::<f32>(value, &[samples])?;
        span.record("samples", samples);
        span.record("inference_ms", inference.as_secs_f64() * 1e3);
        tracing::debug!(
            samples,
            audio_s = samples as f64 / f64::from(self.config.sample_rate),
            inference_ms = inference.as_secs_f64() * 1e3,
            "synthesised"
        );
        Ok(Synthesis {
            audio,
            phonemes,
            phoneme_ids: n,
            inference,
            ort_output_addr: ptr as usize,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic inside a previous run leaves no broken invariant: the id buffer is refilled.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Empty or whitespace-only text is an error.
fn check_text(text: &str) -> Result<(), OnnxError> {
    if text.is_empty() {
        return Err(OnnxError::InvalidText("the text is empty".into()));
    }
    if text.trim().is_empty() {
        return Err(OnnxError::InvalidText("the text is only whitespace".into()));
    }
    Ok(())
}

/// The speed must be a number within [`MIN_SPEED`]..=[`MAX_SPEED`].
fn check_speed(speed: f32) -> Result<(), OnnxError> {
    if (MIN_SPEED..=MAX_SPEED).contains(&speed) {
        Ok(())
    } else {
        Err(OnnxError::SpeechOptions(format!(
            "speed must be within {MIN_SPEED}..={MAX_SPEED}, got {speed}"
        )))
    }
}

/// IPA phonemes of `text`: clause by clause through espeak-ng, each followed by the
/// punctuation Piper keeps (`,` `;` `:` with a space after them; `.` `?` `!` and a space
/// before the next sentence).
fn phonemize(espeak_voice: &str, text: &str) -> Result<String, OnnxError> {
    let clauses = text::clauses(text);
    let texts: Vec<&str> = clauses.iter().map(|c| c.text).collect();
    let ipa = espeak::phonemize_clauses(espeak_voice, &texts)?;
    let mut out = String::new();
    for (clause, ipa) in clauses.iter().zip(ipa) {
        if ipa.is_empty() {
            continue;
        }
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
        out.push_str(&ipa);
        if let Some(mark) = clause.mark {
            out.push(mark);
            if matches!(mark, ',' | ';' | ':') {
                out.push(' ');
            }
        }
    }
    if out.trim().is_empty() {
        return Err(OnnxError::NoPhonemes {
            text: text.chars().take(80).collect(),
        });
    }
    Ok(out.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_range_is_checked() {
        for ok in [0.25, 1.0, 4.0] {
            assert!(check_speed(ok).is_ok());
        }
        for bad in [0.0, 0.2, 4.1, 10.0, -1.0, f32::NAN, f32::INFINITY] {
            let err = check_speed(bad).unwrap_err();
            assert!(err.to_string().contains("0.25..=4"), "{err}");
        }
    }

    #[test]
    fn empty_and_blank_text_are_errors() {
        assert!(matches!(check_text(""), Err(OnnxError::InvalidText(_))));
        assert!(matches!(
            check_text(" \n\t"),
            Err(OnnxError::InvalidText(_))
        ));
        assert!(check_text("a").is_ok());
    }
}
