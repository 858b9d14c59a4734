//! The DB text detector: image → resized, normalized input → probability map → boxes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_core::CopyLedger;
use tract_onnx::prelude::{tvec, InferenceModel};

use super::db_postprocess::{boxes_from_map, ProbMap};
use super::line::OcrOptions;
use super::quad::Quad;
use super::resize::{resize_normalize_bgr, Normalize, PlanarTarget, RgbView};
use crate::error::TractError;
use crate::plan::{self, Plan, PlanCache};

const MODEL: &str = "ocr detector";
/// ImageNet statistics, in the model's BGR channel order.
const NORMALIZE: Normalize = Normalize {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

/// The parsed detector and its optimized plans, one per input size (tract cannot prove
/// the feature pyramid's shapes line up for symbolic sizes, so plans are concrete).
#[derive(Debug, Clone)]
pub(crate) struct Detector {
    model: Arc<InferenceModel>,
    path: PathBuf,
    /// Plans by input `(width, height)`.
    plans: Arc<PlanCache<(usize, usize)>>,
}

/// Plans kept at most.
const MAX_PLANS: usize = 24;

/// Detector input size for a `width × height` image (PaddleOCR's `DetResizeForTest`,
/// limit type `max`): shrink so the longer side is at most `max_side`, then round each
/// side to a multiple of 32 (at least 32).
pub(crate) fn input_size(width: usize, height: usize, max_side: usize) -> (usize, usize) {
    let longest = width.max(height).max(1) as f32;
    let ratio = if longest > max_side as f32 {
        max_side as f32 / longest
    } else {
        1.0
    };
    let round32 = |v: usize| {
        let scaled = (v as f32 * ratio).trunc();
        (((scaled / 32.0).round() as usize) * 32).max(32)
    };
    (round32(width), round32(height))
}

/// Rounds `v` up to a multiple of `step`.
fn round_up(v: usize, step: usize) -> usize {
    v.div_ceil(step.max(1)) * step.max(1)
}

impl Detector {
    /// Loads the detector at `path` and prepares the plan for `warm_size`.
    pub fn load(path: &Path, warm_size: (usize, usize)) -> Result<Self, TractError> {
        let detector = Self {
            model: Arc::new(plan::parse(path)?),
            path: path.to_path_buf(),
            plans: Arc::new(PlanCache::new(MAX_PLANS)),
        };
        detector.plan_for(warm_size.0, warm_size.1)?;
        Ok(detector)
    }

    /// The plan for a `width × height` input, built on first use.
    fn plan_for(&self, width: usize, height: usize) -> Result<Plan, TractError> {
        self.plans.get_or_build(MODEL, (width, height), || {
            let started = std::time::Instant::now();
            let plan = plan::concrete(&self.path, &self.model, [1, 3, height, width])?;
            tracing::debug!(
                width,
                height,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "ocr detector plan built"
            );
            Ok(plan)
        })
    }

    /// Text boxes of `src`, in source pixels.
    pub fn detect(
        &self,
        src: &RgbView<'_>,
        opts: &OcrOptions,
        ledger: &CopyLedger,
    ) -> Result<Vec<Quad>, TractError> {
        let (w, h) = input_size(src.width, src.height, opts.det_max_side.max(32));
        // Padded input size: fewer distinct sizes, fewer plans to build.
        let (pw, ph) = (
            round_up(w, opts.det_size_step),
            round_up(h, opts.det_size_step),
        );
        let plan = self.plan_for(pw, ph)?;
        let input = plan::f32_input(&[1, 3, ph, pw], |data| {
            let target = PlanarTarget {
                data,
                plane_width: pw,
                plane_height: ph,
                width: w,
                height: h,
            };
            resize_normalize_bgr(src, target, &NORMALIZE);
        })?;
        ledger.record("preprocess", 3 * w * h * std::mem::size_of::<f32>());
        let outputs = {
            let _span = tracing::trace_span!("ocr_detector", w = pw, h = ph).entered();
            plan.run(tvec![input.into()])
                .map_err(|e| TractError::inference(MODEL, e))?
        };
        let output = outputs
            .first()
            .ok_or_else(|| TractError::inference(MODEL, "no output"))?;
        let shape = output.shape();
        let (map_h, map_w) = match shape {
            [.., mh, mw] => (*mh, *mw),
            _ => {
                return Err(TractError::inference(
                    MODEL,
                    format!("odd output shape {shape:?}"),
                ))
            }
        };
        let data = plan::f32_output(MODEL, output)?;
        if map_h < h || map_w < w || data.len() < map_h * map_w {
            return Err(TractError::inference(
                MODEL,
                format!("odd output shape {shape:?}"),
            ));
        }
        let map = ProbMap {
            data: &data[..map_h * map_w],
            width: w,
            height: h,
            stride: map_w,
        };
        Ok(boxes_from_map(&map, src.width, src.height, &opts.db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_multiples_of_32_within_the_limit() {
        assert_eq!(input_size(1, 1, 960), (32, 32));
        assert_eq!(input_size(100, 50, 960), (96, 64));
        assert_eq!(input_size(1920, 1080, 960), (960, 544));
    }
}
