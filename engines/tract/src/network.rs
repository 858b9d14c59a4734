//! [`F32Network`] on tract: one concrete, optimized plan per input shape, built on first use
//! and cached (tract runs concrete shapes far faster than symbolic ones).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_core::network::OutputReader;
use switchyard_core::F32Network;
use tract_onnx::prelude::{tvec, InferenceModel};

use crate::error::TractError;
use crate::plan::{self, PlanCache};

/// Plans kept at most per network (one per input shape in use).
const MAX_PLANS: usize = 24;

/// An ONNX model with a single 4-D f32 input, run by tract.
#[derive(Debug, Clone)]
pub struct TractNetwork {
    model: Arc<InferenceModel>,
    path: PathBuf,
    name: &'static str,
    plans: Arc<PlanCache<[usize; 4]>>,
}

impl TractNetwork {
    /// Parses the ONNX file at `path`; `name` names the model in errors ("ocr detector").
    pub fn load(path: &Path, name: &'static str) -> Result<Self, TractError> {
        Ok(Self {
            model: Arc::new(plan::parse(path)?),
            path: path.to_path_buf(),
            name,
            plans: Arc::new(PlanCache::new(MAX_PLANS)),
        })
    }

    /// Builds (and caches) the plan for `shape` now, so the first request does not wait.
    pub fn warm(&self, shape: [usize; 4]) -> Result<(), TractError> {
        self.plan_for(shape).map(|_| ())
    }

    fn plan_for(&self, shape: [usize; 4]) -> Result<plan::Plan, TractError> {
        self.plans.get_or_build(self.name, shape, || {
            let started = std::time::Instant::now();
            let plan = plan::concrete(&self.path, &self.model, shape)?;
            tracing::debug!(
                model = self.name,
                ?shape,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "tract plan built"
            );
            Ok(plan)
        })
    }
}

impl F32Network for TractNetwork {
    fn run(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]),
        read: &mut OutputReader<'_>,
    ) -> Result<(), String> {
        let shape: [usize; 4] = shape
            .try_into()
            .map_err(|_| format!("{}: a 4-D input is needed, got {shape:?}", self.name))?;
        let plan = self.plan_for(shape).map_err(|e| e.to_string())?;
        let input = plan::f32_input(&shape, fill).map_err(|e| e.to_string())?;
        let outputs = plan
            .run(tvec![input.into()])
            .map_err(|e| TractError::inference(self.name, e).to_string())?;
        let output = outputs
            .first()
            .ok_or_else(|| format!("{}: no output", self.name))?;
        let data = plan::f32_output(self.name, output).map_err(|e| e.to_string())?;
        read(output.shape(), data)
    }

    fn metadata(&self, key: &str) -> Option<String> {
        plan::metadata(&self.model, key)
    }

    fn engine(&self) -> &'static str {
        "tract/cpu"
    }
}
