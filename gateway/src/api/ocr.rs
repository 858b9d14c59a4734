//! `POST /v1/images/ocr` (Switchyard's own): an image in, its text lines out, each with its
//! confidence and box.
//!
//! Body: `{"model": "auto", "image": "<base64 or data: URI>"}`. Answer:
//! `{"object": "ocr.result", "model", "text", "lines": [{"text", "confidence", "box"}]}` where
//! `box` is `[x0, y0, x1, y1]` in the image's pixels and lines come in reading order.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use switchyard_router::{Endpoint, Part};
use tracing::Instrument;

use super::body_bytes;
use crate::error::ApiError;
use crate::pipeline::PipelineTrace;
use crate::services::vision::read_image;
use crate::state::AppState;

/// `POST /v1/images/ocr`.
pub(super) async fn ocr(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_bytes(body, state.config.media.max_upload_bytes)?;
        let value: Value = super::wire::parse_json(&body)?;
        let request = super::route_request::from_json(
            Endpoint::ImagesOcr,
            &value,
            &headers,
            super::route::hint_sources(&state),
            &super::remote_image::RemoteImages::none(),
        )?;
        let image = request
            .parts
            .iter()
            .find_map(|p| match p {
                Part::Bytes { data, .. } => Some(Arc::clone(data)),
                _ => None,
            })
            .ok_or_else(|| ApiError::bad_request("'image' is missing", Some("image")))?;
        let decision = super::route::decide(&state, request, false).await?;
        let retry_after = state.config.limits.retry_after_seconds;
        let entry = super::model_entry(&state, &decision.model)?;
        let span = tracing::info_span!("ocr", model = %decision.model, bytes = image.len());
        let model = state
            .services
            .ocr(&entry.manifest)
            .instrument(span.clone())
            .await
            .map_err(|e| ApiError::from_engine(e, retry_after))?;
        let limits = state.image_limits();
        let trace = PipelineTrace::new(&decision.pipeline);
        let started = Instant::now();
        let engine = model.engine;
        let (lines, trace) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let lines = read_image(&model.model, &image, &limits, &trace.ledger, "image");
            (lines, trace)
        })
        .await
        .map_err(|e| ApiError::internal(format!("OCR task failed: {e}")))?;
        let mut trace = trace;
        let lines = lines.map_err(|e| ApiError::from_engine(e, retry_after))?;
        let text = switchyard_engines::tract::ocr::join_text(&lines);
        trace.step("ocr", &decision.model, engine, started, Some(&text));
        trace.record(&state.metrics);
        let lines: Vec<Value> = lines
            .iter()
            .map(|l| json!({"text": l.text, "confidence": l.confidence, "box": l.bbox}))
            .collect();
        let mut response = Json(json!({
            "object": "ocr.result",
            "model": decision.model,
            "text": text,
            "lines": lines,
            "switchyard": trace.json(),
        }))
        .into_response();
        super::add_route_header(&mut response, &decision, engine);
        trace.add_header(&mut response);
        Ok::<_, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
