//! Loading an ONNX file into an optimized tract plan that any thread can run.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::TractError;

/// An optimized, immutable tract plan; `run` takes `&self`, so one plan serves many threads.
pub(crate) type Plan = Arc<TypedRunnableModel>;

/// Parses `path` into an inference model, ignoring stale output shapes and value infos
/// written by exporters (tract re-infers them).
pub(crate) fn parse(path: &Path) -> Result<InferenceModel, TractError> {
    onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_path(path)
        .map_err(|e| TractError::ModelFile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })
}

/// Optimizes a typed model and makes it runnable.
pub(crate) fn optimize(path: &Path, model: TypedModel) -> Result<Plan, TractError> {
    model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| plan_error(path, e))
}

/// Wraps a tract error raised while preparing the plan of `path`.
pub(crate) fn plan_error(path: &Path, err: impl std::fmt::Display) -> TractError {
    TractError::ModelPlan {
        path: path.to_path_buf(),
        reason: format!("{err:#}"),
    }
}

/// A string property of the model (ONNX `metadata_props` are carried as
/// `onnx.metadata_props.<key>`).
pub(crate) fn metadata(model: &InferenceModel, key: &str) -> Option<String> {
    let tensor = model
        .properties
        .get(&format!("onnx.metadata_props.{key}"))?;
    let view = tensor.try_as_plain_ram().ok()?;
    view.as_slice::<String>().ok()?.first().cloned()
}

/// A zeroed f32 tract tensor of `shape`, to be filled in place by `fill`.
pub(crate) fn f32_input(
    shape: &[usize],
    fill: impl FnOnce(&mut [f32]),
) -> Result<Tensor, TractError> {
    let mut tensor =
        Tensor::zero::<f32>(shape).map_err(|e| TractError::inference("input allocation", e))?;
    {
        let mut view = tensor
            .try_as_plain_ram_mut()
            .map_err(|e| TractError::inference("input allocation", e))?;
        let slice = view
            .as_slice_mut::<f32>()
            .map_err(|e| TractError::inference("input allocation", e))?;
        fill(slice);
    }
    Ok(tensor)
}

/// The f32 elements of a model output.
pub(crate) fn f32_output<'a>(
    model: &'static str,
    value: &'a TValue,
) -> Result<&'a [f32], TractError> {
    value
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| TractError::inference(model, e))
}
