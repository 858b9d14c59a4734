//! OCR (PP-OCRv6 tiny on tract): decoded image in, text lines out.

use std::sync::Arc;

use switchyard_core::{CopyLedger, EngineError, HeapAlloc, Manifest};
use switchyard_engine_onnx::{OnnxNetwork, ProviderReport};
use switchyard_engine_tract::ocr::{OcrLine, OcrModel};
use switchyard_media::ImageLimits;
use switchyard_profiles::Task;

use super::{artifact, media_error, Services};

/// The engine OCR runs on unless the device profile puts ONNX Runtime first.
pub const OCR_ENGINE: &str = "tract/cpu";

/// A loaded OCR model and the engine its networks run on.
pub struct OcrService {
    /// The detector + recognizer pipeline.
    pub model: OcrModel,
    /// `tract/cpu`, or `onnx/<provider used>`.
    pub engine: &'static str,
    /// On ONNX Runtime: the provider in use and those passed over (the detector's; the
    /// recognizer is placed the same way).
    pub provider: Option<ProviderReport>,
}

impl Services {
    /// The OCR model for `manifest`, loaded on first use: on tract, or on ONNX Runtime with
    /// the profile's execution providers when the profile asks for it.
    pub async fn ocr(&self, manifest: &Manifest) -> Result<Arc<OcrService>, EngineError> {
        let det = artifact(manifest, "detector")?;
        let rec = artifact(manifest, "recognizer")?;
        let checked = manifest.clone();
        if !self.ocr_on_onnx {
            return self
                .ocr
                .get(&manifest.id, move || {
                    super::verify_roles(&checked, &["detector", "recognizer"])?;
                    let model =
                        OcrModel::load(&det, &rec).map_err(|e| EngineError::Load(e.to_string()))?;
                    Ok(OcrService {
                        model,
                        engine: OCR_ENGINE,
                        provider: None,
                    })
                })
                .await;
        }
        self.onnx_runtime()?;
        let placement = self.placement(Task::Ocr, manifest);
        let threads = self.threads;
        self.ocr
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["detector", "recognizer"])?;
                let load = |path: &std::path::Path| {
                    OnnxNetwork::load(path, threads, &placement)
                        .map_err(|e| EngineError::Load(e.to_string()))
                };
                let (detector, recognizer) = (load(&det)?, load(&rec)?);
                let report = detector.provider_report().clone();
                let model = OcrModel::with_networks(Arc::new(detector), Arc::new(recognizer), &rec)
                    .map_err(|e| EngineError::Load(e.to_string()))?;
                Ok(OcrService {
                    model,
                    engine: report.used.engine_label(),
                    provider: Some(report),
                })
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
