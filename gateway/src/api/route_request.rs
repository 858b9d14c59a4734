//! Turns a request body of any endpoint the gateway serves into the router's typed
//! [`RouteRequest`]: text parts, binary parts (data: URIs and base64 audio, sniffed later by
//! the router), `max_tokens`, and routing hints from `user`, `metadata` and `x-switchyard-*`
//! headers.

use std::sync::Arc;

use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::Value;
use switchyard_router::{Claimed, Endpoint, Hints, Part, RouteRequest};

use super::remote_image::RemoteImages;
use crate::error::ApiError;

/// Header names carrying routing hints.
pub const SECURITY_HEADER: &str = "x-switchyard-security";
/// Priority hint header.
pub const PRIORITY_HEADER: &str = "x-switchyard-priority";
/// Latency SLO hint header (milliseconds).
pub const SLO_HEADER: &str = "x-switchyard-slo-ms";

/// Where hints may come from (the policy decides).
#[derive(Debug, Clone, Copy)]
pub struct HintSources {
    /// The body's `metadata` object (`{"security": "airgap"}`).
    pub metadata: bool,
    /// `x-switchyard-*` headers.
    pub headers: bool,
}

fn bad(message: String, param: &str) -> ApiError {
    ApiError::bad_request(message, Some(param))
}

fn text_of(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Decodes base64 (standard alphabet, padding optional, whitespace ignored).
pub(crate) fn decode_base64(data: &str, param: &str) -> Result<Arc<[u8]>, ApiError> {
    let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.trim_end_matches('='))
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.trim_end_matches('='))
        })
        .map(Arc::from)
        .map_err(|e| bad(format!("{param} is not valid base64: {e}"), param))
}

/// An `image_url` part: a `data:` URI, or an http(s) URL fetched before routing.
fn image_part(part: &Value, param: &str, remote: &RemoteImages) -> Result<Part, ApiError> {
    let url = part
        .get("image_url")
        .and_then(|u| u.get("url").or(Some(u)))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                format!("{param}.image_url.url is missing"),
                &format!("{param}.image_url"),
            )
        })?;
    Ok(Part::Bytes {
        claimed: Claimed::Image,
        data: data_uri_bytes(url, param, remote)?,
        field: param.to_owned(),
    })
}

/// The bytes of an `image_url` part's `data:` URI (`param` names the part). Fetching http(s)
/// URLs is off.
pub(crate) fn data_uri_bytes(
    url: &str,
    param: &str,
    remote: &RemoteImages,
) -> Result<Arc<[u8]>, ApiError> {
    let Some(rest) = url.strip_prefix("data:") else {
        if let Some(fetched) = remote.get(url) {
            return Ok(Arc::clone(&fetched.data));
        }
        return Err(bad(
            format!("{param}: {}", remote.missing(url)),
            &format!("{param}.image_url.url"),
        ));
    };
    let (_, data) = rest.split_once(";base64,").ok_or_else(|| {
        bad(
            format!("{param}: the data: URI must be base64 (data:<mime>;base64,<data>)"),
            &format!("{param}.image_url.url"),
        )
    })?;
    decode_base64(data, &format!("{param}.image_url.url"))
}

fn audio_part(part: &Value, param: &str) -> Result<Part, ApiError> {
    let data = part
        .get("input_audio")
        .and_then(|a| a.get("data"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                format!("{param}.input_audio.data is missing"),
                &format!("{param}.input_audio.data"),
            )
        })?;
    Ok(Part::Bytes {
        claimed: Claimed::Audio,
        data: decode_base64(data, &format!("{param}.input_audio.data"))?,
        field: param.to_owned(),
    })
}

fn chat_parts(body: &Value, remote: &RemoteImages) -> Result<Vec<Part>, ApiError> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("'messages' must be an array".into(), "messages"))?;
    let mut parts = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => parts.push(Part::Text(s.clone())),
            Some(Value::Array(items)) => {
                for (j, item) in items.iter().enumerate() {
                    let param = format!("messages[{i}].content[{j}]");
                    match item.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            parts.push(Part::Text(item.get("text").and_then(text_of).ok_or_else(
                                || bad(format!("{param} is a text part without 'text'"), &param),
                            )?))
                        }
                        Some("image_url") => parts.push(image_part(item, &param, remote)?),
                        Some("input_audio") => parts.push(audio_part(item, &param)?),
                        other => {
                            return Err(bad(
                                format!(
                                    "{param}: unknown content part type {}",
                                    other
                                        .map(|o| format!("'{o}'"))
                                        .unwrap_or_else(|| "(missing)".into())
                                ),
                                &format!("{param}.type"),
                            ))
                        }
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    format!("messages[{i}].content must be a string or an array of parts"),
                    &format!("messages[{i}].content"),
                ))
            }
        }
    }
    Ok(parts)
}

fn strings(value: Option<&Value>, param: &str) -> Result<Vec<Part>, ApiError> {
    match value {
        Some(Value::String(s)) => Ok(vec![Part::Text(s.clone())]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                text_of(v).map(Part::Text).ok_or_else(|| {
                    bad(
                        format!("{param}[{i}] must be a string"),
                        &format!("{param}[{i}]"),
                    )
                })
            })
            .collect(),
        _ => Err(bad(
            format!("'{param}' must be a string or an array of strings"),
            param,
        )),
    }
}

fn hint_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Hints carried in OpenAI's `user` string as `;`-separated `key=value` pairs, for clients that
/// can set `user` but not `metadata` (e.g. `"alice;security=airgap"`); other text is ignored.
fn user_hints(user: &str, hints: &mut Hints) {
    for pair in user.split(';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = Some(value.trim().to_owned());
        match key.trim() {
            "security" => hints.security = value,
            "priority" => hints.priority = value,
            "slo_ms" => hints.slo_ms = value,
            _ => {}
        }
    }
}

pub(crate) fn hints(body: &Value, headers: &HeaderMap, sources: HintSources) -> Hints {
    let mut hints = Hints::default();
    // Precedence, lowest first: `user`, then `metadata`, then headers.
    if sources.metadata {
        if let Some(user) = body.get("user").and_then(Value::as_str) {
            user_hints(user, &mut hints);
        }
    }
    if sources.metadata {
        if let Some(meta) = body.get("metadata").and_then(Value::as_object) {
            let get = |k: &str| meta.get(k).and_then(hint_value);
            hints.security = get("security").or(hints.security);
            hints.priority = get("priority").or(hints.priority);
            hints.slo_ms = get("slo_ms").or(hints.slo_ms);
        }
    }
    if sources.headers {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        hints.security = header(SECURITY_HEADER).or(hints.security);
        hints.priority = header(PRIORITY_HEADER).or(hints.priority);
        hints.slo_ms = header(SLO_HEADER).or(hints.slo_ms);
    }
    hints
}

/// Builds the router's view of a request to `endpoint` with JSON `body`; `remote` holds the
/// images fetched for its http(s) image URLs.
pub fn from_json(
    endpoint: Endpoint,
    body: &Value,
    headers: &HeaderMap,
    sources: HintSources,
    remote: &RemoteImages,
) -> Result<RouteRequest, ApiError> {
    if !body.is_object() {
        return Err(bad("the request body must be a JSON object".into(), "body"));
    }
    let model = match body.get("model") {
        None | Some(Value::Null) => "auto".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("'model' must be a string".into(), "model")),
    };
    let parts = match endpoint {
        Endpoint::ChatCompletions => chat_parts(body, remote)?,
        Endpoint::Completions => strings(body.get("prompt"), "prompt")?,
        Endpoint::Embeddings => strings(body.get("input"), "input")?,
        Endpoint::AudioSpeech => strings(body.get("input"), "input")?,
        Endpoint::AudioTranscriptions => {
            let data = body
                .get("file")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("'file' must hold the audio as base64".into(), "file"))?;
            vec![Part::Bytes {
                claimed: Claimed::Audio,
                data: decode_base64(data, "file")?,
                field: "file".into(),
            }]
        }
        Endpoint::ImagesOcr => {
            let data = body.get("image").and_then(Value::as_str).ok_or_else(|| {
                bad(
                    "'image' must hold the image as base64 or a data: URI".into(),
                    "image",
                )
            })?;
            let data = data.split_once(";base64,").map(|(_, d)| d).unwrap_or(data);
            vec![Part::Bytes {
                claimed: Claimed::Image,
                data: decode_base64(data, "image")?,
                field: "image".into(),
            }]
        }
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(RouteRequest {
        endpoint,
        model,
        parts,
        max_tokens,
        hints: hints(body, headers, sources),
    })
}
