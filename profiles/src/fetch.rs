//! `[fetch]` of a policy profile: whether chat `image_url` parts may name http(s) URLs that the
//! gateway fetches, and which. Off by default: images come inline as `data:` URIs, and a
//! gateway never reaches out to the network because a request told it to.

use serde::{Deserialize, Serialize};

/// `[fetch]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchPolicy {
    /// Fetch http(s) `image_url`s of chat requests (default false).
    pub image_urls: bool,
    /// URL prefixes that may be fetched when `image_urls` is on, e.g.
    /// `https://cdn.example.com/images/` or `http://10.0.0.5:9000/`. A URL matches an entry
    /// when scheme, host and port are the same and its path starts with the entry's path at
    /// a `/` boundary. Redirects are followed only to URLs that match too.
    pub allowlist: Vec<String>,
    /// Give up on a fetch after this many milliseconds, connection included (default 5000).
    pub timeout_ms: u32,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            image_urls: false,
            allowlist: Vec::new(),
            timeout_ms: 5000,
        }
    }
}

/// One allowlist entry, split into what a URL is compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl Prefix {
    fn parse(entry: &str) -> Result<Prefix, String> {
        let url = url::Url::parse(entry).map_err(|e| format!("'{entry}' is not a URL: {e}"))?;
        Prefix::of(&url).map_err(|why| format!("'{entry}': {why}"))
    }

    fn of(url: &url::Url) -> Result<Prefix, String> {
        let scheme = url.scheme().to_owned();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme '{scheme}' is not http or https"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("no host")?
            .to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err("user names and passwords are not allowed in URLs".into());
        }
        let port = url.port_or_known_default().ok_or("no port")?;
        Ok(Prefix {
            scheme,
            host,
            port,
            path: url.path().to_owned(),
        })
    }

    fn matches(&self, other: &Prefix) -> bool {
        if self.scheme != other.scheme || self.host != other.host || self.port != other.port {
            return false;
        }
        let (prefix, path) = (self.path.as_str(), other.path.as_str());
        path == prefix
            || prefix.ends_with('/') && path.starts_with(prefix)
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

impl FetchPolicy {
    /// Whether `url` may be fetched: fetching is on and the URL matches an allowlist entry.
    /// The error says why not, for the client.
    pub fn check(&self, url: &str) -> Result<url::Url, String> {
        if !self.image_urls {
            return Err(
                "fetching image URLs is off on this gateway (policy [fetch] image_urls); send \
                 the image as a data: URI"
                    .into(),
            );
        }
        let parsed = url::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let prefix = Prefix::of(&parsed).map_err(|why| format!("'{url}': {why}"))?;
        let allowed = self
            .allowlist
            .iter()
            .filter_map(|entry| Prefix::parse(entry).ok())
            .any(|entry| entry.matches(&prefix));
        if allowed {
            Ok(parsed)
        } else {
            Err(format!(
                "'{url}' is not in this gateway's image URL allowlist (policy [fetch] allowlist)"
            ))
        }
    }

    /// Problems with the section, as `(key, message)` pairs for validation.
    pub(crate) fn issues(&self) -> Vec<(String, String)> {
        let mut issues = Vec::new();
        if self.image_urls && self.allowlist.is_empty() {
            issues.push((
                "fetch.allowlist".to_owned(),
                "list at least one URL prefix when fetch.image_urls is on".to_owned(),
            ));
        }
        for (i, entry) in self.allowlist.iter().enumerate() {
            if let Err(why) = Prefix::parse(entry) {
                issues.push((format!("fetch.allowlist[{i}]"), why));
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > 120_000 {
            issues.push((
                "fetch.timeout_ms".to_owned(),
                format!("{} is not in 1..=120000", self.timeout_ms),
            ));
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowlist: &[&str]) -> FetchPolicy {
        FetchPolicy {
            image_urls: true,
            allowlist: allowlist.iter().map(|s| s.to_string()).collect(),
            ..FetchPolicy::default()
        }
    }

    #[test]
    fn off_by_default() {
        let err = FetchPolicy::default()
            .check("https://example.com/a.png")
            .unwrap_err();
        assert!(err.contains("off"), "{err}");
    }

    #[test]
    fn prefixes_match_on_scheme_host_port_and_path_boundary() {
        let p = policy(&[
            "https://cdn.example.com/images/",
            "http://10.0.0.5:9000/cams",
        ]);
        for ok in [
            "https://cdn.example.com/images/a.png",
            "https://CDN.example.com:443/images/x/y.jpg?size=2",
            "http://10.0.0.5:9000/cams",
            "http://10.0.0.5:9000/cams/1.png",
        ] {
            assert!(p.check(ok).is_ok(), "{ok} should be allowed");
        }
        for refused in [
            "http://cdn.example.com/images/a.png",       // scheme
            "https://cdn.example.com:8443/images/a.png", // port
            "https://cdn.example.com/imagesX/a.png",     // not at a / boundary
            "https://cdn.example.com.evil.net/images/a.png",
            "https://evil.net/https://cdn.example.com/images/a.png",
            "http://10.0.0.5:9000/camsX.png",
            "https://user:pw@cdn.example.com/images/a.png",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(p.check(refused).is_err(), "{refused} should be refused");
        }
    }

    #[test]
    fn bad_sections_are_reported_with_their_keys() {
        let mut p = policy(&[]);
        p.timeout_ms = 0;
        let keys: Vec<String> = p.issues().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["fetch.allowlist", "fetch.timeout_ms"]);
        let p = policy(&["ftp://x/", "https://ok.example/"]);
        let issues = p.issues();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].0, "fetch.allowlist[0]");
    }
}
