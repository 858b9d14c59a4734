//! http(s) `image_url`s of chat requests. Off by default; when the policy's `[fetch]` turns it
//! on, each URL must match the allowlist, and it is fetched once, before routing, so the
//! router and the OCR step read the same bytes. Redirects are followed by hand (at most
//! [`MAX_REDIRECTS`]) and each target must match the allowlist too; bodies are read up to the
//! `[media] max_upload_bytes` limit and no further.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_profiles::FetchPolicy;

use crate::error::ApiError;
use crate::state::AppState;

/// Redirects followed per URL.
pub const MAX_REDIRECTS: usize = 3;

/// One fetched image: what the trace reports.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The bytes, shared with the router and the OCR step (never copied again).
    pub data: Arc<[u8]>,
    /// Time from the request to the last byte.
    pub ms: f64,
}

/// The fetched images of one request, by URL as the request wrote it.
#[derive(Debug, Default)]
pub struct RemoteImages {
    fetched: HashMap<String, Fetched>,
    /// Whether the policy allows fetching (for the message when a URL was not fetched).
    enabled: bool,
}

impl RemoteImages {
    /// No fetched images (endpoints that never fetch).
    pub fn none() -> Self {
        Self::default()
    }

    /// The image fetched for `url`.
    pub fn get(&self, url: &str) -> Option<&Fetched> {
        self.fetched.get(url)
    }

    /// Why `url` has no bytes here, for the client.
    pub fn missing(&self, url: &str) -> String {
        if self.enabled {
            format!("'{url}' was not fetched: image URLs are fetched for /v1/chat/completions only")
        } else {
            "fetching image URLs is off on this gateway (policy [fetch] image_urls); send the \
             image as a data: URI"
                .to_owned()
        }
    }
}

/// The http(s) image URLs of a chat body, with the field each sits in.
fn image_urls(body: &Value) -> Vec<(String, String)> {
    let mut urls = Vec::new();
    let messages = body.get("messages").and_then(Value::as_array);
    for (i, message) in messages.into_iter().flatten().enumerate() {
        let parts = message.get("content").and_then(Value::as_array);
        for (j, part) in parts.into_iter().flatten().enumerate() {
            if part.get("type").and_then(Value::as_str) != Some("image_url") {
                continue;
            }
            let url = part
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str);
            if let Some(url) = url.filter(|u| !u.starts_with("data:")) {
                urls.push((
                    format!("messages[{i}].content[{j}].image_url.url"),
                    url.to_owned(),
                ));
            }
        }
    }
    urls
}

/// One HTTP client for the process: connection pools and TLS roots are shared.
fn client() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ApiError::internal(format!("HTTP client: {e}")))
}

/// Fetches every http(s) `image_url` of the chat `body` the policy allows; any URL it does not
/// allow, and any failed fetch, is a 400 naming the field.
pub async fn fetch_all(state: &AppState, body: &Value) -> Result<RemoteImages, ApiError> {
    let policy = state.routing.router.config().profile.policy.fetch.clone();
    let mut images = RemoteImages {
        fetched: HashMap::new(),
        enabled: policy.image_urls,
    };
    for (param, url) in image_urls(body) {
        if images.fetched.contains_key(&url) {
            continue;
        }
        let outcome = fetch_one(&policy, &url, state.config.media.max_upload_bytes).await;
        let label = if outcome.is_ok() { "ok" } else { "refused" };
        state
            .metrics
            .image_fetches
            .with_label_values(&[label])
            .inc();
        let fetched = outcome.map_err(|message| {
            tracing::info!(url = %url, error = %message, "image URL not fetched");
            ApiError::bad_request(format!("{param}: {message}"), Some(&param))
        })?;
        images.fetched.insert(url, fetched);
    }
    Ok(images)
}

async fn fetch_one(policy: &FetchPolicy, url: &str, max_bytes: usize) -> Result<Fetched, String> {
    let mut target = policy.check(url)?;
    let started = Instant::now();
    let deadline = Duration::from_millis(u64::from(policy.timeout_ms));
    let client = client().map_err(|e| e.message)?;
    let work = async {
        for _ in 0..=MAX_REDIRECTS {
            let response = client
                .get(target.clone())
                .send()
                .await
                .map_err(|e| format!("fetching '{target}' failed: {e}"))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("'{target}' answered {status} without a Location"))?;
                let next = target
                    .join(location)
                    .map_err(|e| format!("'{target}' redirected to a bad URL: {e}"))?;
                target = policy
                    .check(next.as_str())
                    .map_err(|why| format!("redirect refused: {why}"))?;
                continue;
            }
            if !status.is_success() {
                return Err(format!("fetching '{target}' returned HTTP {status}"));
            }
            return read_limited(response, max_bytes).await;
        }
        Err(format!(
            "'{url}' redirected more than {MAX_REDIRECTS} times"
        ))
    };
    let data = tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| format!("fetching '{url}' took longer than {} ms", policy.timeout_ms))??;
    Ok(Fetched {
        data,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The body, refused as soon as it (or its declared length) passes `max_bytes`.
async fn read_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Arc<[u8]>, String> {
    let too_big = || format!("the image is larger than the {max_bytes}-byte upload limit");
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the image failed: {e}"))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err("the URL returned an empty body".into());
    }
    Ok(Arc::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_image_urls_are_collected_with_their_fields() {
        let body = serde_json::json!({"messages": [
            {"role": "user", "content": "plain"},
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]},
        ]});
        assert_eq!(
            image_urls(&body),
            vec![(
                "messages[1].content[2].image_url.url".to_owned(),
                "https://example.com/a.png".to_owned()
            )]
        );
    }
}
