//! OCR with PP-OCRv6 tiny (DB text detector + CTC line recognizer), run by tract.

mod crop;
mod ctc;
mod db_postprocess;
mod detector;
mod line;
mod quad;
mod reading_order;
mod recognizer;
mod resize;

pub use db_postprocess::DbOptions;
pub use line::{join_text, OcrLine, OcrOptions};

use std::path::Path;
use std::sync::Arc;

use switchyard_core::{CopyLedger, DType, F32Network, Tensor};

use crate::error::TractError;
use crate::network::TractNetwork;
use detector::Detector;
use recognizer::Recognizer;
use resize::RgbView;

/// A loaded PP-OCR detector + recognizer pair (on tract by default, or on any engine's
/// [`F32Network`]). Immutable and `Send + Sync`: one model
/// serves several threads at once.
#[derive(Debug, Clone)]
pub struct OcrModel {
    detector: Detector,
    recognizer: Recognizer,
    options: OcrOptions,
}

impl OcrModel {
    /// Loads and optimizes the detector (`det`) and recognizer (`rec`, whose alphabet is read
    /// from its `character` metadata), with default options.
    pub fn load(det: &Path, rec: &Path) -> Result<Self, TractError> {
        let detector = TractNetwork::load(det, "ocr detector")?;
        detector.warm([1, 3, 480, 640])?;
        let recognizer = TractNetwork::load(rec, "ocr recognizer")?;
        Self::with_networks(Arc::new(detector), Arc::new(recognizer), rec)
    }

    /// The OCR pipeline over networks any engine runs (e.g. ONNX Runtime on the device
    /// profile's execution provider); `rec_path` names the recognizer in errors.
    pub fn with_networks(
        detector: Arc<dyn F32Network>,
        recognizer: Arc<dyn F32Network>,
        rec_path: &Path,
    ) -> Result<Self, TractError> {
        Ok(Self {
            detector: Detector::new(detector),
            recognizer: Recognizer::new(recognizer, rec_path)?,
            options: OcrOptions::default(),
        })
    }

    /// The same model with other options.
    pub fn with_options(mut self, options: OcrOptions) -> Self {
        self.options = options;
        self
    }

    /// The options in use.
    pub fn options(&self) -> &OcrOptions {
        &self.options
    }

    /// Text lines of `image` (u8 `[height, width, 3]`, RGB), in reading order. Pixels copied
    /// into model inputs are recorded on `ledger` (`preprocess` for resized / normalized
    /// inputs, `crop` for the cut-out lines); `image` itself is only read.
    pub fn recognize(
        &self,
        image: &Tensor,
        ledger: &CopyLedger,
    ) -> Result<Vec<OcrLine>, TractError> {
        let shape = image.shape();
        if image.dtype() != DType::U8 || shape.len() != 3 || shape[2] != 3 {
            return Err(TractError::Input(format!(
                "OCR needs a u8 [height, width, 3] RGB image, got {:?} {shape:?}",
                image.dtype()
            )));
        }
        let (height, width) = (shape[0], shape[1]);
        let _span = tracing::debug_span!("ocr", width, height).entered();
        if width == 0 || height == 0 {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let contiguous = ledger.contiguous::<u8>("layout", image)?;
        let src = RgbView {
            pixels: contiguous.as_slice::<u8>()?,
            width,
            height,
        };
        let quads = self.detector.detect(&src, &self.options, ledger)?;
        let detected = started.elapsed();
        let lines = self
            .recognizer
            .recognize(&src, &quads, &self.options, ledger)?;
        tracing::debug!(
            boxes = quads.len(),
            lines = lines.len(),
            detect_ms = detected.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "ocr done"
        );
        Ok(lines)
    }
}
