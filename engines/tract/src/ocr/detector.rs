//! The DB text detector: image → resized, normalized input → probability map → boxes.

use std::sync::Arc;

use switchyard_core::{CopyLedger, F32Network};

use super::db_postprocess::{boxes_from_map, ProbMap};
use super::line::OcrOptions;
use super::quad::Quad;
use super::resize::{resize_normalize_bgr, Normalize, PlanarTarget, RgbView};
use crate::error::TractError;

const MODEL: &str = "ocr detector";
/// ImageNet statistics, in the model's BGR channel order.
const NORMALIZE: Normalize = Normalize {
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

/// The detector network, on whichever engine runs it.
#[derive(Debug, Clone)]
pub(crate) struct Detector {
    network: Arc<dyn F32Network>,
}

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
    /// The detector running on `network`.
    pub fn new(network: Arc<dyn F32Network>) -> Self {
        Self { network }
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
        ledger.record("preprocess", 3 * w * h * std::mem::size_of::<f32>());
        let mut quads = Vec::new();
        let _span = tracing::trace_span!("ocr_detector", w = pw, h = ph).entered();
        self.network
            .run(
                &[1, 3, ph, pw],
                &mut |data| {
                    let target = PlanarTarget {
                        data,
                        plane_width: pw,
                        plane_height: ph,
                        width: w,
                        height: h,
                    };
                    resize_normalize_bgr(src, target, &NORMALIZE);
                },
                &mut |shape, data| {
                    let odd = || format!("odd output shape {shape:?}");
                    let (map_h, map_w) = match shape {
                        [.., mh, mw] => (*mh, *mw),
                        _ => return Err(odd()),
                    };
                    if map_h < h || map_w < w || data.len() < map_h * map_w {
                        return Err(odd());
                    }
                    let map = ProbMap {
                        data: &data[..map_h * map_w],
                        width: w,
                        height: h,
                        stride: map_w,
                    };
                    quads = boxes_from_map(&map, src.width, src.height, &opts.db);
                    Ok(())
                },
            )
            .map_err(|e| TractError::inference(MODEL, e))?;
        Ok(quads)
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
