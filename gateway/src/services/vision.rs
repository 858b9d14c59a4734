//! OCR (PP-OCRv6 tiny on tract): decoded image in, text lines out.

use std::sync::Arc;

use switchyard_core::{CopyLedger, EngineError, HeapAlloc, Manifest};
use switchyard_engine_tract::ocr::{OcrLine, OcrModel};
use switchyard_media::ImageLimits;

use super::{artifact, media_error, Services};

/// The engine OCR runs on.
pub const OCR_ENGINE: &str = "tract/cpu";

impl Services {
    /// The OCR model for `manifest`, loaded on first use.
    pub async fn ocr(&self, manifest: &Manifest) -> Result<Arc<OcrModel>, EngineError> {
        let det = artifact(manifest, "detector")?;
        let rec = artifact(manifest, "recognizer")?;
        let checked = manifest.clone();
        self.ocr
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["detector", "recognizer"])?;
                OcrModel::load(&det, &rec).map_err(|e| EngineError::Load(e.to_string()))
            })
            .await
    }
}

/// Decodes `bytes` (PNG, JPEG, WebP) within `limits` and reads its text lines. `param` names
/// the request field in errors.
pub fn read_image(
    model: &OcrModel,
    bytes: &[u8],
    limits: &ImageLimits,
    ledger: &CopyLedger,
    param: &str,
) -> Result<Vec<OcrLine>, EngineError> {
    let image = switchyard_media::image::decode(bytes, limits, &HeapAlloc, ledger)
        .map_err(|e| media_error(e, param))?;
    model
        .recognize(&image.pixels, ledger)
        .map_err(|e| EngineError::Inference(e.to_string()))
}
