//! The CTC line recognizer: text boxes → upright crops → height-48 batches → text.

use std::path::Path;

use switchyard_core::CopyLedger;
use tract_onnx::prelude::{tvec, InferenceModelExt};

use super::crop::{crop_quad, Crop};
use super::ctc::Charset;
use super::line::{OcrLine, OcrOptions};
use super::quad::Quad;
use super::reading_order::reading_order;
use super::resize::{resize_normalize_bgr, Normalize, PlanarTarget, RgbView};
use crate::error::TractError;
use crate::plan::{self, Plan};

const MODEL: &str = "ocr recognizer";
/// Recognizer input height.
const HEIGHT: usize = 48;
/// Narrowest batch width (PaddleOCR's `rec_image_shape` 3×48×320).
const MIN_WIDTH: usize = 320;
/// `(x / 255 - 0.5) / 0.5`.
const NORMALIZE: Normalize = Normalize {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// The recognizer plan and its alphabet.
#[derive(Debug, Clone)]
pub(crate) struct Recognizer {
    plan: Plan,
    charset: Charset,
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
    /// Loads the recognizer at `path` and its `character` metadata.
    pub fn load(path: &Path) -> Result<Self, TractError> {
        let model = plan::parse(path)?;
        let characters =
            plan::metadata(&model, "character").ok_or_else(|| TractError::ModelContract {
                path: path.to_path_buf(),
                reason: "no `character` metadata (the recognizer's alphabet)".into(),
            })?;
        let charset = Charset::from_metadata(&characters);
        let typed = model.into_typed().map_err(|e| plan::plan_error(path, e))?;
        let plan = plan::optimize(path, typed)?;
        let classes = plan
            .model()
            .output_outlets()
            .ok()
            .and_then(|o| o.first().copied())
            .and_then(|o| plan.model().outlet_fact(o).ok())
            .and_then(|f| f.shape.iter().last().and_then(|d| d.to_i64().ok()))
            .and_then(|c| usize::try_from(c).ok());
        if let Some(classes) = classes {
            if classes != charset.len() {
                return Err(TractError::ModelContract {
                    path: path.to_path_buf(),
                    reason: format!(
                        "{classes} output classes but the alphabet has {} (with blank and space)",
                        charset.len()
                    ),
                });
            }
        }
        Ok(Self { plan, charset })
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

    /// Recognizes one batch; one `(text, confidence)` per line.
    fn run_batch(
        &self,
        batch: &[Pending],
        ledger: &CopyLedger,
    ) -> Result<Vec<(String, f32)>, TractError> {
        let widths: Vec<usize> = batch
            .iter()
            .map(|p| ((HEIGHT as f32 * p.aspect()).ceil() as usize).max(1))
            .collect();
        let batch_width = widths.iter().copied().max().unwrap_or(1).max(MIN_WIDTH);
        let plane = 3 * HEIGHT * batch_width;
        let input = plan::f32_input(&[batch.len(), 3, HEIGHT, batch_width], |data| {
            for ((line, &width), slot) in batch.iter().zip(&widths).zip(data.chunks_mut(plane)) {
                let target = PlanarTarget {
                    data: slot,
                    plane_width: batch_width,
                    plane_height: HEIGHT,
                    width,
                    height: HEIGHT,
                };
                resize_normalize_bgr(&line.crop.view(), target, &NORMALIZE);
            }
        })?;
        let written: usize = widths.iter().map(|w| 3 * HEIGHT * w).sum();
        ledger.record("preprocess", written * std::mem::size_of::<f32>());
        let started = std::time::Instant::now();
        let outputs = {
            let _span =
                tracing::trace_span!("ocr_recognizer", lines = batch.len(), batch_width).entered();
            self.plan
                .run(tvec![input.into()])
                .map_err(|e| TractError::inference(MODEL, e))?
        };
        tracing::debug!(
            lines = batch.len(),
            batch_width,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "ocr recognizer batch"
        );
        let output = outputs
            .first()
            .ok_or_else(|| TractError::inference(MODEL, "no output"))?;
        let shape = output.shape().to_vec();
        let [n, steps, classes] = shape[..] else {
            return Err(TractError::inference(
                MODEL,
                format!("odd output shape {shape:?}"),
            ));
        };
        if n != batch.len() || classes != self.charset.len() {
            return Err(TractError::inference(
                MODEL,
                format!("odd output shape {shape:?}"),
            ));
        }
        let data = plan::f32_output(MODEL, output)?;
        Ok(data
            .chunks_exact(steps * classes)
            .map(|probs| self.charset.decode(probs, classes))
            .collect())
    }
}
