//! Per-architecture plans: which Hugging Face tensor becomes which GGUF tensor, with which
//! shape (checked against `config.json`), type and row permutation, and the `{arch}.*`
//! hyper-parameter metadata llama.cpp reads.
//!
//! Names and keys follow llama.cpp's `llama-arch.cpp` / `models/{bert,llama,qwen2,qwen3}.cpp`
//! and `convert_hf_to_gguf.py`:
//! - BERT (`BertModel`): absolute position embeddings and token types kept in f32, LayerNorm
//!   weights and biases f32, `{arch}.pooling_type` from sentence-transformers' pooling config.
//! - Llama: Q and K rows permuted from Hugging Face's rotate-half RoPE layout to llama.cpp's
//!   interleaved pairs (`LlamaModel.permute` in convert_hf_to_gguf.py); Llama-3 RoPE scaling
//!   becomes the `rope_freqs.weight` factors.
//! - Qwen2 (q/k/v biases) and Qwen3 (per-head q/k RMSNorm, explicit head_dim) use NEOX RoPE in
//!   llama.cpp, which is Hugging Face's layout already: no permutation.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use serde_json::Value as Json;

use super::gguf::{TensorInfo, TensorType, Value};
use super::source::Source;
use super::{HfGgufError, OutType, Pooling};

/// The architectures this converter handles, by `config.json`'s `architectures[0]`.
pub const SUPPORTED: &[&str] = &[
    "BertModel",
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
];

/// Model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Bert,
    Llama,
    Qwen2,
    Qwen3,
}

impl Family {
    /// `general.architecture`.
    pub fn gguf_arch(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        }
    }
}

/// Where a GGUF tensor's values come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A Hugging Face tensor; `permute_heads` reorders rows for llama.cpp's RoPE layout.
    Hf {
        name: String,
        permute_heads: Option<usize>,
    },
    /// Values computed by the converter (RoPE frequency factors).
    Computed(Vec<f32>),
}

/// One tensor of the output.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub info: TensorInfo,
    pub origin: Origin,
}

/// The output's tensors and architecture metadata.
pub(crate) struct Plan {
    pub family: Family,
    pub hf_architecture: String,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Planned>,
    /// Rows of the token embedding (the vocabulary size llama.cpp will see).
    pub n_vocab: usize,
    /// The pooling written (encoders).
    pub pooling: Option<Pooling>,
}

/// `config.json` with error messages that name it.
pub(crate) struct Config<'a> {
    pub path: PathBuf,
    pub json: &'a Json,
}

impl Config<'_> {
    fn err(&self, reason: impl Into<String>) -> HfGgufError {
        HfGgufError::Config {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn usize(&self, key: &str) -> Result<usize, HfGgufError> {
        self.opt_usize(key)?
            .ok_or_else(|| self.err(format!("missing \"{key}\"")))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>, HfGgufError> {
        match self.json.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|&v| v > 0)
                .map(|v| Some(v as usize))
                .ok_or_else(|| self.err(format!("\"{key}\" is {v}, expected a positive integer"))),
        }
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32, HfGgufError> {
        match self.json.get(key) {
            None | Some(Json::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|v| v as f32)
                .ok_or_else(|| self.err(format!("\"{key}\" is {v}, expected a number"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> bool {
        self.json
            .get(key)
            .and_then(Json::as_bool)
            .unwrap_or(default)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Json::as_str)
    }
}

/// Recognises the architecture.
pub(crate) fn family(config: &Config<'_>) -> Result<(Family, String), HfGgufError> {
    let arch = config
        .json
        .get("architectures")
        .and_then(Json::as_array)
        .and_then(|a| a.first())
        .and_then(Json::as_str)
        .map(str::to_owned)
        .or_else(|| {
            // sentence-transformers sometimes ships a bare BERT config.
            (config.str("model_type") == Some("bert")).then(|| "BertModel".to_owned())
        })
        .ok_or_else(|| config.err("has no \"architectures\" list (nor model_type \"bert\")"))?;
    let family = match arch.as_str() {
        "BertModel" => Family::Bert,
        "LlamaForCausalLM" => Family::Llama,
        "Qwen2ForCausalLM" => Family::Qwen2,
        "Qwen3ForCausalLM" => Family::Qwen3,
        _ => {
            return Err(HfGgufError::UnsupportedArchitecture {
                path: config.path.clone(),
                architecture: arch,
            })
        }
    };
    Ok((family, arch))
}

struct Builder<'a> {
    source: &'a Source,
    dir: &'a Path,
    out: OutType,
    tensors: Vec<Planned>,
    used: BTreeSet<String>,
}

impl Builder<'_> {
    /// Adds `hf` as `gguf` after checking its shape; absent optional tensors are skipped.
    fn add(
        &mut self,
        hf: &str,
        gguf: &str,
        shape: &[usize],
        required: bool,
        permute_heads: Option<usize>,
    ) -> Result<bool, HfGgufError> {
        let Some(tensor) = self.source.tensors.get(hf) else {
            return if required {
                Err(HfGgufError::MissingTensor {
                    path: self.dir.to_owned(),
                    tensor: hf.to_owned(),
                })
            } else {
                Ok(false)
            };
        };
        if tensor.shape != shape {
            return Err(HfGgufError::ShapeMismatch {
                path: self.source.path_of(tensor).to_owned(),
                tensor: hf.to_owned(),
                expected: shape.to_vec(),
                found: tensor.shape.clone(),
            });
        }
        if !matches!(tensor.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(HfGgufError::UnsupportedDtype {
                path: self.source.path_of(tensor).to_owned(),
                tensor: hf.to_owned(),
                dtype: format!("{:?}", tensor.dtype),
            });
        }
        // Vectors, norms, positions and token types stay f32 (as convert_hf_to_gguf.py keeps
        // them); matrices take the requested type.
        let keep_f32 = shape.len() < 2
            || gguf.ends_with("_norm.weight")
            || gguf == "position_embd.weight"
            || gguf == "token_types.weight";
        let dtype = match self.out {
            OutType::F16 if !keep_f32 => TensorType::F16,
            _ => TensorType::F32,
        };
        self.tensors.push(Planned {
            info: TensorInfo {
                name: gguf.to_owned(),
                shape: shape.iter().map(|&d| d as u64).collect(),
                dtype,
            },
            origin: Origin::Hf {
                name: hf.to_owned(),
                permute_heads,
            },
        });
        self.used.insert(hf.to_owned());
        Ok(true)
    }

    /// Fails on any source tensor that the plan did not use and that is not known to be unused
    /// by llama.cpp (silently dropping weights would give a model that loads but is wrong).
    fn check_all_used(&self, ignorable: impl Fn(&str) -> bool) -> Result<(), HfGgufError> {
        for (name, tensor) in &self.source.tensors {
            if !self.used.contains(name) && !ignorable(name) {
                return Err(HfGgufError::UnexpectedTensor {
                    path: self.source.path_of(tensor).to_owned(),
                    tensor: name.clone(),
                });
            }
        }
        Ok(())
    }
}

fn kv(arch: &str, key: &str, value: Value) -> (String, Value) {
    (format!("{arch}.{key}"), value)
}

fn u32v(v: usize) -> Value {
    Value::U32(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Builds the plan for the folder's model.
pub(crate) fn plan(
    config: &Config<'_>,
    dir: &Path,
    source: &Source,
    out: OutType,
    pooling: Option<Pooling>,
) -> Result<Plan, HfGgufError> {
    let (family, hf_architecture) = family(config)?;
    let mut builder = Builder {
        source,
        dir,
        out,
        tensors: Vec::new(),
        used: BTreeSet::new(),
    };
    let (metadata, n_vocab, pooling) = match family {
        Family::Bert => bert(config, dir, &mut builder, pooling)?,
        _ => decoder(config, family, &mut builder)?,
    };
    Ok(Plan {
        family,
        hf_architecture,
        metadata,
        tensors: builder.tensors,
        n_vocab,
        pooling,
    })
}

type ArchParts = (Vec<(String, Value)>, usize, Option<Pooling>);

fn bert(
    config: &Config<'_>,
    dir: &Path,
    b: &mut Builder<'_>,
    pooling: Option<Pooling>,
) -> Result<ArchParts, HfGgufError> {
    let hidden = config.usize("hidden_size")?;
    let ff = config.usize("intermediate_size")?;
    let layers = config.usize("num_hidden_layers")?;
    let heads = config.usize("num_attention_heads")?;
    let ctx = config.usize("max_position_embeddings")?;
    let vocab = config.usize("vocab_size")?;
    let types = config.opt_usize("type_vocab_size")?.unwrap_or(2);
    let eps = config.f32_or("layer_norm_eps", 1e-12)?;
    if hidden % heads != 0 {
        return Err(config.err(format!(
            "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
        )));
    }
    match config.str("hidden_act").unwrap_or("gelu") {
        "gelu" => {}
        other => {
            return Err(config.err(format!(
                "hidden_act {other:?} is not supported (llama.cpp's BERT uses gelu)"
            )))
        }
    }
    match config.str("position_embedding_type").unwrap_or("absolute") {
        "absolute" => {}
        other => {
            return Err(config.err(format!(
                "position_embedding_type {other:?} is not supported (absolute only)"
            )))
        }
    }
    // Checkpoints saved from BertFor* carry a "bert." prefix.
    let prefix = if b
        .source
        .tensors
        .contains_key("bert.embeddings.word_embeddings.weight")
    {
        "bert."
    } else {
        ""
    };
    let p = |name: &str| format!("{prefix}{name}");
    b.add(
        &p("embeddings.word_embeddings.weight"),
        "token_embd.weight",
        &[vocab, hidden],
        true,
        None,
    )?;
    b.add(
        &p("embeddings.token_type_embeddings.weight"),
        "token_types.weight",
        &[types, hidden],
        false,
        None,
    )?;
    b.add(
        &p("embeddings.position_embeddings.weight"),
        "position_embd.weight",
        &[ctx, hidden],
        true,
        None,
    )?;
    b.add(
        &p("embeddings.LayerNorm.weight"),
        "token_embd_norm.weight",
        &[hidden],
        true,
        None,
    )?;
    b.add(
        &p("embeddings.LayerNorm.bias"),
        "token_embd_norm.bias",
        &[hidden],
        true,
        None,
    )?;
    for i in 0..layers {
        let l = |name: &str| p(&format!("encoder.layer.{i}.{name}"));
        let g = |name: &str| format!("blk.{i}.{name}");
        for (hf, gguf) in [
            ("attention.self.query", "attn_q"),
            ("attention.self.key", "attn_k"),
            ("attention.self.value", "attn_v"),
            ("attention.output.dense", "attn_output"),
        ] {
            b.add(
                &l(&format!("{hf}.weight")),
                &g(&format!("{gguf}.weight")),
                &[hidden, hidden],
                true,
                None,
            )?;
            b.add(
                &l(&format!("{hf}.bias")),
                &g(&format!("{gguf}.bias")),
                &[hidden],
                true,
                None,
            )?;
        }
        b.add(
            &l("attention.output.LayerNorm.weight"),
            &g("attn_output_norm.weight"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("attention.output.LayerNorm.bias"),
            &g("attn_output_norm.bias"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("intermediate.dense.weight"),
            &g("ffn_up.weight"),
            &[ff, hidden],
            true,
            None,
        )?;
        b.add(
            &l("intermediate.dense.bias"),
            &g("ffn_up.bias"),
            &[ff],
            true,
            None,
        )?;
        b.add(
            &l("output.dense.weight"),
            &g("ffn_down.weight"),
            &[hidden, ff],
            true,
            None,
        )?;
        b.add(
            &l("output.dense.bias"),
            &g("ffn_down.bias"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("output.LayerNorm.weight"),
            &g("layer_output_norm.weight"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("output.LayerNorm.bias"),
            &g("layer_output_norm.bias"),
            &[hidden],
            true,
            None,
        )?;
    }
    // The pooler and the masked-LM head are not part of a sentence embedding; position_ids is
    // a buffer, not a weight.
    b.check_all_used(|name| {
        let name = name.strip_prefix("bert.").unwrap_or(name);
        name.starts_with("pooler.") || name.starts_with("cls.") || name.ends_with("position_ids")
    })?;

    let pooling = match pooling {
        Some(p) => p,
        None => sentence_transformers_pooling(dir)?.unwrap_or(Pooling::Mean),
    };
    let a = "bert";
    let metadata = vec![
        kv(a, "context_length", u32v(ctx)),
        kv(a, "embedding_length", u32v(hidden)),
        kv(a, "feed_forward_length", u32v(ff)),
        kv(a, "block_count", u32v(layers)),
        kv(a, "attention.head_count", u32v(heads)),
        kv(a, "attention.layer_norm_epsilon", Value::F32(eps)),
        kv(a, "attention.causal", Value::Bool(false)),
        kv(a, "pooling_type", Value::U32(pooling.llama_value())),
    ];
    Ok((metadata, vocab, Some(pooling)))
}

/// sentence-transformers' pooling mode (`modules.json` → the Pooling module's `config.json`).
fn sentence_transformers_pooling(dir: &Path) -> Result<Option<Pooling>, HfGgufError> {
    let modules_path = dir.join("modules.json");
    let pooling_dir = if modules_path.is_file() {
        let text = std::fs::read_to_string(&modules_path).map_err(|error| HfGgufError::Io {
            path: modules_path.clone(),
            error,
        })?;
        let modules: Json = serde_json::from_str(&text).map_err(|e| HfGgufError::Config {
            path: modules_path.clone(),
            reason: format!("not valid JSON: {e}"),
        })?;
        modules
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| {
                m.get("type")
                    .and_then(Json::as_str)
                    .is_some_and(|t| t.ends_with("Pooling"))
            })
            .and_then(|m| m.get("path").and_then(Json::as_str))
            .map(|p| dir.join(p))
    } else {
        None
    }
    .unwrap_or_else(|| dir.join("1_Pooling"));
    let path = pooling_dir.join("config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|error| HfGgufError::Io {
        path: path.clone(),
        error,
    })?;
    let json: Json = serde_json::from_str(&text).map_err(|e| HfGgufError::Config {
        path: path.clone(),
        reason: format!("not valid JSON: {e}"),
    })?;
    let on = |key: &str| json.get(key).and_then(Json::as_bool) == Some(true);
    if on("pooling_mode_mean_tokens") {
        Ok(Some(Pooling::Mean))
    } else if on("pooling_mode_cls_token") {
        Ok(Some(Pooling::Cls))
    } else if on("pooling_mode_lasttoken") {
        Ok(Some(Pooling::Last))
    } else {
        Err(HfGgufError::Config {
            path,
            reason: "pooling mode is none of mean, cls, lasttoken (llama.cpp has no other)".into(),
        })
    }
}

fn decoder(
    config: &Config<'_>,
    family: Family,
    b: &mut Builder<'_>,
) -> Result<ArchParts, HfGgufError> {
    let hidden = config.usize("hidden_size")?;
    let ff = config.usize("intermediate_size")?;
    let layers = config.usize("num_hidden_layers")?;
    let heads = config.usize("num_attention_heads")?;
    let kv_heads = config.opt_usize("num_key_value_heads")?.unwrap_or(heads);
    let ctx = config.usize("max_position_embeddings")?;
    let vocab = config.usize("vocab_size")?;
    let eps = config.f32_or("rms_norm_eps", 1e-6)?;
    let theta = config.f32_or("rope_theta", 10_000.0)?;
    let head_dim = match config.opt_usize("head_dim")? {
        Some(d) => d,
        None if hidden % heads == 0 => hidden / heads,
        None => {
            return Err(config.err(format!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {heads} and \
                 head_dim is not given"
            )))
        }
    };
    if heads % kv_heads != 0 {
        return Err(config.err(format!(
            "num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
        )));
    }
    if head_dim % 2 != 0 {
        return Err(config.err(format!("head_dim {head_dim} is odd (RoPE needs pairs)")));
    }
    match config.str("hidden_act").unwrap_or("silu") {
        "silu" => {}
        other => {
            return Err(config.err(format!(
                "hidden_act {other:?} is not supported (these architectures use silu)"
            )))
        }
    }
    let a = family.gguf_arch();
    let mut metadata = vec![
        kv(a, "vocab_size", u32v(vocab)),
        kv(a, "context_length", u32v(ctx)),
        kv(a, "embedding_length", u32v(hidden)),
        kv(a, "feed_forward_length", u32v(ff)),
        kv(a, "block_count", u32v(layers)),
        kv(a, "attention.head_count", u32v(heads)),
        kv(a, "attention.head_count_kv", u32v(kv_heads)),
        kv(a, "attention.key_length", u32v(head_dim)),
        kv(a, "attention.value_length", u32v(head_dim)),
        kv(a, "attention.layer_norm_rms_epsilon", Value::F32(eps)),
        kv(a, "rope.freq_base", Value::F32(theta)),
        kv(a, "rope.dimension_count", u32v(head_dim)),
    ];

    let q_rows = heads * head_dim;
    let kv_rows = kv_heads * head_dim;
    // llama.cpp's llama arch rotates interleaved pairs; Hugging Face rotates halves.
    let (q_perm, k_perm) = if family == Family::Llama {
        (Some(heads), Some(kv_heads))
    } else {
        (None, None)
    };
    let qkv_bias = match family {
        Family::Qwen2 => true,
        _ => config.bool_or("attention_bias", false),
    };
    let mlp_bias = config.bool_or("mlp_bias", false);

    b.add(
        "model.embed_tokens.weight",
        "token_embd.weight",
        &[vocab, hidden],
        true,
        None,
    )?;
    let mut rope_freqs = None;
    if let Some(scaling) = config.json.get("rope_scaling").filter(|s| !s.is_null()) {
        let kind = scaling
            .get("rope_type")
            .or_else(|| scaling.get("type"))
            .and_then(Json::as_str)
            .unwrap_or("default");
        let factor = scaling.get("factor").and_then(Json::as_f64);
        match (kind, family) {
            ("default", _) => {}
            ("linear", _) => {
                let factor =
                    factor.ok_or_else(|| config.err("rope_scaling linear has no factor"))?;
                metadata.push(kv(a, "rope.scaling.type", Value::String("linear".into())));
                metadata.push(kv(a, "rope.scaling.factor", Value::F32(factor as f32)));
            }
            ("yarn", _) => {
                let factor = factor.ok_or_else(|| config.err("rope_scaling yarn has no factor"))?;
                let original = scaling
                    .get("original_max_position_embeddings")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| {
                        config.err("rope_scaling yarn has no original_max_position_embeddings")
                    })?;
                metadata.push(kv(a, "rope.scaling.type", Value::String("yarn".into())));
                metadata.push(kv(a, "rope.scaling.factor", Value::F32(factor as f32)));
                metadata.push(kv(
                    a,
                    "rope.scaling.original_context_length",
                    Value::U32(original as u32),
                ));
            }
            ("llama3", Family::Llama) => {
                rope_freqs = Some(llama3_rope_factors(scaling, theta, head_dim));
            }
            (other, _) => {
                return Err(config.err(format!(
                    "rope_scaling type {other:?} is not supported for {a} (default, linear, \
                     yarn{})",
                    if family == Family::Llama {
                        ", llama3"
                    } else {
                        ""
                    }
                )))
            }
        }
    }
    if let Some(factors) = rope_freqs {
        b.tensors.push(Planned {
            info: TensorInfo {
                name: "rope_freqs.weight".into(),
                shape: vec![factors.len() as u64],
                dtype: TensorType::F32,
            },
            origin: Origin::Computed(factors),
        });
    }
    for i in 0..layers {
        let l = |name: &str| format!("model.layers.{i}.{name}");
        let g = |name: &str| format!("blk.{i}.{name}");
        b.add(
            &l("input_layernorm.weight"),
            &g("attn_norm.weight"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("self_attn.q_proj.weight"),
            &g("attn_q.weight"),
            &[q_rows, hidden],
            true,
            q_perm,
        )?;
        b.add(
            &l("self_attn.k_proj.weight"),
            &g("attn_k.weight"),
            &[kv_rows, hidden],
            true,
            k_perm,
        )?;
        b.add(
            &l("self_attn.v_proj.weight"),
            &g("attn_v.weight"),
            &[kv_rows, hidden],
            true,
            None,
        )?;
        b.add(
            &l("self_attn.q_proj.bias"),
            &g("attn_q.bias"),
            &[q_rows],
            qkv_bias,
            q_perm,
        )?;
        b.add(
            &l("self_attn.k_proj.bias"),
            &g("attn_k.bias"),
            &[kv_rows],
            qkv_bias,
            k_perm,
        )?;
        b.add(
            &l("self_attn.v_proj.bias"),
            &g("attn_v.bias"),
            &[kv_rows],
            qkv_bias,
            None,
        )?;
        b.add(
            &l("self_attn.o_proj.weight"),
            &g("attn_output.weight"),
            &[hidden, q_rows],
            true,
            None,
        )?;
        if family == Family::Llama {
            // llama.cpp's qwen2/qwen3 graphs have no output-projection bias: there, one is an
            // unexpected tensor (check_all_used below).
            let o_bias = config.bool_or("attention_bias", false);
            b.add(
                &l("self_attn.o_proj.bias"),
                &g("attn_output.bias"),
                &[hidden],
                o_bias,
                None,
            )?;
        }
        if family == Family::Qwen3 {
            b.add(
                &l("self_attn.q_norm.weight"),
                &g("attn_q_norm.weight"),
                &[head_dim],
                true,
                None,
            )?;
            b.add(
                &l("self_attn.k_norm.weight"),
                &g("attn_k_norm.weight"),
                &[head_dim],
                true,
                None,
            )?;
        }
        b.add(
            &l("post_attention_layernorm.weight"),
            &g("ffn_norm.weight"),
            &[hidden],
            true,
            None,
        )?;
        b.add(
            &l("mlp.gate_proj.weight"),
            &g("ffn_gate.weight"),
            &[ff, hidden],
            true,
            None,
        )?;
        b.add(
            &l("mlp.up_proj.weight"),
            &g("ffn_up.weight"),
            &[ff, hidden],
            true,
            None,
        )?;
        b.add(
            &l("mlp.down_proj.weight"),
            &g("ffn_down.weight"),
            &[hidden, ff],
            true,
            None,
        )?;
        if family == Family::Llama {
            b.add(
                &l("mlp.gate_proj.bias"),
                &g("ffn_gate.bias"),
                &[ff],
                mlp_bias,
                None,
            )?;
            b.add(
                &l("mlp.up_proj.bias"),
                &g("ffn_up.bias"),
                &[ff],
                mlp_bias,
                None,
            )?;
            b.add(
                &l("mlp.down_proj.bias"),
                &g("ffn_down.bias"),
                &[hidden],
                mlp_bias,
                None,
            )?;
        }
    }
    b.add(
        "model.norm.weight",
        "output_norm.weight",
        &[hidden],
        true,
        None,
    )?;
    // A tied head is not stored: llama.cpp falls back to the token embedding.
    let tied = config.bool_or("tie_word_embeddings", false);
    if !tied {
        let has_head = b.add(
            "lm_head.weight",
            "output.weight",
            &[vocab, hidden],
            false,
            None,
        )?;
        if !has_head {
            return Err(HfGgufError::MissingTensor {
                path: b.dir.to_owned(),
                tensor: "lm_head.weight (tie_word_embeddings is false)".into(),
            });
        }
    }
    b.check_all_used(|name| {
        name.ends_with("rotary_emb.inv_freq") || (tied && name == "lm_head.weight")
    })?;
    Ok((metadata, vocab, None))
}

/// Llama 3's RoPE frequency scaling as per-dimension factors (`rope_freqs.weight`), as
/// `LlamaModel.generate_extra_tensors` in convert_hf_to_gguf.py computes them.
fn llama3_rope_factors(scaling: &Json, theta: f32, head_dim: usize) -> Vec<f32> {
    let get = |key: &str, default: f64| scaling.get(key).and_then(Json::as_f64).unwrap_or(default);
    let factor = get("factor", 8.0);
    let low = get("low_freq_factor", 1.0);
    let high = get("high_freq_factor", 4.0);
    let original = get("original_max_position_embeddings", 8192.0);
    let low_wavelen = original / low;
    let high_wavelen = original / high;
    (0..head_dim / 2)
        .map(|i| {
            let freq = 1.0 / f64::from(theta).powf((2 * i) as f64 / head_dim as f64);
            let wavelen = 2.0 * std::f64::consts::PI / freq;
            let f = if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            f as f32
        })
        .collect()
}

/// Hugging Face row → llama.cpp row for Q/K: within each head, rows `[x0..x(d/2), y0..]`
/// become interleaved pairs `[x0, y0, x1, y1, ...]`. Returns the source row of output `row`.
pub(crate) fn permuted_source_row(row: usize, rows: usize, heads: usize) -> usize {
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let (head, within) = (row / head_dim, row % head_dim);
    head * head_dim + (within % 2) * half + within / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_interleaves_halves_per_head() {
        // 2 heads of 4 rows: head rows [a0 a1 b0 b1] → [a0 b0 a1 b1].
        let order: Vec<usize> = (0..8).map(|r| permuted_source_row(r, 8, 2)).collect();
        assert_eq!(order, vec![0, 2, 1, 3, 4, 6, 5, 7]);
    }

    #[test]
    fn llama3_factors_span_one_to_factor() {
        let scaling = serde_json::json!({"factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let f = llama3_rope_factors(&scaling, 500_000.0, 128);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
    }
}
