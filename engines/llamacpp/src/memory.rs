//! Memory estimates in bytes: weights (the GGUF file, memory-mapped) + KV cache (f16).

use std::path::Path;

use llama_cpp_2::gguf::GgufContext;
use llama_cpp_2::model::LlamaModel;
use switchyard_core::{EngineConfig, EngineError};

/// Bytes of an f16 KV cache: K and V, per layer, per cell, `n_head_kv × head_dim` values each.
pub fn kv_cache_bytes(n_layer: u64, n_head_kv: u64, head_dim: u64, cells: u64) -> u64 {
    2 * n_layer * cells * n_head_kv * head_dim * 2
}

/// KV bytes for a loaded model with `slots × context_per_slot` cells.
pub(crate) fn kv_for_model(
    model: &LlamaModel,
    context_per_slot: u32,
    config: &EngineConfig,
) -> u64 {
    let n_head = u64::from(model.n_head().max(1));
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    let head_dim = model
        .meta_val_str(&format!("{arch}.attention.key_length"))
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| u64::try_from(model.n_embd()).unwrap_or(0) / n_head);
    kv_cache_bytes(
        u64::from(model.n_layer()),
        u64::from(model.n_head_kv()),
        head_dim,
        u64::from(context_per_slot) * u64::from(config.slots),
    )
}

// GGUF value types (gguf.h); llama.cpp aborts when a value is read as the wrong type, so every
// read checks the type first.
const GGUF_TYPE_UINT32: i64 = 4;
const GGUF_TYPE_STRING: i64 = 8;

fn gguf_index(gguf: &GgufContext, key: &str, wanted: i64) -> Option<i64> {
    let idx = gguf.find_key(key);
    (idx >= 0 && i64::from(gguf.kv_type(idx)) == wanted).then_some(idx)
}

fn gguf_string(gguf: &GgufContext, key: &str) -> Option<String> {
    let idx = gguf_index(gguf, key, GGUF_TYPE_STRING)?;
    gguf.val_str(idx).map(str::to_owned)
}

fn gguf_u32(gguf: &GgufContext, key: &str) -> Option<u32> {
    gguf_index(gguf, key, GGUF_TYPE_UINT32).map(|idx| gguf.val_u32(idx))
}

/// Estimate before loading, from the GGUF header alone.
pub(crate) fn estimate_from_file(path: &Path, config: &EngineConfig) -> Result<u64, EngineError> {
    let file_size = std::fs::metadata(path)
        .map_err(|e| EngineError::Load(format!("{}: {e}", path.display())))?
        .len();
    let gguf = GgufContext::from_file(path).ok_or_else(|| {
        EngineError::Load(format!("{}: not a readable GGUF file", path.display()))
    })?;
    let string = |key: &str| gguf_string(&gguf, key);
    let number = |key: &str| gguf_u32(&gguf, key).map(u64::from);
    let arch = string("general.architecture").unwrap_or_default();
    let n_layer = number(&format!("{arch}.block_count")).unwrap_or(0);
    let n_embd = number(&format!("{arch}.embedding_length")).unwrap_or(0);
    let n_head = number(&format!("{arch}.attention.head_count"))
        .unwrap_or(1)
        .max(1);
    let n_head_kv = number(&format!("{arch}.attention.head_count_kv")).unwrap_or(n_head);
    let head_dim = number(&format!("{arch}.attention.key_length")).unwrap_or(n_embd / n_head);
    let cells = u64::from(config.context_per_slot) * u64::from(config.slots);
    Ok(file_size + kv_cache_bytes(n_layer, n_head_kv, head_dim, cells))
}

/// What a GGUF header says about the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgufInfo {
    /// `general.architecture`.
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// `general.license`, when present.
    pub license: Option<String>,
    /// Tasks served: embeddings-only architectures serve `embedding`, the rest text generation.
    pub tasks: Vec<String>,
    /// `general.file_type` as a precision name (`q4_1`, `q8_0`, `f16`, ...), when set and known.
    pub precision: Option<&'static str>,
}

/// The precision name of a GGUF `general.file_type` (llama.cpp's `llama_ftype`).
pub fn file_type_name(file_type: u32) -> Option<&'static str> {
    Some(match file_type {
        0 => "f32",
        1 => "f16",
        2 => "q4_0",
        3 => "q4_1",
        7 => "q8_0",
        8 => "q5_0",
        9 => "q5_1",
        10 => "q2_k",
        11 => "q3_k_s",
        12 => "q3_k_m",
        13 => "q3_k_l",
        14 => "q4_k_s",
        15 => "q4_k_m",
        16 => "q5_k_s",
        17 => "q5_k_m",
        18 => "q6_k",
        32 => "bf16",
        _ => return None,
    })
}

/// Weights and KV-cache bytes of the GGUF at `path` served with `slots × context_per_slot`
/// cells, from its header alone (nothing is loaded).
pub fn estimate_bytes(
    path: &Path,
    slots: u32,
    context_per_slot: u32,
) -> Result<(u64, u64), String> {
    let config = EngineConfig {
        slots,
        context_per_slot,
        ..EngineConfig::default()
    };
    let total = estimate_from_file(path, &config).map_err(|e| e.to_string())?;
    let weights = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    Ok((weights, total.saturating_sub(weights)))
}

/// Parses a GGUF header; fails with a clear reason when the file is not a usable GGUF.
pub fn inspect_gguf(path: &Path) -> Result<GgufInfo, String> {
    let gguf = GgufContext::from_file(path).ok_or_else(|| {
        format!(
            "{}: not a valid GGUF file (header did not parse)",
            path.display()
        )
    })?;
    let string = |key: &str| gguf_string(&gguf, key);
    let architecture = string("general.architecture")
        .ok_or_else(|| format!("{}: GGUF has no general.architecture", path.display()))?;
    if gguf.n_tensors() <= 0 {
        return Err(format!("{}: GGUF holds no tensors", path.display()));
    }
    let tasks = if matches!(
        architecture.as_str(),
        "bert" | "nomic-bert" | "jina-bert-v2"
    ) {
        vec!["embedding".to_owned()]
    } else if string("tokenizer.chat_template").is_some() {
        vec!["chat".to_owned(), "completion".to_owned()]
    } else {
        // No chat template: a base model, served through /v1/completions only.
        vec!["completion".to_owned()]
    };
    Ok(GgufInfo {
        architecture,
        name: string("general.name"),
        license: string("general.license"),
        tasks,
        precision: gguf_u32(&gguf, "general.file_type").and_then(file_type_name),
    })
}
