//! OCR (PP-OCRv6 tiny on ONNX Runtime or tract, as the profile orders them): decoded image in,
//! text lines out.

use std::sync::Arc;

use switchyard_core::{CopyLedger, EngineError, HeapAlloc, Manifest};
use switchyard_engines::onnx::{OnnxNetwork, ProviderReport};
use switchyard_engines::tract::ocr::{OcrLine, OcrModel};
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
    /// Why tract serves a model the profile wanted on ONNX Runtime.
    pub fallback: Option<String>,
}

impl Services {
    /// The OCR model for `manifest`, loaded on first use: on tract, or on ONNX Runtime with
    /// the profile's execution providers when the profile asks for it. When ONNX Runtime
    /// cannot serve it (library missing, session failure), tract does, and the service says
    /// why in `fallback`.
    pub async fn ocr(&self, manifest: &Manifest) -> Result<Arc<OcrService>, EngineError> {
        let det = artifact(manifest, "detector")?;
        let rec = artifact(manifest, "recognizer")?;
        let checked = manifest.clone();
        let onnx = if self.ocr_on_onnx {
            Some((
                self.onnx_runtime(),
                self.placement(Task::Ocr, manifest),
                self.threads,
            ))
        } else {
            None
        };
        self.ocr
            .get(&manifest.id, move || {
                super::verify_roles(&checked, &["detector", "recognizer"])?;
                let fallback = match onnx {
                    None => None,
                    Some((runtime, placement, threads)) => {
                        match runtime.and_then(|()| load_on_onnx(&det, &rec, threads, &placement)) {
                            Ok(service) => return Ok(service),
                            Err(e) => {
                                tracing::warn!(
                                    model = %checked.id,
                                    error = %e,
                                    "OCR falls back to tract: ONNX Runtime cannot serve it"
                                );
                                Some(format!("ONNX Runtime could not serve it: {e}"))
                            }
                        }
                    }
                };
                let model =
                    OcrModel::load(&det, &rec).map_err(|e| EngineError::Load(e.to_string()))?;
                Ok(OcrService {
                    model,
                    engine: OCR_ENGINE,
                    provider: None,
                    fallback,
                })
            })
            .await
    }
}

/// The OCR networks on ONNX Runtime, placed on the first execution provider that works.
fn load_on_onnx(
    det: &std::path::Path,
    rec: &std::path::Path,
    threads: usize,
    placement: &switchyard_engines::onnx::Placement,
) -> Result<OcrService, EngineError> {
    let load = |path: &std::path::Path| {
        OnnxNetwork::load(path, threads, placement).map_err(|e| EngineError::Load(e.to_string()))
    };
    let (detector, recognizer) = (load(det)?, load(rec)?);
    let report = detector.provider_report().clone();
    let model = OcrModel::with_networks(Arc::new(detector), Arc::new(recognizer), rec)
        .map_err(|e| EngineError::Load(e.to_string()))?;
    Ok(OcrService {
        model,
        engine: report.used.engine_label(),
        provider: Some(report),
        fallback: None,
    })
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
