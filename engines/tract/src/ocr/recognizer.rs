//! The CTC line recognizer: text boxes → upright crops → height-48 batches → text.

use std::path::Path;
use std::sync::Arc;

use switchyard_core::{CopyLedger, F32Network};

use super::crop::{crop_quad, Crop};
use super::ctc::Charset;
use super::line::{OcrLine, OcrOptions};
use super::quad::Quad;
use super::reading_order::reading_order;
use super::resize::{resize_normalize_bgr, Normalize, PlanarTarget, RgbView};
use crate::error::TractError;

const MODEL: &str = "ocr recognizer";
/// Recognizer input height.
const HEIGHT: usize = 48;
/// Narrowest batch width (PaddleOCR's `rec_image_shape` 3×48×320).
const MIN_WIDTH: usize = 320;
/// Batch widths are padded up to a multiple of this, so that a few concrete plans serve
/// all line lengths (the extra columns are zeros, as PaddleOCR's own batch padding).
const WIDTH_STEP: usize = 64;
/// `(x / 255 - 0.5) / 0.5`.
const NORMALIZE: Normalize = Normalize {
    mean: [0.5; 3],
    std: [0.5; 3],
};

/// The recognizer network and its alphabet. Lines run one at a time at a padded width (a
/// few widths serve all line lengths: tract builds one concrete plan per width, and one line
/// at a time is faster per line than a batch in one run).
#[derive(Debug, Clone)]
pub(crate) struct Recognizer {
    network: Arc<dyn F32Network>,
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
    /// The recognizer running on `network` (the ONNX file `path`, named in errors), with the
    /// alphabet of its `character` metadata; one warm-up run at the narrowest width checks
    /// that the output classes match the alphabet.
    pub fn new(network: Arc<dyn F32Network>, path: &Path) -> Result<Self, TractError> {
        let characters =
            network
                .metadata("character")
                .ok_or_else(|| TractError::ModelContract {
                    path: path.to_path_buf(),
                    reason: "no `character` metadata (the recognizer's alphabet)".into(),
                })?;
        let recognizer = Self {
            network,
            charset: Charset::from_metadata(&characters),
        };
        let mut classes = 0;
        recognizer
            .network
            .run(&[1, 3, HEIGHT, MIN_WIDTH], &mut |_| {}, &mut |shape, _| {
                classes = shape.last().copied().unwrap_or(0);
                Ok(())
            })
            .map_err(|e| TractError::inference(MODEL, e))?;
        if classes != recognizer.charset.len() {
            return Err(TractError::ModelContract {
                path: path.to_path_buf(),
                reason: format!(
                    "{classes} output classes but the alphabet has {} (with blank and space)",
                    recognizer.charset.len()
                ),
            });
        }
        Ok(recognizer)
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
        let started = std::time::Instant::now();
        let _span =
            tracing::trace_span!("ocr_recognizer", lines = batch.len(), batch_width).entered();
        let results = batch
            .iter()
            .zip(&widths)
            .map(|(line, &width)| self.run_line(line, width, batch_width, ledger))
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
        line: &Pending,
        width: usize,
        plan_width: usize,
        ledger: &CopyLedger,
    ) -> Result<(String, f32), TractError> {
        ledger.record(
            "preprocess",
            3 * HEIGHT * width * std::mem::size_of::<f32>(),
        );
        let mut result = None;
        self.network
            .run(
                &[1, 3, HEIGHT, plan_width],
                &mut |data| {
                    let target = PlanarTarget {
                        data,
                        plane_width: plan_width,
                        plane_height: HEIGHT,
                        width,
                        height: HEIGHT,
                    };
                    resize_normalize_bgr(&line.crop.view(), target, &NORMALIZE);
                },
                &mut |shape, data| {
                    let [1, _steps, classes] = shape[..] else {
                        return Err(format!("odd output shape {shape:?}"));
                    };
                    if classes != self.charset.len() {
                        return Err(format!("odd output shape {shape:?}"));
                    }
                    result = Some(self.charset.decode(data, classes));
                    Ok(())
                },
            )
            .map_err(|e| TractError::inference(MODEL, e))?;
        result.ok_or_else(|| TractError::inference(MODEL, "no output"))
    }
}
