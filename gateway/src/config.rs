//! `switchyard.toml`: typed configuration with defaults for every value, unknown keys
//! rejected, and errors that name the file, line and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchyard_core::EngineConfig;

/// The environment variable that overrides the models directory.
pub const MODELS_DIR_ENV: &str = "SWITCHYARD_MODELS_DIR";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Models directory; `SWITCHYARD_MODELS_DIR` overrides it; default: the user's cache dir
    /// (`~/.cache/switchyard/models`).
    pub models_dir: Option<PathBuf>,
    /// Model served when a client asks for `auto` (default: the first model found).
    pub default_model: Option<String>,
    /// Models loaded at start instead of on their first request (any task; naming
    /// `all-minilm-l6-v2` also loads the router's intent tier B).
    pub preload: Vec<String>,
    /// Device profile: a built-in name (`cpu-x86`, `jetson-orin-nano-8gb`, ...) or a path to a
    /// profile TOML file. Its engine settings fill what `[engine]` leaves unset, and it names
    /// the policy profile the router follows. Files are watched and reloaded on change.
    pub profile: String,
    /// Engine settings.
    pub engine: EngineSection,
    /// Request limits.
    pub limits: LimitsSection,
    /// Shutdown behaviour.
    pub shutdown: ShutdownSection,
    /// Telemetry sampling.
    pub telemetry: TelemetrySection,
    /// Audio and image limits.
    pub media: MediaSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            models_dir: None,
            default_model: None,
            preload: Vec::new(),
            profile: switchyard_profiles::DEFAULT_PROFILE.to_owned(),
            engine: EngineSection::default(),
            limits: LimitsSection::default(),
            shutdown: ShutdownSection::default(),
            telemetry: TelemetrySection::default(),
            media: MediaSection::default(),
        }
    }
}

/// `[media]`: what audio and image inputs may be. Each limit is checked before the work it
/// guards (sizes and durations from headers where the format has them).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSection {
    /// Largest upload to `/v1/audio/transcriptions` and `/v1/images/ocr`, in bytes (larger:
    /// 413). Chat requests carrying media stay under `limits.max_body_bytes`.
    pub max_upload_bytes: usize,
    /// Longest audio accepted, in seconds.
    pub max_audio_seconds: u32,
    /// Largest image accepted, in pixels (width × height), checked before decoding.
    pub max_image_pixels: u64,
    /// Longest text `/v1/audio/speech` speaks, in characters (OpenAI's limit is 4096).
    pub max_speech_chars: usize,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            max_upload_bytes: 25 * 1024 * 1024,
            max_audio_seconds: 1800,
            max_image_pixels: 4096 * 4096,
            max_speech_chars: 4096,
        }
    }
}

/// `[telemetry]`: how the router's view of the hardware is sampled.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// Sampling period in milliseconds (the request path only reads the latest snapshot).
    pub period_ms: u64,
    /// Play a recorded trace (JSONL) instead of the live collectors, e.g. to rehearse a policy
    /// against a heating Jetson on another machine.
    pub replay: Option<PathBuf>,
    /// Replay speed (2.0 plays twice as fast).
    pub replay_speed: f64,
}

impl Default for TelemetrySection {
    fn default() -> Self {
        TelemetrySection {
            period_ms: 1000,
            replay: None,
            replay_speed: 1.0,
        }
    }
}

/// `[engine]`: how models run. Unset values come from the device profile.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSection {
    /// CPU threads per model for decoding.
    pub threads: Option<u32>,
    /// Requests decoded together per model (continuous-batching slots).
    pub slots: Option<u32>,
    /// Context tokens per request (slot).
    pub context_per_slot: Option<u32>,
    /// Maximum tokens per decode call.
    pub batch_size: Option<u32>,
}

/// `[limits]`: what one request may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Largest `max_tokens` accepted (larger: 400).
    pub max_tokens_cap: u32,
    /// `max_tokens` used when the request does not set one.
    pub default_max_tokens: u32,
    /// Requests per model allowed to wait for a slot (beyond: 429 with Retry-After).
    pub queue_size: usize,
    /// Seconds a client is told to wait after a 429.
    pub retry_after_seconds: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_body_bytes: 1024 * 1024,
            max_tokens_cap: 4096,
            default_max_tokens: 512,
            queue_size: 64,
            retry_after_seconds: 1,
        }
    }
}

/// `[shutdown]`: SIGTERM/SIGINT handling.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSection {
    /// Seconds in-flight requests get to finish after SIGTERM before the process exits.
    pub grace_seconds: u64,
}

impl Default for ShutdownSection {
    fn default() -> Self {
        ShutdownSection { grace_seconds: 30 }
    }
}

/// A configuration error located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {key}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// Dotted key path (`engine.threads`), or `-` for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            key: "-".into(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|span| line_of(text, span.start))
                .unwrap_or(0);
            ConfigError {
                file: file.to_owned(),
                line,
                key: if key == "." { "-".into() } else { key },
                message: inner.message().trim().to_owned(),
            }
        })?;
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, message: String| ConfigError {
            file: file.to_owned(),
            line: line_of_key(text, key),
            key: key.to_owned(),
            message,
        };
        let positive = [
            ("engine.threads", self.engine.threads),
            ("engine.slots", self.engine.slots),
            ("engine.context_per_slot", self.engine.context_per_slot),
            ("engine.batch_size", self.engine.batch_size),
        ];
        for (key, value) in positive {
            if value == Some(0) {
                return Err(fail(key, "must be at least 1".into()));
            }
        }
        if let (Some(batch), Some(slots)) = (self.engine.batch_size, self.engine.slots) {
            if batch < slots {
                return Err(fail(
                    "engine.batch_size",
                    format!("must be at least engine.slots ({slots})"),
                ));
            }
        }
        if self.limits.max_tokens_cap == 0 {
            return Err(fail("limits.max_tokens_cap", "must be at least 1".into()));
        }
        if self.limits.default_max_tokens == 0
            || self.limits.default_max_tokens > self.limits.max_tokens_cap
        {
            return Err(fail(
                "limits.default_max_tokens",
                format!(
                    "must be between 1 and limits.max_tokens_cap ({})",
                    self.limits.max_tokens_cap
                ),
            ));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(fail(
                "limits.max_body_bytes",
                "must be at least 1024".into(),
            ));
        }
        if self.media.max_upload_bytes < 1024 {
            return Err(fail(
                "media.max_upload_bytes",
                "must be at least 1024".into(),
            ));
        }
        let media_positive = [
            (
                "media.max_audio_seconds",
                u64::from(self.media.max_audio_seconds),
            ),
            ("media.max_image_pixels", self.media.max_image_pixels),
            ("media.max_speech_chars", self.media.max_speech_chars as u64),
        ];
        for (key, value) in media_positive {
            if value == 0 {
                return Err(fail(key, "must be at least 1".into()));
            }
        }
        if let Err(e) = switchyard_profiles::resolve(&self.profile) {
            return Err(fail("profile", e.to_string()));
        }
        if !(10..=3_600_000).contains(&self.telemetry.period_ms) {
            return Err(fail(
                "telemetry.period_ms",
                "must be between 10 and 3600000".into(),
            ));
        }
        if !(self.telemetry.replay_speed > 0.0 && self.telemetry.replay_speed <= 10_000.0) {
            return Err(fail(
                "telemetry.replay_speed",
                "must be above 0 and at most 10000".into(),
            ));
        }
        Ok(())
    }

    /// The device + policy profile named by `profile`, and the files it was read from (to
    /// watch for changes).
    pub fn resolve_profile(
        &self,
    ) -> Result<(switchyard_profiles::Profile, Vec<PathBuf>), switchyard_profiles::ProfileError>
    {
        let profile = switchyard_profiles::resolve(&self.profile)?;
        let files = profile
            .origin
            .iter()
            .filter_map(|o| o.path().map(Path::to_path_buf))
            .collect();
        Ok((profile, files))
    }

    /// The models directory: `override_dir` (a CLI flag), else `SWITCHYARD_MODELS_DIR`, else
    /// the file's `models_dir`, else `<cache dir>/switchyard/models`.
    pub fn models_dir(&self, override_dir: Option<&Path>) -> PathBuf {
        if let Some(dir) = override_dir {
            return dir.to_path_buf();
        }
        if let Some(dir) = std::env::var_os(MODELS_DIR_ENV).filter(|v| !v.is_empty()) {
            return PathBuf::from(dir);
        }
        if let Some(dir) = &self.models_dir {
            return dir.clone();
        }
        default_models_dir()
    }

    /// Engine settings: `[engine]` values over the device profile's.
    pub fn engine_config(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        let profile = switchyard_profiles::resolve(&self.profile)
            .ok()
            .map(|p| p.device.engine);
        let pick = |explicit: Option<u32>, from_profile: Option<u32>, fallback: u32| {
            explicit.or(from_profile).unwrap_or(fallback)
        };
        let slots = pick(
            self.engine.slots,
            profile.as_ref().map(|p| p.slots),
            defaults.slots,
        );
        EngineConfig {
            threads: pick(
                self.engine.threads,
                profile.as_ref().map(|p| p.threads),
                defaults.threads,
            ),
            slots,
            context_per_slot: pick(
                self.engine.context_per_slot,
                profile.as_ref().map(|p| p.context_per_slot),
                defaults.context_per_slot,
            ),
            batch_size: self
                .engine
                .batch_size
                .unwrap_or(defaults.batch_size)
                .max(slots),
            queue_size: self.limits.queue_size,
        }
    }
}

/// `<cache dir>/switchyard/models`, or `./models` when there is no cache dir.
pub fn default_models_dir() -> PathBuf {
    dirs::cache_dir()
        .map(|d| d.join("switchyard").join("models"))
        .unwrap_or_else(|| PathBuf::from("models"))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Line of `section.key = ...` (or a top-level `key = ...`); 0 when the key is not written.
fn line_of_key(text: &str, dotted: &str) -> usize {
    let (section, key) = match dotted.rsplit_once('.') {
        Some((s, k)) => (s, k),
        None => ("", dotted),
    };
    let mut current = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = header.trim().to_owned();
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim() == key {
                    return n + 1;
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn values_are_read() {
        let c = Config::parse(
            "listen = \"0.0.0.0:9000\"\n[engine]\nthreads = 4\nslots = 2\n[limits]\nqueue_size = 3\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        let e = c.engine_config();
        assert_eq!((e.threads, e.slots, e.queue_size), (4, 2, 3));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = Config::parse("[engine]\nthreads = 2\nthread = 3\n", "conf/s.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("conf/s.toml:3: engine"), "{text}");
        assert!(text.contains("unknown field `thread`"), "{text}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = Config::parse("[limits]\n\nqueue_size = \"many\"\n", "s.toml").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert_eq!(err.key, "limits.queue_size");
    }

    #[test]
    fn media_limits_are_read_and_checked() {
        let c = Config::parse("[media]\nmax_audio_seconds = 60\n", "s.toml").unwrap();
        assert_eq!(c.media.max_audio_seconds, 60);
        let err = Config::parse("[media]\n\nmax_image_pixels = 0\n", "s.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (3, "media.max_image_pixels"),
            "{err}"
        );
        let err = Config::parse("[media]\nmax_upload_bytes = 10\n", "s.toml").unwrap_err();
        assert_eq!(err.key, "media.max_upload_bytes", "{err}");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = Config::parse("listen = \n", "s.toml").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn invalid_values_are_located() {
        let err = Config::parse("[engine]\nslots = 4\nbatch_size = 2\n", "s.toml").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (3, "engine.batch_size"),
            "{err}"
        );
        let err = Config::parse(
            "[limits]\nmax_tokens_cap = 10\ndefault_max_tokens = 20\n",
            "s.toml",
        )
        .unwrap_err();
        assert_eq!(err.key, "limits.default_max_tokens");
        let err = Config::parse("profile = \"toaster\"\n", "s.toml").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (1, "profile"));
    }

    #[test]
    fn bad_listen_address() {
        let err = Config::parse("listen = \"nowhere\"\n", "s.toml").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (1, "listen"), "{err}");
    }
}
