//! Voice-activity detection with Silero VAD, run by tract.

mod options;
mod timestamps;

pub use options::{SpeechSegment, VadOptions, CONTEXT_SAMPLES, SAMPLE_RATE, WINDOW_SAMPLES};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_core::{CopyLedger, Tensor};
use tract_onnx::prelude::{
    tvec, DatumExt, DatumType, InferenceFact, InferenceModelExt, TValue, Tensor as TractTensor,
    TypedFact,
};
use tract_onnx::tract_core::ops::konst::Const;

use crate::error::TractError;
use crate::plan::{self, Plan};

const MODEL: &str = "silero vad";
/// Samples fed to the model per call: context + new window.
const INPUT_SAMPLES: usize = CONTEXT_SAMPLES + WINDOW_SAMPLES;
/// Shape of the recurrent state.
const STATE_SHAPE: [usize; 3] = [2, 1, 128];

/// A loaded Silero VAD. Immutable: each call keeps its own recurrent state, so one model
/// serves several threads at once.
#[derive(Debug, Clone)]
pub struct VadModel {
    plan: Plan,
    path: PathBuf,
    /// Positions of `input` and `state` among the plan's inputs.
    input_ix: usize,
    state_ix: usize,
    /// Positions of the probability and the new state among the plan's outputs.
    prob_out: usize,
    state_out: usize,
}

impl VadModel {
    /// Loads and optimizes the model at `path` for 16 kHz audio, one 512-sample window
    /// per call (the sample rate input is frozen to 16000, which removes the model's `If`).
    pub fn load(path: &Path) -> Result<Self, TractError> {
        let contract = |reason: String| TractError::ModelContract {
            path: path.to_path_buf(),
            reason,
        };
        let mut model = plan::parse(path)?;
        let inputs = model
            .input_outlets()
            .map_err(|e| plan::plan_error(path, e))?
            .to_vec();
        let mut has_sr = false;
        for (ix, outlet) in inputs.iter().enumerate() {
            let fact: InferenceFact = match model.node(outlet.node).name.as_str() {
                "input" => f32::fact([1, INPUT_SAMPLES]).into(),
                "state" => f32::fact(STATE_SHAPE).into(),
                "sr" => {
                    has_sr = true;
                    InferenceFact::dt_shape(DatumType::I64, [0usize; 0])
                }
                other => return Err(contract(format!("unexpected input `{other}`"))),
            };
            model
                .set_input_fact(ix, fact)
                .map_err(|e| plan::plan_error(path, e))?;
        }
        if !has_sr {
            return Err(contract("no `sr` input".into()));
        }
        let mut typed = model.into_typed().map_err(|e| plan::plan_error(path, e))?;
        freeze_sample_rate(&mut typed).map_err(|e| plan::plan_error(path, e))?;
        let names: Vec<String> = typed
            .input_outlets()
            .map_err(|e| plan::plan_error(path, e))?
            .iter()
            .map(|o| typed.node(o.node).name.clone())
            .collect();
        let position = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| contract(format!("no `{name}` input")))
        };
        if names.len() != 2 {
            return Err(contract(format!(
                "expected inputs input, state, sr; got {names:?} + sr"
            )));
        }
        let (input_ix, state_ix) = (position("input")?, position("state")?);
        let plan = plan::optimize(path, typed)?;
        let (prob_out, state_out) = output_positions(&plan).map_err(contract)?;
        Ok(Self {
            plan,
            path: path.to_path_buf(),
            input_ix,
            state_ix,
            prob_out,
            state_out,
        })
    }

    /// The model file this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Speech segments of `audio` (f32 mono 16 kHz, shape `[n]` or `[1, n]`), following
    /// silero-vad's `get_speech_timestamps`. Window copies into the model input are not
    /// counted; use [`VadModel::speech_segments_counted`] inside a pipeline.
    pub fn speech_segments(
        &self,
        audio: &Tensor,
        opts: &VadOptions,
    ) -> Result<Vec<SpeechSegment>, TractError> {
        self.speech_segments_counted(audio, opts, &CopyLedger::new())
    }

    /// [`VadModel::speech_segments`], recording the samples copied into model inputs on
    /// `ledger` (reason `preprocess`).
    pub fn speech_segments_counted(
        &self,
        audio: &Tensor,
        opts: &VadOptions,
        ledger: &CopyLedger,
    ) -> Result<Vec<SpeechSegment>, TractError> {
        let probs = self.probabilities_counted(audio, ledger)?;
        let len = audio.numel();
        Ok(timestamps::speech_timestamps(&probs, len, opts))
    }

    /// Speech probability of each 512-sample window of `audio` (the last one zero-padded).
    pub fn probabilities(&self, audio: &Tensor) -> Result<Vec<f32>, TractError> {
        self.probabilities_counted(audio, &CopyLedger::new())
    }

    fn probabilities_counted(
        &self,
        audio: &Tensor,
        ledger: &CopyLedger,
    ) -> Result<Vec<f32>, TractError> {
        let samples = mono_samples(audio, ledger)?;
        let _span = tracing::debug_span!("vad", samples = samples.len()).entered();
        let started = std::time::Instant::now();
        let mut session = self
            .plan
            .spawn()
            .map_err(|e| TractError::inference(MODEL, e))?;
        let mut state: TValue = TractTensor::zero::<f32>(&STATE_SHAPE)
            .map_err(|e| TractError::inference(MODEL, e))?
            .into();
        let mut context = [0f32; CONTEXT_SAMPLES];
        let mut probs = Vec::with_capacity(samples.len().div_ceil(WINDOW_SAMPLES));
        for chunk in samples.chunks(WINDOW_SAMPLES) {
            let input = plan::f32_input(&[1, INPUT_SAMPLES], |buf| {
                buf[..CONTEXT_SAMPLES].copy_from_slice(&context);
                buf[CONTEXT_SAMPLES..CONTEXT_SAMPLES + chunk.len()].copy_from_slice(chunk);
                context.copy_from_slice(&buf[WINDOW_SAMPLES..]);
            })?;
            ledger.record("preprocess", std::mem::size_of_val(chunk));
            let mut inputs = tvec![TValue::from(TractTensor::default()); 2];
            inputs[self.input_ix] = input.into();
            inputs[self.state_ix] = state;
            let mut outputs = session
                .run(inputs)
                .map_err(|e| TractError::inference(MODEL, e))?;
            let prob = plan::f32_output(MODEL, &outputs[self.prob_out])?
                .first()
                .copied()
                .ok_or_else(|| TractError::inference(MODEL, "empty probability output"))?;
            probs.push(prob);
            state = outputs.remove(self.state_out);
        }
        tracing::debug!(
            windows = probs.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "vad done"
        );
        Ok(probs)
    }
}

/// The f32 samples of a mono tensor, borrowed when contiguous (copied and counted as
/// `layout` otherwise).
fn mono_samples<'a>(
    audio: &'a Tensor,
    ledger: &CopyLedger,
) -> Result<std::borrow::Cow<'a, [f32]>, TractError> {
    let shape = audio.shape();
    let mono = shape.len() == 1 || (shape.len() == 2 && shape[0] == 1);
    if !mono {
        return Err(TractError::Input(format!(
            "audio must be mono f32 [n] or [1, n], got shape {shape:?}"
        )));
    }
    if audio.is_contiguous() {
        Ok(std::borrow::Cow::Borrowed(audio.as_slice::<f32>()?))
    } else {
        let copy = ledger.contiguous::<f32>("layout", audio)?;
        Ok(std::borrow::Cow::Owned(copy.as_slice::<f32>()?.to_vec()))
    }
}

/// Replaces the `sr` source by the constant 16000, so tract folds the model's sample-rate
/// `If` away and keeps only the 16 kHz branch.
fn freeze_sample_rate(
    model: &mut tract_onnx::prelude::TypedModel,
) -> tract_onnx::prelude::TractResult<()> {
    let sr_node = model.node_id_by_name("sr")?;
    let value = Arc::new(TractTensor::from(SAMPLE_RATE as i64));
    let inputs: Vec<_> = model
        .input_outlets()?
        .iter()
        .copied()
        .filter(|o| o.node != sr_node)
        .collect();
    let node = model.node_mut(sr_node);
    node.op = Box::new(Const::new(value.clone())?);
    node.outputs[0].fact = TypedFact::try_from(value)?;
    model.set_input_outlets(&inputs)
}

/// Which output is the probability (1 element) and which the state (256 elements).
fn output_positions(plan: &Plan) -> Result<(usize, usize), String> {
    let model = plan.model();
    let outlets = model.output_outlets().map_err(|e| e.to_string())?;
    let mut prob = None;
    let mut state = None;
    for (ix, outlet) in outlets.iter().enumerate() {
        let fact = model.outlet_fact(*outlet).map_err(|e| e.to_string())?;
        match fact
            .shape
            .as_concrete()
            .map(|s| s.iter().product::<usize>())
        {
            Some(1) => prob = Some(ix),
            Some(256) => state = Some(ix),
            _ => {}
        }
    }
    match (prob, state) {
        (Some(p), Some(s)) => Ok((p, s)),
        _ => Err(format!(
            "expected a [1, 1] probability and a [2, 1, 128] state output, got {} outputs",
            outlets.len()
        )),
    }
}
