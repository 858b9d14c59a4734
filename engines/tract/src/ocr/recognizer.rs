//! The CTC line recognizer: text boxes → upright crops → height-48 batches → text.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard_core::CopyLedger;
use tract_onnx::prelude::{tvec, InferenceModel};

use super::crop::{crop_quad, Crop};
use super::ctc::Charset;
use super::line::{OcrLine, OcrOptions};
use super::quad::Quad;
use super::reading_order::reading_order;
use super::resize::{resize_normalize_bgr, Normalize, PlanarTarget, RgbView};
use crate::error::TractError;
use crate::plan::{self, Plan, PlanCache};

const MODEL: &str = "ocr recognizer";
/// Recognizer input height.
const HEIGHT: usize = 48;
/// Narrowest batch width (PaddleOCR's `rec_image_shape` 3×48×320).
const MIN_WIDTH: usize = 320;
/// Batch widths are padded up to a multiple of this, so that a few concrete plans serve
/// all line lengths (the extra columns are zeros, as PaddleOCR's own batch padding).
const WIDTH_STEP: usize = 64;
/// Plans kept at most (one per width bucket in use).
const MAX_PLANS: usize = 24;
/// `(x / 255 - 0.5) / 0.5`.
const NORMALIZE: Normalize = Normalize {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// The parsed recognizer, its alphabet and its optimized plans, one per padded input
/// width. Plans are concrete (one line, height 48, a fixed width): tract runs a plan with
/// symbolic batch and width several times slower, and one line at a time is faster per
/// line than a batch in one run.
#[derive(Debug, Clone)]
pub(crate) struct Recognizer {
    model: Arc<InferenceModel>,
    path: PathBuf,
    charset: Charset,
    /// Plans by padded input width.
    plans: Arc<PlanCache<usize>>,
}

/// A cropped line waiting for recognition.
struct Pending {
    quad: Quad,
    crop: Crop,
}

impl Pending {
    fn aspect(&self) -> f32 {
        self.crop.width as f32 / self.crop.height.max(1) as f32
    }
}

impl Recognizer {
    /// Loads the recognizer at `path` and its `character` metadata, and prepares the plan
    /// for the narrowest width.
    pub fn load(path: &Path) -> Result<Self, TractError> {
        let model = plan::parse(path)?;
        let characters =
            plan::metadata(&model, "character").ok_or_else(|| TractError::ModelContract {
                path: path.to_path_buf(),
                reason: "no `character` metadata (the recognizer's alphabet)".into(),
            })?;
        let recognizer = Self {
            model: Arc::new(model),
            path: path.to_path_buf(),
            charset: Charset::from_metadata(&characters),
            plans: Arc::new(PlanCache::new(MAX_PLANS)),
        };
        let plan = recognizer.plan_for(MIN_WIDTH)?;
        let classes = plan
            .model()
            .output_outlets()
            .ok()
            .and_then(|o| o.first().copied())
            .and_then(|o| plan.model().outlet_fact(o).ok())
            .and_then(|f| f.shape.iter().last().and_then(|d| d.to_i64().ok()))
            .and_then(|c| usize::try_from(c).ok());
        if let Some(classes) = classes {
            if classes != recognizer.charset.len() {
                return Err(TractError::ModelContract {
                    path: path.to_path_buf(),
                    reason: format!(
                        "{classes} output classes but the alphabet has {} (with blank and space)",
                        recognizer.charset.len()
                    ),
                });
            }
        }
        Ok(recognizer)
    }

    /// The plan for one line `width` wide, built on first use.
    fn plan_for(&self, width: usize) -> Result<Plan, TractError> {
        self.plans.get_or_build(MODEL, width, || {
            let started = std::time::Instant::now();
            let plan = plan::concrete(&self.path, &self.model, [1, 3, HEIGHT, width])?;
            tracing::debug!(
                width,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "ocr recognizer plan built"
            );
            Ok(plan)
        })
    }

    /// Reads the text of every box; lines below `opts.drop_score` or empty are dropped.
    /// Returns the lines in reading order.
    pub fn recognize(
        &self,
        src: &RgbView<'_>,
        quads: &[Quad],
        opts: &OcrOptions,
        ledger: &CopyLedger,
    ) -> Result<Vec<OcrLine>, TractError> {
        let mut pending: Vec<Pending> = quads
            .iter()
            .filter_map(|quad| {
                let crop = crop_quad(src, quad)?;
                ledger.record("crop", crop.pixels.len());
                Some(Pending { quad: *quad, crop })
            })
            .collect();
        pending.sort_by(|a, b| a.aspect().total_cmp(&b.aspect()));
        let mut lines = Vec::with_capacity(pending.len());
        for batch in pending.chunks(opts.rec_batch.max(1)) {
            for (line, (text, confidence)) in batch.iter().zip(self.run_batch(batch, ledger)?) {
                if text.trim().is_empty() || confidence < opts.drop_score {
                    continue;
                }
                lines.push(OcrLine {
                    text,
                    confidence,
                    bbox: line.quad.bounds(),
                });
            }
        }
        let bounds: Vec<[f32; 4]> = lines.iter().map(|l| l.bbox).collect();
        let mut slots: Vec<Option<OcrLine>> = lines.into_iter().map(Some).collect();
        Ok(reading_order(&bounds)
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect())
    }

    /// Recognizes one batch; one `(text, confidence)` per line. Every line is padded to the
    /// batch width (the widest line, at least [`MIN_WIDTH`], rounded up to [`WIDTH_STEP`]) and
    /// run on its own through the plan for that width.
    fn run_batch(
        &self,
        batch: &[Pending],
        ledger: &CopyLedger,
    ) -> Result<Vec<(String, f32)>, TractError> {
        let widths: Vec<usize> = batch
            .iter()
            .map(|p| ((HEIGHT as f32 * p.aspect()).ceil() as usize).max(1))
            .collect();
        let widest = widths.iter().copied().max().unwrap_or(1).max(MIN_WIDTH);
        let batch_width = widest.div_ceil(WIDTH_STEP) * WIDTH_STEP;
        let plan = self.plan_for(batch_width)?;
        let started = std::time::Instant::now();
        let _span =
            tracing::trace_span!("ocr_recognizer", lines = batch.len(), batch_width).entered();
        let results = batch
            .iter()
            .zip(&widths)
            .map(|(line, &width)| self.run_line(&plan, line, width, batch_width, ledger))
            .collect();
        tracing::debug!(
            lines = batch.len(),
            batch_width,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "ocr recognizer batch"
        );
        results
    }

    /// Recognizes one line, resized to `width` and padded with zeros to `plan_width`.
    fn run_line(
        &self,
        plan: &Plan,
        line: &Pending,
        width: usize,
        plan_width: usize,
        ledger: &CopyLedger,
    ) -> Result<(String, f32), TractError> {
        let input = plan::f32_input(&[1, 3, HEIGHT, plan_width], |data| {
            let target = PlanarTarget {
                data,
                plane_width: plan_width,
                plane_height: HEIGHT,
                width,
                height: HEIGHT,
            };
            resize_normalize_bgr(&line.crop.view(), target, &NORMALIZE);
        })?;
        ledger.record(
            "preprocess",
            3 * HEIGHT * width * std::mem::size_of::<f32>(),
        );
        let outputs = plan
            .run(tvec![input.into()])
            .map_err(|e| TractError::inference(MODEL, e))?;
        let output = outputs
            .first()
            .ok_or_else(|| TractError::inference(MODEL, "no output"))?;
        let shape = output.shape();
        let odd = || TractError::inference(MODEL, format!("odd output shape {shape:?}"));
        let [1, _steps, classes] = shape[..] else {
            return Err(odd());
        };
        if classes != self.charset.len() {
            return Err(odd());
        }
        let data = plan::f32_output(MODEL, output)?;
        Ok(self.charset.decode(data, classes))
    }
}
