//! Architectures: GGUF hyper-parameters → mlx-lm's `config.json`, and GGUF tensor names →
//! mlx-lm (Hugging Face) names, with what each tensor needs on the way.

use serde_json::{json, Map, Value as Json};

use super::gguf::{GgufFile, Value};
use super::MlxError;

/// The architectures [`describe`] understands.
pub const SUPPORTED: &[&str] = &["llama", "gemma3"];

/// What a tensor is in the MLX model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `nn.Linear` weight (quantisable).
    Linear,
    /// `nn.Embedding` weight (quantisable; the tied output head when there is no `lm_head`).
    Embedding,
    /// A norm weight or other small tensor, kept as floats.
    Float,
}

/// Where one GGUF tensor goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// mlx-lm parameter name (e.g. `model.layers.0.self_attn.q_proj.weight`).
    pub name: String,
    /// What it is.
    pub kind: Kind,
    /// Undo llama.cpp's rotary row permutation with this head size.
    pub unpermute_head_dim: Option<usize>,
    /// Added to every value (Gemma stores `1 + w` for its norms in GGUF, mlx-lm wants `w`).
    pub shift: f32,
}

/// A described model: its mlx-lm config (without the quantisation block) and name mapping.
pub struct Arch {
    /// `general.architecture`.
    pub name: String,
    /// config.json without `quantization`.
    pub config: Map<String, Json>,
    head_dim: usize,
    norm_shift: f32,
}

struct Params<'a> {
    gguf: &'a GgufFile,
    arch: &'a str,
}

impl Params<'_> {
    fn missing(&self, key: &str) -> MlxError {
        MlxError::Unsupported {
            path: self.gguf.path().to_path_buf(),
            reason: format!("architecture '{}' needs metadata key {key}", self.arch),
        }
    }

    fn int(&self, key: &str) -> Result<u64, MlxError> {
        self.opt_int(key)?
            .ok_or_else(|| self.missing(&format!("{}.{key}", self.arch)))
    }

    fn opt_int(&self, key: &str) -> Result<Option<u64>, MlxError> {
        let full = format!("{}.{key}", self.arch);
        match self.gguf.get(&full) {
            None => Ok(None),
            Some(Value::Array(a)) => {
                // Per-layer values (e.g. head_count_kv): accept only when all are equal.
                let values: Option<Vec<u64>> = a.iter().map(Value::as_u64).collect();
                match values.as_deref() {
                    Some([first, rest @ ..]) if rest.iter().all(|v| v == first) => Ok(Some(*first)),
                    _ => Err(MlxError::Unsupported {
                        path: self.gguf.path().to_path_buf(),
                        reason: format!("{full} differs between layers"),
                    }),
                }
            }
            Some(v) => v.as_u64().map(Some).ok_or_else(|| MlxError::Corrupt {
                path: self.gguf.path().to_path_buf(),
                offset: 0,
                reason: format!("{full} = {v:?} is not an integer"),
            }),
        }
    }

    /// A float as GGUF stores it (f32), written with the shortest decimal that reads back as
    /// the same f32, so config.json shows e.g. `1e-5` rather than `9.999999747378752e-6`.
    fn float(&self, key: &str) -> Result<Option<f64>, MlxError> {
        let full = format!("{}.{key}", self.arch);
        let shortest = |f: f64| format!("{}", f as f32).parse::<f64>().unwrap_or(f);
        match self.gguf.get(&full) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(|f| Some(shortest(f)))
                .ok_or_else(|| MlxError::Corrupt {
                    path: self.gguf.path().to_path_buf(),
                    offset: 0,
                    reason: format!("{full} = {v:?} is not a number"),
                }),
        }
    }
}

fn vocab_size(gguf: &GgufFile) -> Option<u64> {
    gguf.tensor("token_embd.weight")
        .and_then(|t| t.dims.get(1).copied())
}

/// Describes `gguf`'s architecture, or says clearly that it is not supported.
pub fn describe(gguf: &GgufFile) -> Result<Arch, MlxError> {
    let arch = gguf
        .get("general.architecture")
        .and_then(Value::as_str)
        .ok_or_else(|| MlxError::Corrupt {
            path: gguf.path().to_path_buf(),
            offset: 0,
            reason: "no general.architecture".into(),
        })?;
    let p = Params { gguf, arch };
    let tied = gguf.tensor("output.weight").is_none();
    let vocab = vocab_size(gguf).ok_or_else(|| p.missing("token_embd.weight (tensor)"))?;
    match arch {
        "llama" => {
            if gguf.tensor("rope_freqs.weight").is_some() {
                return Err(MlxError::Unsupported {
                    path: gguf.path().to_path_buf(),
                    reason: "llama with rope_freqs.weight (Llama 3.1-style rope scaling): its \
                             parameters are not stored in the GGUF"
                        .into(),
                });
            }
            let hidden = p.int("embedding_length")?;
            let heads = p.int("attention.head_count")?;
            let kv_heads = p.opt_int("attention.head_count_kv")?.unwrap_or(heads);
            let head_dim = match p.opt_int("attention.key_length")? {
                Some(d) => d,
                None => p
                    .opt_int("rope.dimension_count")?
                    .unwrap_or(hidden / heads.max(1)),
            };
            let mut config = json!({
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": hidden,
                "intermediate_size": p.int("feed_forward_length")?,
                "num_hidden_layers": p.int("block_count")?,
                "num_attention_heads": heads,
                "num_key_value_heads": kv_heads,
                "head_dim": head_dim,
                "rms_norm_eps": p.float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
                "rope_theta": p.float("rope.freq_base")?.unwrap_or(10000.0),
                "rope_traditional": false,
                "max_position_embeddings": p.opt_int("context_length")?.unwrap_or(2048),
                "vocab_size": vocab,
                "tie_word_embeddings": tied,
                "attention_bias": gguf.tensor("blk.0.attn_q.bias").is_some(),
                "mlp_bias": false,
            });
            rope_scaling(&p, &mut config)?;
            Ok(Arch {
                name: arch.into(),
                config: into_map(config),
                head_dim: usize::try_from(head_dim).unwrap_or(0),
                norm_shift: 0.0,
            })
        }
        "gemma3" => {
            let hidden = p.int("embedding_length")?;
            let heads = p.int("attention.head_count")?;
            let layers = p.int("block_count")?;
            let head_dim = p.opt_int("attention.key_length")?.unwrap_or(256);
            // llama.cpp: 1/sqrt(head_dim), except Gemma 3 27B (62 layers): 1/sqrt(hidden/heads).
            let query_pre_attn_scalar = if layers == 62 {
                hidden / heads.max(1)
            } else {
                head_dim
            };
            let mut config = json!({
                "architectures": ["Gemma3ForCausalLM"],
                "model_type": "gemma3_text",
                "hidden_size": hidden,
                "intermediate_size": p.int("feed_forward_length")?,
                "num_hidden_layers": layers,
                "num_attention_heads": heads,
                "num_key_value_heads": p.opt_int("attention.head_count_kv")?.unwrap_or(heads),
                "head_dim": head_dim,
                "rms_norm_eps": p.float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6),
                "rope_theta": p.float("rope.freq_base")?.unwrap_or(1_000_000.0),
                // llama.cpp's fixed values for Gemma 3's local (sliding-window) layers.
                "rope_local_base_freq": 10000.0,
                "sliding_window_pattern": 6,
                "sliding_window": p.opt_int("attention.sliding_window")?.unwrap_or(512),
                "query_pre_attn_scalar": query_pre_attn_scalar,
                "max_position_embeddings": p.opt_int("context_length")?.unwrap_or(32768),
                "vocab_size": vocab,
                "hidden_activation": "gelu_pytorch_tanh",
                "tie_word_embeddings": tied,
            });
            rope_scaling(&p, &mut config)?;
            Ok(Arch {
                name: arch.into(),
                config: into_map(config),
                head_dim: 0,
                norm_shift: -1.0,
            })
        }
        other => Err(MlxError::Unsupported {
            path: gguf.path().to_path_buf(),
            reason: format!(
                "architecture '{other}' is not supported (supported: {})",
                SUPPORTED.join(", ")
            ),
        }),
    }
}

fn into_map(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

fn rope_scaling(p: &Params<'_>, config: &mut Json) -> Result<(), MlxError> {
    let kind = p
        .gguf
        .get(&format!("{}.rope.scaling.type", p.arch))
        .and_then(Value::as_str);
    match kind {
        None | Some("none") => Ok(()),
        Some("linear") => {
            let factor = p.float("rope.scaling.factor")?.unwrap_or(1.0);
            if factor != 1.0 {
                config["rope_scaling"] =
                    json!({"rope_type": "linear", "type": "linear", "factor": factor});
            }
            Ok(())
        }
        Some(other) => Err(MlxError::Unsupported {
            path: p.gguf.path().to_path_buf(),
            reason: format!("rope scaling '{other}' is not supported"),
        }),
    }
}

impl Arch {
    /// Where GGUF tensor `name` goes; `None` for a tensor this architecture does not know.
    pub fn target(&self, name: &str) -> Option<Target> {
        let float = |n: String| Target {
            name: n,
            kind: Kind::Float,
            unpermute_head_dim: None,
            shift: 0.0,
        };
        let linear = |n: String| Target {
            name: n,
            kind: Kind::Linear,
            unpermute_head_dim: None,
            shift: 0.0,
        };
        let norm = |n: String| Target {
            shift: self.norm_shift,
            ..float(n)
        };
        match name {
            "token_embd.weight" => {
                return Some(Target {
                    kind: Kind::Embedding,
                    ..linear("model.embed_tokens.weight".into())
                })
            }
            "output_norm.weight" => return Some(norm("model.norm.weight".into())),
            "output.weight" => return Some(linear("lm_head.weight".into())),
            _ => {}
        }
        let rest = name.strip_prefix("blk.")?;
        let (layer, tensor) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        let prefix = format!("model.layers.{layer}");
        let llama = self.name == "llama";
        let permute = if llama && self.head_dim >= 2 {
            Some(self.head_dim)
        } else {
            None
        };
        Some(match tensor {
            "attn_norm.weight" => norm(format!("{prefix}.input_layernorm.weight")),
            "attn_q.weight" => Target {
                unpermute_head_dim: permute,
                ..linear(format!("{prefix}.self_attn.q_proj.weight"))
            },
            "attn_k.weight" => Target {
                unpermute_head_dim: permute,
                ..linear(format!("{prefix}.self_attn.k_proj.weight"))
            },
            "attn_v.weight" => linear(format!("{prefix}.self_attn.v_proj.weight")),
            "attn_output.weight" => linear(format!("{prefix}.self_attn.o_proj.weight")),
            "ffn_gate.weight" => linear(format!("{prefix}.mlp.gate_proj.weight")),
            "ffn_up.weight" => linear(format!("{prefix}.mlp.up_proj.weight")),
            "ffn_down.weight" => linear(format!("{prefix}.mlp.down_proj.weight")),
            "ffn_norm.weight" if llama => norm(format!("{prefix}.post_attention_layernorm.weight")),
            "ffn_norm.weight" => norm(format!("{prefix}.pre_feedforward_layernorm.weight")),
            "attn_q_norm.weight" if !llama => norm(format!("{prefix}.self_attn.q_norm.weight")),
            "attn_k_norm.weight" if !llama => norm(format!("{prefix}.self_attn.k_norm.weight")),
            "post_attention_norm.weight" if !llama => {
                norm(format!("{prefix}.post_attention_layernorm.weight"))
            }
            "post_ffw_norm.weight" if !llama => {
                norm(format!("{prefix}.post_feedforward_layernorm.weight"))
            }
            _ => return None,
        })
    }
}
