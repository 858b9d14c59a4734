//! The HTTP API: routes, the body limit, per-request metrics, and OpenAI-shaped errors for
//! every failure (unknown routes and methods included).

pub mod chat_media;
mod embeddings;
mod generate;
mod health;
mod ocr;
pub mod remote_image;
mod route;
pub mod route_request;
mod speech;
mod transcriptions;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::state::AppState;

/// The gateway's router over shared state.
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    let media_limit = state.config.media.max_upload_bytes;
    Router::new()
        .route("/v1/chat/completions", post(generate::chat_completions))
        .route("/v1/completions", post(generate::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route(
            "/v1/images/ocr",
            post(ocr::ocr).layer(DefaultBodyLimit::max(media_limit)),
        )
        .route("/v1/audio/speech", post(speech::speech))
        .route(
            "/v1/audio/transcriptions",
            post(transcriptions::transcriptions).layer(DefaultBodyLimit::max(media_limit)),
        )
        .route("/v1/route", post(route::route))
        .route("/v1/telemetry", get(route::telemetry))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}", get(get_model))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            record_request,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The installed model `id`, or a 404 in OpenAI's shape.
pub(crate) fn model_entry<'a>(
    state: &'a AppState,
    id: &str,
) -> Result<&'a Arc<crate::state::ModelEntry>, ApiError> {
    state
        .models
        .get(id)
        .ok_or_else(|| ApiError::model_not_found(id))
}

/// Adds the route summary (`x-switchyard-route`) with the engine that actually ran.
pub(crate) fn add_route_header(
    response: &mut Response,
    decision: &switchyard_router::RouteDecision,
    engine: &str,
) {
    let summary = format!("{}; engine={engine}", decision.summary());
    if let Ok(value) = axum::http::HeaderValue::from_str(&summary) {
        response.headers_mut().insert(ROUTE_HEADER, value);
    }
    response
        .extensions_mut()
        .insert(RoutedModel(decision.model.clone()));
}

/// The route trace header.
const ROUTE_HEADER: &str = "x-switchyard-route";

/// The model a response was routed to, left by [`add_route_header`] for the middleware that
/// adds the files serving it to the route header.
#[derive(Clone)]
struct RoutedModel(String);

/// Appends `; artifacts=role:precision(file),...` to the route header: the files the device
/// profile chose for the routed model (see `ModelEntry::served`).
fn add_served_artifacts(state: &AppState, response: &mut Response) {
    let Some(RoutedModel(model)) = response.extensions().get::<RoutedModel>().cloned() else {
        return;
    };
    let Some(entry) = state.models.get(&model) else {
        return;
    };
    if entry.served.is_empty() {
        return;
    }
    let artifacts: Vec<String> = entry
        .served
        .iter()
        .map(|c| format!("{}:{}({})", c.role, c.precision, c.path))
        .collect();
    let headers = response.headers_mut();
    let Some(route) = headers.get(ROUTE_HEADER).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let value = format!("{route}; artifacts={}", artifacts.join(","));
    if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
        headers.insert(ROUTE_HEADER, value);
    }
}

/// Reads the body, turning an over-limit body into 413 and a broken one into 400.
pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request(
                format!("Could not read the request body: {rejection}"),
                None,
            )
        }
    })
}

async fn record_request(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let mut response = next.run(request).await;
    add_served_artifacts(&state, &mut response);
    let status = response.status();
    state
        .metrics
        .requests
        .with_label_values(&[endpoint.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .latency
        .with_label_values(&[endpoint.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

fn model_object(id: &str, created: u64) -> wire::ModelObject {
    wire::ModelObject {
        id: id.to_owned(),
        object: "model",
        created,
        owned_by: "switchyard",
    }
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<wire::ModelList> {
    Json(wire::ModelList {
        object: "list",
        data: state
            .models
            .iter()
            .map(|(id, entry)| model_object(id, entry.created))
            .collect(),
    })
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<wire::ModelObject>, ApiError> {
    state
        .models
        .get(&id)
        .map(|entry| Json(model_object(&id, entry.created)))
        .ok_or_else(|| ApiError::model_not_found(&id))
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.refresh_model_gauges();
    state
        .router_metrics
        .refresh_telemetry(&state.routing.feed.latest());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
