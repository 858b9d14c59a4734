//! Policy profiles: how the router maps intents to pipelines and model tiers, its SLOs,
//! classifier threshold, security rules, thermal hysteresis and learned mode.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Intent labels a route may name (the intent classifier's labels).
pub const INTENTS: [&str; 7] = [
    "chat",
    "code",
    "summarize",
    "long-form",
    "tool-use",
    "classify",
    "tts",
];

/// Pipelines a route may name.
pub const PIPELINES: [&str; 5] = ["llm", "tts", "stt", "ocr", "embedding"];

/// A policy profile, `policies/*.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyProfile {
    /// Profile name (lowercase letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// One-line human description.
    #[serde(default)]
    pub description: String,
    /// `[classifier]`: the intent classifier's two tiers.
    #[serde(default)]
    pub classifier: ClassifierPolicy,
    /// `[hints]`: which caller hints the router honours, and security levels.
    #[serde(default)]
    pub hints: HintPolicy,
    /// `[thermal]`: behaviour when the device is hot.
    #[serde(default)]
    pub thermal: ThermalPolicy,
    /// `[memory]`: headroom kept free when placing models.
    #[serde(default)]
    pub memory: MemoryPolicy,
    /// `[learned]`: the learned (bandit) route scorer.
    #[serde(default)]
    pub learned: LearnedPolicy,
    /// `[scoring]`: weights of the hardware stage's route score.
    #[serde(default)]
    pub scoring: ScoringWeights,
    /// `[fetch]`: whether chat image URLs may be fetched, and from where (off by default).
    #[serde(default)]
    pub fetch: crate::fetch::FetchPolicy,
    /// `[tiers.NAME]`: model tiers routes refer to, by name.
    pub tiers: BTreeMap<String, Tier>,
    /// `[[routes]]`: one entry per intent.
    pub routes: Vec<IntentRoute>,
    /// Latency objective (ms) for requests no route covers.
    #[serde(default = "default_slo_ms")]
    pub default_slo_ms: u32,
}

fn default_slo_ms() -> u32 {
    2000
}

impl PolicyProfile {
    /// The route for an intent label (`"chat"`, `"long-form"`, ...).
    pub fn route(&self, intent: &str) -> Option<&IntentRoute> {
        self.routes.iter().find(|r| r.intent == intent)
    }

    /// A tier by name.
    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.get(name)
    }
}

/// `[classifier]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifierPolicy {
    /// Fast-tier confidence in [0, 1] at or above which its answer is taken (default 0.6).
    pub tier_a_threshold: f32,
    /// Whether to ask the second (embedding) tier when the fast tier is unsure (default true).
    pub tier_b: bool,
}

impl Default for ClassifierPolicy {
    fn default() -> Self {
        ClassifierPolicy {
            tier_a_threshold: 0.6,
            tier_b: true,
        }
    }
}

/// `[hints]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HintPolicy {
    /// Honour hints in the request body's `metadata` (default true).
    pub from_metadata: bool,
    /// Honour `x-switchyard-*` request headers (default true).
    pub from_headers: bool,
    /// Security levels a request may ask for (default all three).
    pub allowed_security: Vec<SecurityLevel>,
    /// Level of a request that asks for none (default `internal`).
    pub default_security: SecurityLevel,
    /// Level every request gets, whatever it asks for (default none).
    pub force_security: Option<SecurityLevel>,
    /// Honour a request's priority hint (default true).
    pub allow_priority: bool,
}

impl Default for HintPolicy {
    fn default() -> Self {
        HintPolicy {
            from_metadata: true,
            from_headers: true,
            allowed_security: vec![
                SecurityLevel::Public,
                SecurityLevel::Internal,
                SecurityLevel::Airgap,
            ],
            default_security: SecurityLevel::Internal,
            force_security: None,
            allow_priority: true,
        }
    }
}

/// Where a request's data may go; ordered from least to most strict.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SecurityLevel {
    /// May be served by a remote upstream.
    Public,
    /// Stays on this site's machines.
    #[default]
    Internal,
    /// Stays on this box; no network engine.
    Airgap,
}

impl SecurityLevel {
    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Public => "public",
            SecurityLevel::Internal => "internal",
            SecurityLevel::Airgap => "airgap",
        }
    }
}

impl fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[thermal]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThermalPolicy {
    /// °C a hot device must cool below its throttle point before normal routing resumes
    /// (default 5.0).
    pub hysteresis_c: f32,
    /// Tier used while the device is at or above its throttle point (default `small`).
    pub fallback_tier: String,
}

impl Default for ThermalPolicy {
    fn default() -> Self {
        ThermalPolicy {
            hysteresis_c: 5.0,
            fallback_tier: "small".to_owned(),
        }
    }
}

/// `[memory]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryPolicy {
    /// MiB of GPU memory left free when placing a model (default 512).
    pub vram_headroom_mib: u64,
    /// MiB of system memory left free when placing a model (default 1024).
    pub ram_headroom_mib: u64,
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy {
            vram_headroom_mib: 512,
            ram_headroom_mib: 1024,
        }
    }
}

/// `[learned]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnedPolicy {
    /// Use the learned scorer instead of the fixed weights (default false).
    pub enabled: bool,
    /// Observations per route before its learned score is trusted (default 50).
    pub min_samples: u32,
    /// Seed of the scorer's exploration, for reproducible runs (default 42).
    pub seed: u64,
}

impl Default for LearnedPolicy {
    fn default() -> Self {
        LearnedPolicy {
            enabled: false,
            min_samples: 50,
            seed: 42,
        }
    }
}

/// `[scoring]`: non-negative weights of the hardware stage's score terms.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringWeights {
    /// Weight of expected latency against the SLO (default 1.0).
    pub latency: f32,
    /// Weight of the tier's quality (default 1.0).
    pub quality: f32,
    /// Weight of thermal headroom (default 0.5).
    pub thermal: f32,
    /// Weight of queue depth (default 0.5).
    pub queue: f32,
}

impl Default for ScoringWeights {
    fn default() -> Self {
        ScoringWeights {
            latency: 1.0,
            quality: 1.0,
            thermal: 0.5,
            queue: 0.5,
        }
    }
}

/// `[tiers.NAME]`: a group of interchangeable models.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Model names, best candidate first.
    pub models: Vec<String>,
    /// Relative quality (higher is better), used by the scorer.
    pub quality: u8,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntentRoute {
    /// Intent label, one of [`INTENTS`].
    pub intent: String,
    /// Pipeline, one of [`PIPELINES`] (`tts` for the `tts` intent).
    pub pipeline: String,
    /// Tier name (a key of `tiers`).
    pub tier: String,
    /// Latency objective in milliseconds.
    pub slo_ms: u32,
    /// Prompt tokens above which `overflow_tier` serves instead.
    #[serde(default)]
    pub max_prompt_tokens: Option<u32>,
    /// Tier for prompts longer than `max_prompt_tokens`.
    #[serde(default)]
    pub overflow_tier: Option<String>,
}
