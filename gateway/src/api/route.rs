//! `POST /v1/route` (the decision for any request, without running it), `GET /v1/telemetry`
//! (the latest snapshot), and the helper every generating endpoint uses to route a request.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use switchyard_router::{BoxView, Endpoint, RouteDecision, RouteError, RouteRequest};
use switchyard_telemetry::Snapshot;

use super::body_bytes;
use super::remote_image::RemoteImages;
use super::route_request::{self, HintSources};
use super::wire::parse_json;
use crate::error::ApiError;
use crate::state::AppState;

/// Maps a router refusal onto the API's error shape.
pub(crate) fn route_error(state: &AppState, error: RouteError) -> ApiError {
    let kind = match &error {
        RouteError::BadRequest(_) => "bad_request",
        RouteError::Refused(_) => "refused",
        RouteError::UnknownModel(_) => "unknown_model",
        RouteError::WrongTask(_) => "wrong_task",
        RouteError::NoModel(_) => "no_model",
    };
    state.router_metrics.errors.with_label_values(&[kind]).inc();
    match error {
        RouteError::BadRequest(e) => {
            let param = match &e {
                switchyard_router::stage1::Stage1Error::Media { field, .. } => Some(field.clone()),
                switchyard_router::stage1::Stage1Error::Hint(h) => {
                    Some(format!("metadata.{}", h.hint))
                }
                switchyard_router::stage1::Stage1Error::NoContent => None,
            };
            ApiError::bad_request(e.to_string(), param.as_deref())
        }
        RouteError::Refused(m) => ApiError::bad_request(m, Some("metadata.security")),
        RouteError::UnknownModel(m) => ApiError::model_not_found(&m),
        RouteError::WrongTask(m) => ApiError::bad_request(m, Some("model")),
        RouteError::NoModel(m) => ApiError::unavailable(m),
    }
}

/// Where the policy in force lets hints come from.
pub(crate) fn hint_sources(state: &AppState) -> HintSources {
    let config = state.routing.router.config();
    HintSources {
        metadata: config.profile.policy.hints.from_metadata,
        headers: config.profile.policy.hints.from_headers,
    }
}

/// Runs the router for `request` on a blocking thread (tier B may take milliseconds).
pub(crate) async fn decide(
    state: &Arc<AppState>,
    request: RouteRequest,
    explain: bool,
) -> Result<RouteDecision, ApiError> {
    let state2 = Arc::clone(state);
    let decided = tokio::task::spawn_blocking(move || {
        let snapshot = state2.routing.feed.latest();
        let views = state2
            .routing
            .views(&state2.models, state2.engine_config.context_per_slot);
        let view = BoxView {
            snapshot: &snapshot,
            models: &views,
            default_max_tokens: state2.config.limits.default_max_tokens,
        };
        state2.routing.router.decide(&request, &view, explain)
    })
    .await
    .map_err(|e| ApiError::internal(format!("router task failed: {e}")))?;
    match decided {
        Ok(d) => {
            state.router_metrics.record(&d);
            Ok(d)
        }
        Err(e) => Err(route_error(state, e)),
    }
}

/// Routes a generating request whose JSON body is `body`.
pub(crate) async fn route_body(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    body: &[u8],
    headers: &HeaderMap,
) -> Result<RouteDecision, ApiError> {
    let value: Value = parse_json(body)?;
    route_value(state, endpoint, &value, headers, &RemoteImages::none()).await
}

/// Routes a generating request whose parsed JSON body is `value`, with the images fetched
/// for its http(s) image URLs.
pub(crate) async fn route_value(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    value: &Value,
    headers: &HeaderMap,
    remote: &RemoteImages,
) -> Result<RouteDecision, ApiError> {
    let request = route_request::from_json(endpoint, value, headers, hint_sources(state), remote)?;
    decide(state, request, false).await
}

#[derive(serde::Deserialize)]
struct RouteQuery {
    endpoint: String,
    body: Value,
}

/// `POST /v1/route`.
pub(super) async fn route(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_bytes(body, state.config.limits.max_body_bytes)?;
        let query: RouteQuery = parse_json(&body)?;
        let endpoint = Endpoint::from_path(&query.endpoint).ok_or_else(|| {
            ApiError::bad_request(
                format!(
                    "'{}' is not an endpoint the gateway routes (chat/completions, completions, embeddings, audio/transcriptions, audio/speech, images/ocr under /v1)",
                    query.endpoint
                ),
                Some("endpoint"),
            )
        })?;
        // A dry run fetches nothing: http(s) image URLs are refused with the reason.
        let request = route_request::from_json(
            endpoint,
            &query.body,
            &headers,
            hint_sources(&state),
            &RemoteImages::none(),
        )?;
        decide(&state, request, true).await
    }
    .await;
    match result {
        Ok(decision) => Json(decision).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Serialize)]
struct TelemetryBody<'a> {
    /// Age of the snapshot, ms.
    age_ms: u64,
    #[serde(flatten)]
    snapshot: &'a Snapshot,
}

/// `GET /v1/telemetry`.
pub(super) async fn telemetry(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.routing.feed.latest();
    Json(TelemetryBody {
        age_ms: u64::try_from(snapshot.age().as_millis()).unwrap_or(u64::MAX),
        snapshot: &snapshot,
    })
    .into_response()
}
