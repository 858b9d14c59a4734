//! `POST /v1/embeddings`: OpenAI's embeddings API over the sentence-embedding model the router
//! picks (all-MiniLM-L6-v2: mean pooling, L2-normalised, like sentence-transformers).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use switchyard_router::Endpoint;
use tracing::Instrument;

use super::body_bytes;
use super::wire::parse_json;
use crate::error::ApiError;
use crate::state::AppState;

/// Most inputs in one request (OpenAI's limit).
const MAX_INPUTS: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmbeddingRequest {
    input: Value,
    #[allow(dead_code)] // the router reads it from the raw body
    model: String,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)] // routing hints are read from the raw body
    user: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<Value>,
}

/// The texts of `input`: a string or an array of strings. Token arrays are refused clearly
/// (the gateway's tokenizer is the model's own; OpenAI token ids mean nothing to it).
fn texts(input: &Value) -> Result<Vec<String>, ApiError> {
    let bad = |m: String| ApiError::bad_request(m, Some("input"));
    let list = match input {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.is_empty() => {
            return Err(bad("'input' must not be an empty array".into()))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Array(_) => Err(bad(format!(
                    "input[{i}]: token-id inputs are not supported by this gateway; send text"
                ))),
                _ => Err(bad(format!("input[{i}] must be a string"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(bad("'input' must be a string or an array of strings".into())),
    };
    if list.len() > MAX_INPUTS {
        return Err(bad(format!(
            "'input' has {} items; at most {MAX_INPUTS} per request",
            list.len()
        )));
    }
    if let Some(i) = list.iter().position(|s| s.trim().is_empty()) {
        return Err(bad(format!("input[{i}] is empty")));
    }
    Ok(list)
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Float,
    Base64,
}

fn encoding(format: Option<&str>) -> Result<Encoding, ApiError> {
    match format.unwrap_or("float") {
        "float" => Ok(Encoding::Float),
        "base64" => Ok(Encoding::Base64),
        other => Err(ApiError::bad_request(
            format!("encoding_format '{other}' is not supported (float or base64)"),
            Some("encoding_format"),
        )),
    }
}

/// OpenAI's base64 form: the little-endian f32 bytes of the vector.
fn to_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_bytes(body, state.config.limits.max_body_bytes)?;
        let request: EmbeddingRequest = parse_json(&body)?;
        let inputs = texts(&request.input)?;
        let encoding = encoding(request.encoding_format.as_deref())?;
        let decision =
            super::route::route_body(&state, Endpoint::Embeddings, &body, &headers).await?;
        let retry_after = state.config.limits.retry_after_seconds;
        let entry = super::model_entry(&state, &decision.model)?;
        let span = tracing::info_span!("embeddings", model = %decision.model, inputs = inputs.len());
        let started = Instant::now();
        let embedder = state
            .services
            .embedder(&entry.manifest)
            .instrument(span.clone())
            .await
            .map_err(|e| ApiError::from_engine(e, retry_after))?;
        if let Some(d) = request.dimensions {
            if d as usize != embedder.dim() {
                return Err(ApiError::bad_request(
                    format!(
                        "model '{}' gives {} dimensions and cannot shorten them; omit 'dimensions' or send {}",
                        decision.model,
                        embedder.dim(),
                        embedder.dim()
                    ),
                    Some("dimensions"),
                ));
            }
        }
        let engine = embedder.engine_label();
        let (vectors, tokens) = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            crate::services::embeddings::embed_all(&embedder, &inputs)
        })
        .await
        .map_err(|e| ApiError::internal(format!("embedding task failed: {e}")))?
        .map_err(|e| ApiError::from_engine(e, retry_after))?;
        state
            .metrics
            .pipeline_step
            .with_label_values(&["embedding", engine])
            .observe(started.elapsed().as_secs_f64());
        let data: Vec<Value> = vectors
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let embedding = match encoding {
                    Encoding::Float => json!(v),
                    Encoding::Base64 => json!(to_base64(v)),
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let mut response = Json(json!({
            "object": "list",
            "data": data,
            "model": decision.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }))
        .into_response();
        super::add_route_header(&mut response, &decision, engine);
        Ok::<_, ApiError>(response)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked() {
        assert_eq!(texts(&json!("hi")).unwrap(), vec!["hi"]);
        assert_eq!(texts(&json!(["a", "b"])).unwrap().len(), 2);
        for bad in [
            json!([]),
            json!(""),
            json!(["ok", " "]),
            json!([1, 2]),
            json!([[1, 2]]),
            json!(3),
            json!({"a": 1}),
        ] {
            assert!(texts(&bad).is_err(), "{bad}");
        }
        assert!(encoding(Some("int8")).is_err());
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let b = to_base64(&[1.0]);
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        assert_eq!(bytes, 1.0f32.to_le_bytes());
    }
}
