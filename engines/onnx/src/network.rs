//! [`F32Network`] on ONNX Runtime: a model with one f32 input, placed on the device profile's
//! execution providers (TensorRT → CUDA → CPU, CoreML → CPU), so pipelines whose processing
//! is engine-independent (OCR) run their networks where the profile asks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::session::Session;
use ort::value::TensorRef;
use switchyard_core::network::OutputReader;
use switchyard_core::F32Network;

use crate::error::OnnxError;
use crate::providers::{Placement, ProviderReport};
use crate::runtime;

/// An ONNX model with a single f32 input, run by ONNX Runtime. One run at a time (ONNX
/// Runtime's `run` needs the session exclusively); its intra-op threads do the parallel work.
pub struct OnnxNetwork {
    session: Mutex<Session>,
    input: String,
    metadata: HashMap<String, String>,
    path: PathBuf,
    provider: ProviderReport,
}

impl std::fmt::Debug for OnnxNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxNetwork")
            .field("path", &self.path)
            .field("input", &self.input)
            .field("provider", &self.provider)
            .finish()
    }
}

impl OnnxNetwork {
    /// Loads `path` with `threads` intra-op threads on the first provider of `placement` that
    /// works. [`crate::init_runtime`] must have succeeded first.
    pub fn load(path: &Path, threads: usize, placement: &Placement) -> Result<Self, OnnxError> {
        if !path.is_file() {
            return Err(OnnxError::ModelMissing {
                path: path.to_path_buf(),
            });
        }
        let (session, provider) = runtime::session(path, threads.max(1), false, placement)?;
        let signature = |message: String| OnnxError::Signature {
            path: path.to_path_buf(),
            message,
        };
        let [input] = session.inputs() else {
            return Err(signature(format!(
                "one input expected, the model has {}",
                session.inputs().len()
            )));
        };
        let input = input.name().to_owned();
        if session.outputs().is_empty() {
            return Err(signature("no outputs".into()));
        }
        let mut metadata = HashMap::new();
        if let Ok(meta) = session.metadata() {
            for key in meta.custom_keys().unwrap_or_default() {
                if let Some(value) = meta.custom(&key) {
                    metadata.insert(key, value);
                }
            }
        }
        Ok(Self {
            session: Mutex::new(session),
            input,
            metadata,
            path: path.to_path_buf(),
            provider,
        })
    }

    /// The execution provider in use and the ones passed over, with reasons.
    pub fn provider_report(&self) -> &ProviderReport {
        &self.provider
    }
}

impl F32Network for OnnxNetwork {
    fn run(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]),
        read: &mut OutputReader<'_>,
    ) -> Result<(), String> {
        let mut data = vec![0.0f32; shape.iter().product()];
        fill(&mut data);
        let input = TensorRef::from_array_view((shape.to_vec(), &data[..]))
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![self.input.as_str() => input])
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let (out_shape, values) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("{}: output: {e}", self.path.display()))?;
        let dims: Vec<usize> = out_shape
            .iter()
            .map(|&d| usize::try_from(d).unwrap_or(0))
            .collect();
        read(&dims, values)
    }

    fn metadata(&self, key: &str) -> Option<String> {
        self.metadata.get(key).cloned()
    }

    fn engine(&self) -> &'static str {
        self.provider.used.engine_label()
    }
}
